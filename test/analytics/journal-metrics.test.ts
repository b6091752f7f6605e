import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { asTenant, pluginsWithTestPrincipal } from '../helpers/test-principal.js';

const UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0';

let gw: TestGateway;
beforeAll(async () => {
  // Nothing ships on its own (a ten-minute interval, large batches): the backlog stays visible.
  gw = await startGateway('analytics_journal_metrics', {
    env: { ANALYTICS_SHIP_INTERVAL_MS: '600000', ANALYTICS_SHIP_BATCH_ROWS: '1000000' },
    overrides: { plugins: pluginsWithTestPrincipal({ without: ['rate-limit'] }) },
  });
});
afterAll(async () => {
  await gw?.close();
});

const scrape = async () => (await fetch(`${gw.url}/metrics`)).text();
const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('journal metrics', () => {
  it('show the unshipped backlog, then the rows and inserts once the journal is shipped', async () => {
    const created = await fetch(`${gw.url}/v1/websites`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...asTenant('metrics') },
      body: JSON.stringify({ domain: 'metrics.example', name: 'Metrics' }),
    });
    const site = (await created.json()) as { website_id: string; tracking_id: string };
    const before = await scrape();
    const shippedBefore = value(before, 'weir_analytics_shipped_rows_total')!;
    const insertsBefore = value(before, 'weir_analytics_ship_inserts_total')!;
    expect(value(before, 'weir_analytics_ship_failures_total')).toBe(0);
    expect(value(before, 'weir_analytics_repaired_rows_total')).toBe(0);

    for (const page of ['/a', '/b']) {
      const res = await fetch(`${gw.url}/collect`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': UA },
        body: JSON.stringify({ v: '1', tid: site.tracking_id, cid: 'visitor-1', t: 'pageview', dh: 'metrics.example', dp: page }),
      });
      expect(res.status).toBe(200);
    }
    // A new session's row, then the hit that continues it cancels it and writes the next: 2 hits + 3 session rows.
    const waiting = await scrape();
    expect(value(waiting, 'weir_analytics_journal_rows{state="unshipped"}')).toBe(5);
    expect(value(waiting, 'weir_analytics_shipped_rows_total')).toBe(shippedBefore);

    // Deleting a website ships what is journaled first.
    const deleted = await fetch(`${gw.url}/v1/websites/${site.website_id}`, { method: 'DELETE', headers: asTenant('metrics') });
    expect(deleted.status).toBe(204);
    let after = await scrape();
    for (let i = 0; i < 100 && value(after, 'weir_analytics_journal_rows{state="unshipped"}') !== 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      after = await scrape();
    }
    expect(value(after, 'weir_analytics_journal_rows{state="unshipped"}')).toBe(0);
    expect(value(after, 'weir_analytics_shipped_rows_total')).toBe(shippedBefore + 5);
    expect(value(after, 'weir_analytics_ship_inserts_total')).toBe(insertsBefore + 1);
    expect(value(after, 'weir_analytics_ship_failures_total')).toBe(0);
  }, 60_000);
});
