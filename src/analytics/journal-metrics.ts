import { Counter, Gauge, type Registry } from 'prom-client';
import type { GroupCommitter } from './group-commit.js';

/**
 * The tracking journal's backlog and shipping on /metrics, read from the committer at scrape time
 * (nothing is counted on the request path). A growing `unshipped` backlog with ship failures means
 * ClickHouse isn't taking the hits: at ANALYTICS_JOURNAL_MAX_ROWS, /collect answers 503.
 */
export function registerJournalMetrics(registry: Registry, committer: GroupCommitter): void {
  const registers = [registry];
  new Gauge({
    name: 'weir_analytics_journal_rows',
    help: 'Tracking rows (hits and session rows) in the journal: waiting for their write ("writing") or written and not yet in the warehouse ("unshipped").',
    labelNames: ['state'],
    registers,
    collect() {
      this.set({ state: 'writing' }, committer.queuedRows);
      this.set({ state: 'unshipped' }, committer.unshippedRows);
    },
  });
  // Counters that follow the shipper's own totals: each scrape adds what happened since the last.
  const following = (name: string, help: string, read: () => number) => {
    let published = 0;
    new Counter({
      name,
      help,
      registers,
      collect() {
        const now = read();
        if (now > published) this.inc(now - published);
        published = now;
      },
    });
  };
  following('weir_analytics_shipped_rows_total', 'Tracking rows shipped from the journal into the warehouse.', () => committer.shipped.rows);
  following('weir_analytics_ship_inserts_total', 'Warehouse inserts made by the journal shipper.', () => committer.shipped.inserts);
  following('weir_analytics_repaired_rows_total', 'Rows put back into a warehouse table after a crash had lost them there (checked when a journal of an exited process is shipped).', () => committer.shipped.repaired);
  following('weir_analytics_ship_failures_total', 'Journal ship attempts the warehouse refused (retried with backoff).', () => committer.shipped.failures);
}
