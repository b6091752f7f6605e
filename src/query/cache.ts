import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { SharedState } from '../stores/index.js';
import type { QueryPage } from './execute.js';
import type { CompiledQuery } from './types.js';

/**
 * Query results cached in shared state (Redis when configured, so every gateway process shares
 * them). The key covers the compiled SQL and parameters (which already carry the caller's masks
 * and row rule), the dataset's schema version and its data generation; ingest bumps the
 * generation, so a cached page is never served after new rows are committed.
 */
export class QueryCache {
  constructor(
    private readonly shared: SharedState,
    private readonly ttlMs: number,
    private readonly logger: Logger,
  ) {}

  /** Call after rows are committed into a dataset. */
  async invalidate(datasetId: string): Promise<void> {
    await this.shared.incrBy(generationKey(datasetId), 1);
  }

  async getOrRun(datasetId: string, schemaVersion: number, query: CompiledQuery, withTotal: boolean, run: () => Promise<QueryPage>): Promise<QueryPage & { cached: boolean }> {
    if (this.ttlMs <= 0) return { ...(await run()), cached: false };
    let key: string | undefined;
    try {
      const generation = (await this.shared.get(generationKey(datasetId))) ?? '0';
      key = `qcache:${datasetId}:${createHash('sha256')
        .update(JSON.stringify([schemaVersion, generation, withTotal, query.sql, query.countSql, query.params]))
        .digest('base64url')}`;
      const hit = await this.shared.get(key);
      if (hit) return { ...(JSON.parse(hit) as QueryPage), cached: true };
    } catch (err) {
      // The cache is an optimisation: when shared state is unreachable, answer from the warehouse.
      this.logger.warn({ err, datasetId }, 'query cache unavailable; running the query');
      key = undefined;
    }
    const page = await run();
    if (key) await this.shared.set(key, JSON.stringify(page), this.ttlMs).catch(() => {});
    return { ...page, cached: false };
  }
}

const generationKey = (datasetId: string) => `qcache-gen:${datasetId}`;
