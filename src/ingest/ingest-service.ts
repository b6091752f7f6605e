import type { Request } from 'express';
import type { Logger } from 'pino';
import type { DatasetService } from '../datasets/service.js';
import { ProblemError } from '../problem.js';
import type { Stores } from '../stores/index.js';
import { openBody } from './body-source.js';
import { GroupCommitter } from './group-commit.js';
import { IdempotencyStore, mismatch, type IngestResultBody } from './idempotency.js';
import { InflightBudget } from './inflight-budget.js';
import { BlockPool, IngestRun } from './ingest-run.js';
import { deleteQuarantine } from './quarantine.js';
import { jsonArrayRows } from './row-splitters.js';

export interface IngestOptions {
  /** Most bytes one INSERT takes (group commit merges requests up to this). */
  batchBytes: number;
  /** Bound on ingest bytes held in memory across requests (backpressure). */
  maxInflightBytes: number;
  /** A request hands its rows to group commit in chunks of about this size. */
  chunkBytes?: number;
  maxRowBytes?: number;
  idempotencyLeaseMs?: number;
}

export type IngestResponse = IngestResultBody & { idempotent_replay: boolean };

/** Row ingest over HTTP: stream in, check, quarantine, group-commit, answer after the commit. */
export class IngestService {
  readonly committer: GroupCommitter;
  readonly budget: InflightBudget;
  readonly idempotency: IdempotencyStore;
  readonly chunkBytes: number;
  readonly maxRowBytes: number;
  private readonly leaseMs: number;
  /** Row blocks reused across requests (a few: enough for steady concurrent ingest, little held when idle). */
  private readonly blocks: BlockPool;

  constructor(
    private readonly stores: Stores,
    readonly datasets: DatasetService,
    private readonly logger: Logger,
    options: IngestOptions,
  ) {
    this.chunkBytes = options.chunkBytes ?? Math.min(4 * 1024 * 1024, options.batchBytes);
    this.maxRowBytes = options.maxRowBytes ?? 2 * 1024 * 1024;
    this.leaseMs = options.idempotencyLeaseMs ?? 10_000;
    this.budget = new InflightBudget(options.maxInflightBytes);
    this.blocks = new BlockPool(this.chunkBytes + 64 * 1024, 4);
    this.idempotency = new IdempotencyStore(stores.metadata, this.leaseMs);
    this.committer = new GroupCommitter(stores.warehouse, datasets.tableLocks, logger, options.batchBytes, async (id) => {
      try {
        return (await datasets.writable((await datasets.tenantOf(id)) ?? '', id)).generation;
      } catch {
        return undefined;
      }
    });
  }

  newRun(dataset: Awaited<ReturnType<DatasetService['writable']>>, tag: string): IngestRun {
    return new IngestRun(dataset, this.committer, this.stores.metadata, tag, this.chunkBytes, this.maxRowBytes, this.blocks);
  }

  /** POST /v1/datasets/{id}/ingest. Everything before the body is read can refuse cheaply. */
  async ingestRequest(req: Request, opts: { tenant: string; datasetId: string; limit: number; idempotencyKey?: string }): Promise<IngestResponse> {
    const dataset = await this.datasets.writable(opts.tenant, opts.datasetId);
    const contentType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const format = contentType === 'application/x-ndjson' ? 'ndjson' : contentType === 'application/json' ? 'json' : undefined;
    if (!format) throw new ProblemError(415, { detail: 'Send rows as application/json (an array) or application/x-ndjson.' });
    const encoding = (req.headers['content-encoding'] ?? 'identity').toString().toLowerCase();
    if (encoding !== 'gzip' && encoding !== 'identity') throw new ProblemError(415, { detail: `Content-Encoding ${encoding} is not supported; use gzip or identity.` });
    const declared = Number(req.headers['content-length']);
    const reserve = Number.isFinite(declared) && declared > 0 && encoding === 'identity' ? Math.min(declared * 3, this.chunkBytes * 3) : this.chunkBytes * 3;
    const release = this.budget.reserve(reserve);
    try {
      const claim = opts.idempotencyKey ? await this.idempotency.claim(opts.tenant, opts.idempotencyKey, opts.datasetId, req.id) : { kind: 'new' as const };
      // The body's hash only matters with an Idempotency-Key (a retry must send the same body).
      const body = openBody(req, { gzip: encoding === 'gzip', limit: opts.limit, hash: opts.idempotencyKey !== undefined });
      const hashOf = () => `${format}:${body.hash.copy().digest('hex')}`;
      if (claim.kind === 'done') {
        for await (const _chunk of body.chunks) {
          // Read (and hash) the retry's body without keeping it.
        }
        if (claim.bodyHash !== hashOf()) throw mismatch();
        return { ...claim.result, idempotent_replay: true };
      }
      if (claim.kind === 'takeover') await this.undo(opts.datasetId, claim.previousRequestId);
      const run = this.newRun(dataset, req.id);
      const renew = opts.idempotencyKey
        ? setInterval(() => void this.idempotency.renew(opts.tenant, opts.idempotencyKey!).catch(() => {}), Math.max(1000, this.leaseMs / 3))
        : undefined;
      try {
        if (format === 'ndjson') {
          for await (const chunk of body.chunks) await run.addNdjson(chunk);
          run.endNdjson();
        } else {
          for await (const batch of jsonArrayRows(body.chunks, this.maxRowBytes)) await run.add(batch);
        }
        await run.finish();
      } catch (err) {
        await run.abandon();
        // All or nothing: what this request already committed is taken back before answering.
        const undone = await this.undo(opts.datasetId, req.id).then(() => true, (undoErr: unknown) => {
          this.logger.error({ err: undoErr, requestId: req.id }, 'could not undo a failed ingest request');
          return false;
        });
        if (opts.idempotencyKey && undone) await this.idempotency.release(opts.tenant, opts.idempotencyKey).catch(() => {});
        throw withOutcome(err, undone ? { accepted: 0, quarantined: 0 } : { accepted: run.accepted, quarantined: run.quarantined });
      } finally {
        clearInterval(renew);
      }
      const result: IngestResultBody = { accepted: run.accepted, quarantined: run.quarantined, errors: run.errors, request_id: req.id };
      if (opts.idempotencyKey) await this.idempotency.complete(opts.tenant, opts.idempotencyKey, hashOf(), result);
      return { ...result, idempotent_replay: false };
    } finally {
      release();
    }
  }

  /** Removes the rows and quarantine entries one attempt wrote. */
  async undo(datasetId: string, requestId: string): Promise<void> {
    await this.datasets.tableLocks.run(datasetId, () => this.datasets.tables.deleteByRequest(datasetId, requestId));
    await deleteQuarantine(this.stores.metadata, requestId);
  }
}

/** Adds what was kept of the request to the problem, so a failure never hides accepted rows. */
function withOutcome(err: unknown, outcome: { accepted: number; quarantined: number }): unknown {
  if (!(err instanceof ProblemError)) return err;
  const kept = outcome.accepted + outcome.quarantined;
  return new ProblemError(err.status, {
    type: err.type.replace(/^.*\/problems\//, ''),
    title: err.title,
    detail: `${err.detail ?? err.title} ${kept ? `${outcome.accepted} rows were written and ${outcome.quarantined} quarantined before it.` : 'No row of this request was kept.'}`,
    errors: err.errors,
    headers: err.headers,
    extra: { ...err.extra, ...outcome },
  });
}
