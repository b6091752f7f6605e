import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { readFrames } from '../../src/analytics/hit-journal-frame.js';
import { openJournalFile, type OpenJournalFile } from '../../src/analytics/hit-journal.js';
import { openStores, type StoreConfig } from '../../src/stores/index.js';
import { startGateway } from '../helpers/app.js';
import { startServerProcess, TEST_SERVER_ENTRY, type ServerProcess } from '../helpers/server-process.js';
import { cleanupTestStores, testStoreConfig } from '../helpers/store-env.js';
import { asTenant, pluginsWithTestPrincipal } from '../helpers/test-principal.js';
import { journalShipped } from './journal-wait.js';

const UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0';
const hit = (url: string, tid: string, cid: string, page: string) =>
  fetch(`${url}/collect`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': UA }, body: JSON.stringify({ v: '1', tid, cid, t: 'pageview', dp: page }) });

async function createSite(url: string, tenant: string): Promise<{ website_id: string; tracking_id: string }> {
  const res = await fetch(`${url}/v1/websites`, { method: 'POST', headers: { 'content-type': 'application/json', ...asTenant(tenant) }, body: JSON.stringify({ domain: `${tenant}.example`, name: tenant }) });
  expect(res.status).toBe(201);
  return (await res.json()) as { website_id: string; tracking_id: string };
}

describe('hit journal: acknowledgement', () => {
  it('answers 503 problem+json when the journal cannot be written, stores nothing of the hit and forgets its session state', async () => {
    let failing = false;
    const faulty: OpenJournalFile = async (file) => {
      const real = await openJournalFile(file);
      return { ...real, datasync: () => (failing ? Promise.reject(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })) : real.datasync()) };
    };
    const gw = await startGateway('analytics_journal_ack', {
      env: { ANALYTICS_SHIP_INTERVAL_MS: '0' },
      overrides: { plugins: pluginsWithTestPrincipal({ without: ['rate-limit'] }), analytics: { openJournalFile: faulty } },
    });
    try {
      const site = await createSite(gw.url, 'journal-ack');
      expect((await hit(gw.url, site.tracking_id, 'v1', '/first')).status).toBe(200);
      failing = true;
      const refused = await hit(gw.url, site.tracking_id, 'v1', '/refused');
      expect(refused.status).toBe(503);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(((await refused.json()) as { status: number }).status).toBe(503);
      failing = false;
      expect((await hit(gw.url, site.tracking_id, 'v1', '/third')).status).toBe(200);

      const rs = await gw.stores.warehouse.client.query({
        query: 'SELECT page, session_hit_number AS n, session_id FROM analytics_hits WHERE website_id = {w:UUID} ORDER BY time',
        query_params: { w: site.website_id },
        format: 'JSONEachRow',
      });
      // The refused hit is nowhere, and its session state was forgotten: the next hit starts a
      // session afresh rather than cancel a session row that never landed.
      const rows = await rs.json<{ page: string; n: number; session_id: string }>();
      expect(rows.map(({ page, n }) => ({ page, n }))).toEqual([{ page: '/first', n: 1 }, { page: '/third', n: 1 }]);
      expect(rows[0]!.session_id).not.toBe(rows[1]!.session_id);
      const sessions = await gw.stores.warehouse.client.query({
        query: 'SELECT sum(sign) AS n, sum(sign * hits) AS hits FROM analytics_sessions WHERE website_id = {w:UUID}',
        query_params: { w: site.website_id },
        format: 'JSONEachRow',
      });
      expect(await sessions.json()).toEqual([{ n: '2', hits: '2' }]);
    } finally {
      await gw.close();
    }
  }, 60_000);
});

describe('hit journal: SIGKILL', () => {
  const VISITORS = 16;
  const configs: StoreConfig[] = [];
  const processes: ServerProcess[] = [];
  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) await p.stop('SIGKILL');
    for (const c of configs) await cleanupTestStores(c);
  });

  // Between ships: nothing ships before the kill (a minute's interval, batches larger than the test
  // writes), so the kill finds every acknowledged hit only in the journal and the restart must ship
  // each once. While shipping: small batches ship all along, so the kill may land inside a ship
  // insert, and the restart re-ships that segment and checks it table by table (journal-repair.ts;
  // a lost block is tested deterministically in journal-repair.test.ts).
  it.each([
    { when: 'between ships', batchRows: '1000000', allJournaled: true },
    { when: 'while shipping', batchRows: '400', allJournaled: false },
  ])('keeps every acknowledged hit exactly once, with consistent sessions, when the gateway is killed under load ($when) and restarted', async ({ batchRows, allJournaled }) => {
    const stores = testStoreConfig('analytics-journal-crash');
    configs.push(stores);
    const env = {
      ANALYTICS_SHIP_INTERVAL_MS: '60000',
      ANALYTICS_SHIP_BATCH_ROWS: batchRows,
      RATE_LIMIT_POLICIES: JSON.stringify({ tracking: { burst: 1_000_000_000, rate: 1_000_000 } }),
    };
    const first = await startServerProcess('analytics-journal-crash', env, { entry: TEST_SERVER_ENTRY, stores });
    processes.push(first);
    const site = await createSite(first.url, 'journal-crash');

    const acked: string[] = [];
    let killed = false;
    // Each visitor sends its hits one after another, so its session grows hit by hit.
    const visitors = Array.from({ length: VISITORS }, async (_, v) => {
      for (let k = 0; !killed; k++) {
        const page = `/v${v}/h${k}`;
        try {
          const res = await hit(first.url, site.tracking_id, `visitor-${v}`, page);
          if (res.status !== 200) return;
          acked.push(page);
        } catch {
          return; // the server is gone
        }
      }
    });
    for (let i = 0; i < 1200 && acked.length < 1000; i++) await new Promise((r) => setTimeout(r, 50));
    await first.stop('SIGKILL');
    killed = true;
    await Promise.all(visitors);
    expect(acked.length).toBeGreaterThan(0);
    const root = path.join(stores.dataDir, 'analytics-journal');
    const left = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.wal'));
    const unshipped = left.reduce((n, f) => n + readFrames(readFileSync(path.join(root, f))).rows, 0);
    // Each acknowledged hit is there (a hit row and one or two session rows each).
    if (allJournaled) expect(unshipped).toBeGreaterThanOrEqual(2 * acked.length);

    // The restarted gateway adopts the dead one's journal and ships what it held.
    const second = await startServerProcess('analytics-journal-crash', env, { entry: TEST_SERVER_ENTRY, stores });
    processes.push(second);
    await journalShipped(stores.dataDir);
    expect(await second.stop('SIGTERM')).toBe(0);
    // It checked the dead journal's segments table by table after shipping them.
    const checked = second.logs.filter((l) => 'repaired' in l && 'segments' in l);
    expect(checked.length).toBeGreaterThan(0);
    if (process.env.DEBUG_REPAIR) console.log(JSON.stringify(checked));

    const opened = await openStores(stores, pino({ level: 'silent' }));
    try {
      const query = async <T>(q: string) => (await opened.warehouse.client.query({ query: q, query_params: { w: site.website_id }, format: 'JSONEachRow' })).json<T>();
      const pages = await query<{ page: string; c: string }>('SELECT page, count() AS c FROM analytics_hits WHERE website_id = {w:UUID} GROUP BY page');
      const stored = new Map(pages.map((p) => [p.page, Number(p.c)]));
      expect([...stored.values()].filter((c) => c !== 1)).toEqual([]);
      expect(acked.filter((p) => !stored.has(p))).toEqual([]);
      // Stored beyond the acknowledged: at most the one hit per visitor in flight at the kill.
      expect(stored.size - acked.length).toBeLessThanOrEqual(VISITORS);

      // Each session: one live row whose hit count is the number of its stored hits.
      const hits = await query<{ session_id: string; c: string }>('SELECT session_id, count() AS c FROM analytics_hits WHERE website_id = {w:UUID} GROUP BY session_id');
      const sessions = await query<{ session_id: string; n: string; h: string }>(
        'SELECT session_id, sum(sign) AS n, sum(sign * hits) AS h FROM analytics_sessions WHERE website_id = {w:UUID} GROUP BY session_id',
      );
      expect(sessions.map((s) => s.session_id).sort()).toEqual(hits.map((h) => h.session_id).sort());
      const hitCount = new Map(hits.map((h) => [h.session_id, h.c]));
      for (const s of sessions) expect({ id: s.session_id, n: s.n, h: s.h }).toEqual({ id: s.session_id, n: '1', h: hitCount.get(s.session_id) });
      // The rollups agree with the raw rows.
      const [rolled] = await query<{ h: string }>('SELECT sum(hits) AS h FROM analytics_hits_15m WHERE website_id = {w:UUID}');
      expect(Number(rolled!.h)).toBe(stored.size);
      const [rolledPages] = await query<{ h: string }>('SELECT sum(hits) AS h FROM analytics_pages_15m WHERE website_id = {w:UUID}');
      expect(Number(rolledPages!.h)).toBe(stored.size);
      const [rolledSessions] = await query<{ s: string }>('SELECT sum(sessions) AS s FROM analytics_sessions_15m WHERE website_id = {w:UUID} AND grain = 0');
      expect(Number(rolledSessions!.s)).toBe(sessions.length);
    } finally {
      await opened.close();
    }
  }, 240_000);
});
