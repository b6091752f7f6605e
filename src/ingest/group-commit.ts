import type { Logger } from 'pino';
import type { KeyedMutex } from '../datasets/locks.js';
import { ProblemError } from '../problem.js';
import type { Warehouse } from '../stores/index.js';

// A field the table doesn't know must fail the insert, never vanish. (chDB has async_insert on,
// with wait_for_async_insert: an INSERT returns once its rows are written; it may share a part.)
const INSERT_SETTINGS = { input_format_skip_unknown_fields: 0, date_time_input_format: 'best_effort' };

interface Pending {
  generation: string;
  /** JSONEachRow bytes (or text): one row a line, each line ending in a newline. */
  data: Buffer;
  rows: number;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Group commit: one per-dataset queue. While INSERTs run (at most `concurrency` at once), rows
 * from every request that arrive queue up; the next INSERT takes them all (up to `maxBytes`). Each request's promise
 * settles after the INSERT that holds its rows returns, so an answer always follows the commit.
 */
export class GroupCommitter {
  private readonly queues = new Map<string, { pending: Pending[]; bytes: number; running: number }>();
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
    /**
     * INSERTs of one dataset that may run at once when a lot is queued. Two keep the warehouse
     * busy while the rows of the next are gathered (and let chDB parse on both cores); schema
     * changes still wait for all.
     */
    private readonly concurrency = 2,
  ) {}

  /** Queues rows (JSONEachRow, newline-terminated) for the next INSERT; settles after it. */
  submit(datasetId: string, generation: string, data: Buffer, rows: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let q = this.queues.get(datasetId);
      if (!q) this.queues.set(datasetId, (q = { pending: [], bytes: 0, running: 0 }));
      q.pending.push({ generation, data, rows, resolve, reject });
      q.bytes += data.length;
      if (this.wantsWorker(q)) void this.drain(datasetId);
    });
  }

  /**
   * Another INSERT may start: none runs, or a second one when a lot is queued (a block's worth).
   * Small requests wait for the running INSERT and go together in the next one.
   */
  private wantsWorker(q: { pending: Pending[]; bytes: number; running: number }): boolean {
    return q.pending.length > 0 && (q.running === 0 || (q.running < this.concurrency && q.bytes >= this.maxBytes / 2));
  }

  private async drain(datasetId: string): Promise<void> {
    const q = this.queues.get(datasetId)!;
    q.running++;
    try {
      while (q.pending.length) {
        const batch: Pending[] = [];
        let bytes = 0;
        while (q.pending.length && (batch.length === 0 || bytes + q.pending[0]!.data.length <= this.maxBytes)) {
          const next = q.pending.shift()!;
          bytes += next.data.length;
          batch.push(next);
        }
        q.bytes -= bytes;
        await this.flush(datasetId, batch);
      }
    } finally {
      q.running--;
      if (this.wantsWorker(q)) void this.drain(datasetId);
      else if (!q.running && !q.pending.length) this.queues.delete(datasetId);
    }
  }

  private async flush(datasetId: string, batch: Pending[]): Promise<void> {
    try {
      await this.locks.runShared(datasetId, async () => {
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
        // One statement: the rows of every request in it land together or not at all.
        await this.warehouse.insertRaw(datasetId, 'JSONEachRow', fresh.map((p) => p.data), INSERT_SETTINGS);
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
