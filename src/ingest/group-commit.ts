import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { quoteIdent } from '../datasets/clickhouse-types.js';
import type { KeyedMutex } from '../datasets/locks.js';
import { ProblemError } from '../problem.js';
import type { Warehouse } from '../stores/index.js';

interface Pending {
  generation: string;
  /** JSONEachRow text: one row a line. */
  text: string;
  rows: number;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Group commit: one per-dataset queue. While an INSERT runs, rows from every request that
 * arrive queue up; the next INSERT takes them all (up to `maxBytes`). Each request's promise
 * settles after the INSERT that holds its rows returns, so an answer always follows the commit.
 */
export class GroupCommitter {
  private readonly queues = new Map<string, { pending: Pending[]; bytes: number; running: boolean }>();
  /** How many INSERTs ran and how many rows they held (for tests and metrics). */
  readonly stats = { inserts: 0, rows: 0 };
  /** Told after each INSERT commits, before its requests are answered (the query cache invalidates here). */
  onCommitted?: (datasetId: string) => Promise<void>;

  constructor(
    private readonly warehouse: Warehouse,
    private readonly locks: KeyedMutex,
    private readonly logger: Logger,
    private readonly maxBytes: number,
    /** The table generation now, checked at flush: rows validated against a replaced table are refused. */
    private readonly currentGeneration: (datasetId: string) => Promise<string | undefined>,
  ) {}

  submit(datasetId: string, generation: string, text: string, rows: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let q = this.queues.get(datasetId);
      if (!q) this.queues.set(datasetId, (q = { pending: [], bytes: 0, running: false }));
      q.pending.push({ generation, text, rows, resolve, reject });
      q.bytes += text.length;
      if (!q.running) void this.drain(datasetId);
    });
  }

  private async drain(datasetId: string): Promise<void> {
    const q = this.queues.get(datasetId)!;
    q.running = true;
    try {
      while (q.pending.length) {
        const batch: Pending[] = [];
        let bytes = 0;
        while (q.pending.length && (batch.length === 0 || bytes + q.pending[0]!.text.length <= this.maxBytes)) {
          const next = q.pending.shift()!;
          bytes += next.text.length;
          batch.push(next);
        }
        q.bytes -= bytes;
        await this.flush(datasetId, batch);
      }
    } finally {
      q.running = false;
      if (q.pending.length) void this.drain(datasetId);
      else this.queues.delete(datasetId);
    }
  }

  private async flush(datasetId: string, batch: Pending[]): Promise<void> {
    try {
      await this.locks.run(datasetId, async () => {
        const generation = await this.currentGeneration(datasetId);
        const stale = batch.filter((p) => p.generation !== generation);
        for (const p of stale) {
          p.reject(new ProblemError(503, {
            detail: 'The dataset\'s schema changed while these rows were being written; nothing of them was written. Retry.',
            headers: { 'Retry-After': '1' },
          }));
        }
        const fresh = batch.filter((p) => p.generation === generation);
        if (!fresh.length) return;
        const result = await this.warehouse.client.exec({
          query: `INSERT INTO ${quoteIdent(datasetId)} FORMAT JSONEachRow`,
          values: Readable.from(fresh.map((p) => p.text)),
          // A field the table doesn't know must fail the insert, never vanish.
          clickhouse_settings: { input_format_skip_unknown_fields: 0, date_time_input_format: 'best_effort' },
        });
        result.stream.resume();
        await this.onCommitted?.(datasetId).catch((err: unknown) => this.logger.warn({ err, datasetId }, 'after-commit hook failed'));
        this.stats.inserts++;
        for (const p of fresh) {
          this.stats.rows += p.rows;
          p.resolve();
        }
      });
    } catch (err) {
      this.logger.error({ err, datasetId, requests: batch.length }, 'group commit insert failed');
      const problem = new ProblemError(503, { detail: 'The warehouse did not take the rows; nothing of this batch was written. Retry.', headers: { 'Retry-After': '1' } });
      for (const p of batch) p.reject(problem);
    }
  }
}
