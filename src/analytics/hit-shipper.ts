import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Warehouse } from '../stores/index.js';
import { readFrames, type SegmentContents } from './hit-journal-frame.js';
import type { HitJournal, Segment } from './hit-journal.js';
import { HEARTBEAT_MS } from './hit-journal-owner.js';
import { repairRecoveredSegments, type RepairOptions } from './journal-repair.js';
import { HITS_TABLE, INGEST_TABLE, ROLLUPS, SESSIONS_TABLE } from './warehouse-tables.js';

/**
 * Exactly once: each segment is shipped as one INSERT carrying the segment's own deduplication
 * token (its writer's directory and file name, the same whoever ships it). A segment is removed
 * only after its insert returned, so after a crash it may be shipped again; ClickHouse then drops
 * the blocks it already holds, per table, including the views' targets
 * (deduplicate_blocks_in_dependent_materialized_views), so an insert cut short halfway through the
 * views is completed rather than doubled. One case dedup can't cover, on non-replicated tables:
 * a kill between a table recording the token and its part becoming visible; so the segments of an
 * exited process are checked table by table after shipping (#recover). Non-replicated MergeTree
 * tables only remember tokens when non_replicated_deduplication_window is set, hence
 * enableIngestDeduplication. A segment
 * must be re-shipped within that many inserts into each table (hours at the ship interval).
 * Against power loss (rather than a crashed process), rows are as durable once shipped as
 * ClickHouse's own fsync settings make them.
 */
const SHIP_SETTINGS = {
  insert_deduplicate: 1,
  deduplicate_blocks_in_dependent_materialized_views: 1,
  // chDB turns async inserts on; they don't deduplicate, and a large batch gains nothing from them.
  async_insert: 0,
  // The views run in parallel rather than one after another.
  parallel_view_processing: 1,
  date_time_input_format: 'best_effort',
  input_format_skip_unknown_fields: 0,
} as const;

export const DEDUPLICATION_WINDOW = 10_000;

/** Makes the tables an ingest insert writes remember the last inserts' tokens (idempotent). */
export async function enableIngestDeduplication(warehouse: Warehouse): Promise<void> {
  const tables = [HITS_TABLE, SESSIONS_TABLE, ...ROLLUPS];
  const rs = await warehouse.client.query({
    query: 'SELECT name, engine, engine_full FROM system.tables WHERE database = currentDatabase() AND name IN {names:Array(String)}',
    query_params: { names: tables },
    format: 'JSONEachRow',
  });
  for (const t of await rs.json<{ name: string; engine: string; engine_full: string }>()) {
    if (t.engine.startsWith('Replicated') || /non_replicated_deduplication_window = [1-9]/.test(t.engine_full)) continue;
    await warehouse.client.command({ query: `ALTER TABLE ${t.name} MODIFY SETTING non_replicated_deduplication_window = ${DEDUPLICATION_WINDOW}` });
  }
}

export interface HitShipperOptions {
  /** Ship the active segment once its first row is this old (ms); 0: at once. */
  intervalMs: number;
  /** Ship the active segment once it holds this many rows. */
  batchRows: number;
  logger: Logger;
  /** After a segment's rows are in the warehouse (realtime pushes on change). */
  onShipped?: (websiteIds: ReadonlySet<string>) => void;
  /** How often to show this journal alive and look for journals of exited processes (ms). */
  orphanScanMs?: number;
  /** How the segments of exited processes are checked after shipping (tests shorten the waits); `checkRows`: rows read back for one check. */
  repair?: Omit<RepairOptions, 'logger'> & { checkRows?: number };
  now?: () => number;
}

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;
const REPAIR_ATTEMPTS = 3;
const RECOVER_CHECK_ROWS = 200_000;

/**
 * Moves journaled rows into ClickHouse in large, infrequent inserts: the active segment is sealed
 * when it reaches `batchRows` or `intervalMs`, then each sealed segment is inserted into the
 * ingest table (see SHIP_SETTINGS for exactly-once) and removed. A failed insert is retried with
 * backoff; meanwhile rows keep arriving in the journal (its bound answers 503 when it is full).
 */
export class HitShipper {
  /** `repaired`: rows put back after a crash had lost them from a table (see #recover). */
  readonly stats = { inserts: 0, rows: 0, failures: 0, repaired: 0 };
  readonly #o: HitShipperOptions;
  readonly #now: () => number;
  #loop?: Promise<void>;
  #again = false;
  #dueTimer?: NodeJS.Timeout;
  #retryTimer?: NodeJS.Timeout;
  #scanTimer?: NodeJS.Timeout;
  #retryMs = 0;
  #repairFailures = 0;
  #lastError: unknown;
  #closed = false;
  readonly #waiters = new Map<Segment, Array<() => void>>();

  constructor(
    private readonly journal: HitJournal,
    private readonly warehouse: Warehouse,
    options: HitShipperOptions,
  ) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Replays what exited processes left, then ships as rows arrive. */
  async start(): Promise<void> {
    await this.journal.adoptOrphans();
    this.journal.onWritten = () => this.#written();
    this.#scanTimer = setInterval(() => void this.#scan(), this.#o.orphanScanMs ?? HEARTBEAT_MS).unref();
    this.#kick();
  }

  /** Resolves once the segment is in the warehouse. */
  whenShipped(segment: Segment): Promise<void> {
    if (!this.journal.holds(segment)) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.#waiters.get(segment);
      if (list) list.push(resolve);
      else this.#waiters.set(segment, [resolve]);
    });
  }

  /** Ships every row journaled before the call; rejects if the warehouse refuses them. */
  async flush(): Promise<void> {
    await this.journal.seal();
    while (this.journal.nextSealed()) {
      // Now, not at the next retry.
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
      this.#lastError = undefined;
      this.#kick();
      await this.#loop;
      if (this.#lastError) throw this.#lastError;
    }
  }

  /** Ships everything and stops; rows the warehouse doesn't take stay in the journal for the next start. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#dueTimer);
    clearTimeout(this.#retryTimer);
    clearInterval(this.#scanTimer);
    try {
      await this.journal.close();
      await this.flush();
      await this.journal.dispose();
    } catch (err) {
      this.#o.logger.error({ err, rows: this.journal.unshippedRows, dir: this.journal.dir }, 'analytics: hits left in the journal; the next start ships them');
    }
  }

  #written(): void {
    const active = this.journal.active;
    if (!active || this.#closed) return;
    if (this.#o.intervalMs === 0 || active.rows >= this.#o.batchRows) this.#kick();
    else this.#dueTimer ??= setTimeout(() => {
      this.#dueTimer = undefined;
      this.#kick();
    }, Math.max(0, active.since + this.#o.intervalMs - this.#now()));
  }

  #due(): boolean {
    const active = this.journal.active;
    return !!active && (this.#o.intervalMs === 0 || active.rows >= this.#o.batchRows || this.#now() - active.since >= this.#o.intervalMs);
  }

  #kick(): void {
    if (this.#retryTimer) return;
    if (this.#loop) {
      this.#again = true;
      return;
    }
    this.#loop = this.#run().finally(() => {
      this.#loop = undefined;
      if (this.#again && !this.#retryTimer) {
        this.#again = false;
        this.#kick();
      }
    });
  }

  async #run(): Promise<void> {
    try {
      if (this.#due()) await this.journal.seal();
      for (let segment = this.journal.nextSealed(); segment; segment = this.journal.nextSealed()) {
        if (segment.adopted) await this.#recover(this.journal.adoptedSealed());
        else await this.#ship(segment);
      }
      this.#retryMs = 0;
      // Rows written meanwhile, not yet due: come back when they are.
      if (!this.#closed && this.journal.active) this.#written();
    } catch (err) {
      this.#lastError = err;
      this.stats.failures++;
      this.#retryMs = Math.min(RETRY_MAX_MS, Math.max(RETRY_MIN_MS, this.#retryMs * 2));
      this.#o.logger.error({ err, rows: this.journal.unshippedRows, retryInMs: this.#retryMs }, 'analytics: shipping journaled hits to the warehouse failed; retrying');
      if (!this.#closed) {
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          this.#kick();
        }, this.#retryMs);
        this.#retryTimer.unref();
      }
    }
  }

  async #ship(segment: Segment): Promise<void> {
    const contents = await this.#insert(segment);
    await this.#shipped(segment, contents.rows);
  }

  async #insert(segment: Segment): Promise<SegmentContents> {
    const contents = readFrames(await readFile(segment.path));
    if (contents.tornBytes) this.#o.logger.warn({ file: segment.path, tornBytes: contents.tornBytes }, 'analytics journal: dropped a torn tail (never acknowledged)');
    if (contents.rows) {
      await this.warehouse.insertRaw(INGEST_TABLE, 'JSONEachRow', contents.payloads, { ...SHIP_SETTINGS, insert_deduplication_token: segment.token });
    }
    return contents;
  }

  /**
   * Segments of exited processes: shipped like any other, all of them (so none is left half
   * inserted), then checked table by table against what they hold, since a process killed in the
   * middle of a ship insert may have left a table with the insert's token but without its rows
   * (journal-repair.ts); removed after that. They are read again for the check, at most
   * RECOVER_CHECK_ROWS at a time. A check that keeps failing is given up after a few attempts
   * (logged) rather than hold up the journal behind it: the rows are shipped, only a crash's loss
   * would stay.
   */
  async #recover(segments: Segment[]): Promise<void> {
    const rows = new Map<Segment, number>();
    for (const segment of segments) rows.set(segment, (await this.#insert(segment)).rows);
    const started = this.#now();
    const repaired: Record<string, number> = {};
    try {
      for (let i = 0; i < segments.length; ) {
        const chunk: SegmentContents[] = [];
        const most = this.#o.repair?.checkRows ?? RECOVER_CHECK_ROWS;
        for (let n = 0; i < segments.length && (chunk.length === 0 || n + rows.get(segments[i]!)! <= most); i++) {
          n += rows.get(segments[i]!)!;
          chunk.push(readFrames(await readFile(segments[i]!.path)));
        }
        const counts = await repairRecoveredSegments(this.warehouse, chunk, { logger: this.#o.logger, ...this.#o.repair });
        for (const [table, n] of Object.entries(counts)) repaired[table] = (repaired[table] ?? 0) + (n ?? 0);
      }
      this.#repairFailures = 0;
      const total = Object.values(repaired).reduce((n, r) => n + r, 0);
      this.stats.repaired += total;
      const facts = { segments: segments.length, rows: [...rows.values()].reduce((n, r) => n + r, 0), repaired, ms: this.#now() - started };
      if (total) this.#o.logger.warn(facts, 'analytics journal: put back rows a crash had lost from some tables (see Tracking durability)');
      else this.#o.logger.info(facts, 'analytics journal: checked the segments of an exited process after shipping them; nothing was missing');
    } catch (err) {
      // Rows put back before the failure stay (a check finds them present next time).
      this.stats.repaired += Object.values(repaired).reduce((n, r) => n + r, 0);
      if (++this.#repairFailures < REPAIR_ATTEMPTS) throw err;
      this.#repairFailures = 0;
      this.#o.logger.error({ err, segments: segments.length, repaired }, 'analytics journal: checking the segments of an exited process failed repeatedly; they are shipped but not checked');
    }
    for (const segment of segments) await this.#shipped(segment, rows.get(segment)!);
  }

  async #shipped(segment: Segment, rows: number): Promise<void> {
    await this.journal.remove(segment);
    this.stats.inserts++;
    this.stats.rows += rows;
    for (const resolve of this.#waiters.get(segment) ?? []) resolve();
    this.#waiters.delete(segment);
    this.#o.onShipped?.(segment.websiteIds);
  }

  async #scan(): Promise<void> {
    try {
      await this.journal.heartbeat();
      if (await this.journal.adoptOrphans()) this.#kick();
    } catch (err) {
      this.#o.logger.warn({ err }, 'analytics journal: looking for journals of exited processes failed');
    }
  }
}
