import type { Warehouse } from '../stores/index.js';
import { ProblemError } from '../problem.js';
import { INGEST_TABLE, type HitRow, type SessionRow } from './warehouse-tables.js';

export interface GroupCommitOptions {
  /** Rows waiting for an insert, at most; beyond it hits are refused with 503. */
  maxQueuedRows: number;
  /** Rows in one INSERT, at most. */
  maxBatchRows: number;
}

// The rollups' materialized views (warehouse-tables.ts) run in parallel rather than one after
// another: an insert's latency bounds how fast hits are acknowledged.
const INSERT_SETTINGS = { parallel_view_processing: 1 } as const;

interface Entry {
  hits: HitRow[];
  sessions: SessionRow[];
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Group commit: hits from concurrent requests are merged into one INSERT (into the ingest table,
 * whose views write hits, sessions and rollups), and each
 * request is answered only after the insert that holds its rows has succeeded. While an insert
 * runs, new rows gather for the next one, so batches grow with load and latency stays one insert
 * at low load.
 */
export class GroupCommitter {
  #pending: Entry[] = [];
  #queuedRows = 0;
  #inFlight: Promise<void> | undefined;
  #closed = false;

  constructor(
    private readonly warehouse: Warehouse,
    private readonly options: GroupCommitOptions,
  ) {}

  get queuedRows(): number {
    return this.#queuedRows;
  }

  /** Resolves once the rows are committed; rejects (503) at once when the queue is full. */
  write(hits: HitRow[], sessions: SessionRow[]): Promise<void> {
    const rows = hits.length + sessions.length;
    if (this.#closed) return Promise.reject(new ProblemError(503, { detail: 'The gateway is shutting down.', headers: { 'Retry-After': '1' } }));
    if (this.#queuedRows + rows > this.options.maxQueuedRows) {
      return Promise.reject(
        new ProblemError(503, { detail: 'Too many hits are waiting to be written; retry shortly.', headers: { 'Retry-After': '1' } }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ hits, sessions, resolve, reject });
      this.#queuedRows += rows;
      this.#kick();
    });
  }

  /** Writes what is queued, then refuses new rows. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#inFlight || this.#pending.length) {
      this.#kick();
      await this.#inFlight;
    }
  }

  #kick(): void {
    if (this.#inFlight || this.#pending.length === 0) return;
    const batch = this.#take();
    this.#inFlight = this.#insert(batch).finally(() => {
      this.#inFlight = undefined;
      this.#kick();
    });
  }

  /** The oldest requests' rows, up to maxBatchRows (always at least one request). */
  #take(): Entry[] {
    let rows = 0;
    let count = 0;
    for (const entry of this.#pending) {
      const size = entry.hits.length + entry.sessions.length;
      if (count > 0 && rows + size > this.options.maxBatchRows) break;
      rows += size;
      count++;
    }
    return this.#pending.splice(0, count);
  }

  async #insert(batch: Entry[]): Promise<void> {
    const hits = batch.flatMap((e) => e.hits);
    const sessions = batch.flatMap((e) => e.sessions);
    try {
      // One statement for both tables (see INGEST_TABLE): an insert's fixed cost is paid once.
      const values: Array<(HitRow | SessionRow) & { kind: 0 | 1 }> = [];
      for (const h of hits) values.push({ ...h, kind: 0 });
      for (const s of sessions) values.push({ ...s, kind: 1 });
      await this.warehouse.client.insert({ table: INGEST_TABLE, values, format: 'JSONEachRow', clickhouse_settings: INSERT_SETTINGS });
      for (const w of batch) w.resolve();
    } catch (err) {
      const problem = new ProblemError(503, { detail: 'The hit could not be stored; retry shortly.', headers: { 'Retry-After': '1' }, cause: err });
      for (const w of batch) w.reject(problem);
    } finally {
      this.#queuedRows -= hits.length + sessions.length;
    }
  }
}
