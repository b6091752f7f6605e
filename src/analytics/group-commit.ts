import type { Logger } from 'pino';
import type { Warehouse } from '../stores/index.js';
import { ProblemError } from '../problem.js';
import { HitJournal, type OpenJournalFile } from './hit-journal.js';
import { enableIngestDeduplication, HitShipper, type HitShipperOptions } from './hit-shipper.js';
import type { HitRow, SessionRow } from './warehouse-tables.js';

export interface GroupCommitOptions {
  /** Rows waiting for the journal write, at most; beyond it hits are refused with 503. */
  maxQueuedRows: number;
  /** Rows journaled and not yet in the warehouse, at most; beyond it hits are refused with 503. */
  maxJournalRows: number;
  /** Where the journal directories live (one per process instance, see hit-journal.ts). */
  journalRoot: string;
  /** Ship the journal to the warehouse once its oldest unshipped row is this old (ms). 0: ship at once and acknowledge only after. */
  shipIntervalMs: number;
  /** ... or once this many rows are waiting. */
  shipBatchRows: number;
  logger: Logger;
  /** After rows of these websites became visible in the warehouse. */
  onShipped?: (websiteIds: ReadonlySet<string>) => void;
  /** Tests inject failing file operations. */
  openJournalFile?: OpenJournalFile;
  /** How segments of exited processes are checked after shipping (tests shorten the waits). */
  repair?: HitShipperOptions['repair'];
}

const busy = (detail: string, cause?: unknown) => new ProblemError(503, { detail, headers: { 'Retry-After': '1' }, cause });

/**
 * Group commit through a local journal: hits from concurrent requests are written to the journal
 * together (one write and fdatasync), and each request is answered once its rows are on disk. The
 * shipper moves them into ClickHouse in large batches (one INSERT into the ingest table, whose
 * views write hits, sessions and rollups), exactly once even across crashes (hit-shipper.ts). So
 * an acknowledged hit is durable at once and visible in reports within the ship interval; with an
 * interval of 0 the answer waits for the insert as well.
 */
export class GroupCommitter {
  #closed = false;

  private constructor(
    private readonly journal: HitJournal,
    private readonly shipper: HitShipper,
    private readonly options: GroupCommitOptions,
  ) {}

  /** Opens this instance's journal, replays journals that exited processes left, and starts shipping. */
  static async open(warehouse: Warehouse, options: GroupCommitOptions): Promise<GroupCommitter> {
    await enableIngestDeduplication(warehouse);
    const journal = await HitJournal.open({ root: options.journalRoot, logger: options.logger, openFile: options.openJournalFile });
    const shipper = new HitShipper(journal, warehouse, {
      intervalMs: options.shipIntervalMs,
      batchRows: options.shipBatchRows,
      logger: options.logger,
      onShipped: options.onShipped,
      repair: options.repair,
    });
    await shipper.start();
    return new GroupCommitter(journal, shipper, options);
  }

  get queuedRows(): number {
    return this.journal.pendingRows;
  }

  /** Inserts and rows shipped so far, failed ship attempts, and rows put back after a crash (metrics, tests, benches). */
  get shipped(): { inserts: number; rows: number; failures: number; repaired: number } {
    return this.shipper.stats;
  }

  /** Rows journaled and not yet in the warehouse. */
  get unshippedRows(): number {
    return this.journal.unshippedRows;
  }

  /** Resolves once the rows are durable (journaled); rejects (503) at once when a queue is full, or when the journal write fails. */
  write(hits: HitRow[], sessions: SessionRow[]): Promise<void> {
    const rows = hits.length + sessions.length;
    if (this.#closed) return Promise.reject(busy('The gateway is shutting down.'));
    if (this.journal.pendingRows + rows > this.options.maxQueuedRows) {
      return Promise.reject(busy('Too many hits are waiting to be written; retry shortly.'));
    }
    if (this.journal.unshippedRows + this.journal.pendingRows + rows > this.options.maxJournalRows) {
      return Promise.reject(busy('Too many hits are waiting for the warehouse; retry shortly.'));
    }
    const websiteIds = new Set<string>();
    let text = '';
    // kind 0: a hit row, 1: a session row (see INGEST_TABLE). One JSON object a line.
    for (const h of hits) {
      websiteIds.add(h.website_id);
      text += `{"kind":0,${JSON.stringify(h).slice(1)}\n`;
    }
    for (const s of sessions) text += `{"kind":1,${JSON.stringify(s).slice(1)}\n`;
    const journaled = this.journal.append(Buffer.from(text), rows, websiteIds).catch((err: unknown) => {
      throw busy('The hit could not be stored; retry shortly.', err);
    });
    return this.options.shipIntervalMs === 0 ? journaled.then((segment) => this.shipper.whenShipped(segment)) : journaled.then(() => {});
  }

  /** Ships every hit acknowledged so far into the warehouse (reports see them once it resolves). */
  flush(): Promise<void> {
    return this.shipper.flush();
  }

  /** Refuses new rows, then ships everything journaled. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.shipper.close();
  }
}
