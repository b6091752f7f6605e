import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupCommitter } from '../../src/analytics/group-commit.js';
import { frameHeader } from '../../src/analytics/hit-journal-frame.js';
import { newInstanceName, parseInstanceName } from '../../src/analytics/hit-journal-owner.js';
import { enableIngestDeduplication } from '../../src/analytics/hit-shipper.js';
import { runReport } from '../../src/analytics/reports.js';
import type { ReportSpec } from '../../src/analytics/report-compiler.js';
import type { SessionState } from '../../src/analytics/sessions.js';
import { createAnalyticsTables, sessionRow, type HitRow } from '../../src/analytics/warehouse-tables.js';
import { openStores, type StoreConfig, type Stores } from '../../src/stores/index.js';
import { cleanupTestStores, testStoreConfig } from '../helpers/store-env.js';

const logger = pino({ level: 'silent' });
let config: StoreConfig;
let stores: Stores;
let root: string;

beforeAll(async () => {
  config = testStoreConfig('analytics_journal_repair');
  stores = await openStores(config, logger);
  await createAnalyticsTables(stores.warehouse);
  await enableIngestDeduplication(stores.warehouse);
  root = path.join(config.dataDir, 'analytics-journal');
}, 60_000);
afterAll(async () => {
  await stores?.close();
  if (config) await cleanupTestStores(config);
});

const RAW = ['analytics_hits', 'analytics_sessions'];
const ROLLUPS = ['analytics_hits_15m', 'analytics_pages_15m', 'analytics_sessions_15m'];

// Across a month's end: hits, sessions and rollups each have rows in two partitions.
const T0 = Date.parse('2026-10-31T23:50:00Z');

/** One visitor's hits, 4 minutes apart, in one session: each hit's line and its session rows' lines (as group-commit.ts journals them). */
function visit(site: string, n: number, pages: string[]): string[] {
  const session = randomUUID();
  const visitor = String(1000 + n);
  const start = T0 + n * 7_000;
  let previous: SessionState | undefined;
  return pages.map((page, k) => {
    const time = start + k * 240_000;
    const event = page.startsWith('event:');
    const purchase = page === '/thanks';
    const state: SessionState = {
      id: session,
      start,
      last: time,
      date: '2026-10-31',
      hits: k + 1,
      pageviews: (previous?.pageviews ?? 0) + (event ? 0 : 1),
      interactions: k + 1,
      newVisitor: true,
      entryPage: pages[0]!,
      entryHostname: 'x.example',
      referrer: '',
      traffic: { source: n % 2 ? 'google' : '(direct)', medium: n % 2 ? 'organic' : '(none)', campaign: '', keyword: '', content: '' },
      country: n % 2 ? 'DE' : 'FR',
      deviceType: 'desktop',
      browser: 'Chrome',
      os: 'Linux',
      goalIds: [...(previous?.goalIds ?? []), ...(purchase ? ['goal_buy'] : [])],
      goalValues: [...(previous?.goalValues ?? []), ...(purchase ? [49.9] : [])],
    };
    const hit: HitRow = {
      website_id: site, time: new Date(time).toISOString(), hit_type: event ? 'event' : 'pageview', visitor, client_id: '', user_id: '', session_id: session,
      session_hit_number: k + 1, is_new_visitor: 1, is_interaction: 1, page: event ? '' : page, hostname: 'x.example', title: '', referrer: '',
      source: state.traffic.source, medium: state.traffic.medium, campaign: '', keyword: '', content: '', event_category: event ? 'cta' : '', event_action: event ? page : '',
      event_label: '', event_value: null, country: state.country, device_type: 'desktop', browser: 'Chrome', os: 'Linux', language: '', screen_resolution: '', goal_ids: purchase ? ['goal_buy'] : [],
    };
    const rows = previous ? [sessionRow(site, visitor, previous, -1), sessionRow(site, visitor, state, 1)] : [sessionRow(site, visitor, state, 1)];
    previous = state;
    return [`{"kind":0,${JSON.stringify(hit).slice(1)}\n`, ...rows.map((r) => `{"kind":1,${JSON.stringify(r).slice(1)}\n`)].join('');
  });
}

/** A segment file's bytes: one frame per hit, as the journal writes them. */
const segmentBytes = (lines: string[]) => Buffer.concat(lines.map((l) => Buffer.from(l)).flatMap((p) => [frameHeader([p]), p]));

/**
 * Two segments of a process that died: the first holds each visitor's first two hits, the second
 * their later hits (cancelling session rows of the first) and a new visitor. Returns the dead
 * process's directory name.
 */
function deadJournal(site: string): { dir: string; first: Buffer; second: Buffer; hits: number } {
  const visits = [
    visit(site, 0, ['/', '/pricing', 'event:signup', '/thanks']),
    visit(site, 1, ['/blog', '/', '/pricing']),
    visit(site, 2, ['/pricing', 'event:signup', '/thanks', '/']),
  ];
  const late = visit(site, 3, ['/', '/blog']);
  const first = segmentBytes(visits.flatMap((v) => v.slice(0, 2)));
  const second = segmentBytes([...visits.flatMap((v) => v.slice(2)), ...late]);
  const me = parseInstanceName(newInstanceName())!;
  const dir = `${me.host}~${me.scope}~${spawnSync(process.execPath, ['-e', '']).pid}~0~${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  mkdirSync(path.join(root, dir), { recursive: true });
  writeFileSync(path.join(root, dir, '000000000001.wal'), first);
  writeFileSync(path.join(root, dir, '000000000002.wal'), second);
  return { dir, first, second, hits: 13 };
}

/** The dead process's insert of a segment, as the shipper makes it. */
const shipAsDead = (bytes: Buffer, token: string) =>
  stores.warehouse.insertRaw('analytics_ingest', 'JSONEachRow', payloads(bytes), {
    insert_deduplicate: 1,
    deduplicate_blocks_in_dependent_materialized_views: 1,
    async_insert: 0,
    date_time_input_format: 'best_effort',
    insert_deduplication_token: token,
  });

function payloads(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < bytes.length; ) {
    const length = bytes.readUInt32LE(o);
    out.push(bytes.subarray(o + 8, o + 8 + length));
    o += 8 + length;
  }
  return out;
}

async function rows<T>(query: string, site: string): Promise<T[]> {
  return (await stores.warehouse.client.query({ query, query_params: { w: site }, format: 'JSONEachRow' })).json<T>();
}
const count = async (table: string, site: string) => Number((await rows<{ n: string }>(`SELECT count() AS n FROM ${table} WHERE website_id = {w:UUID}`, site))[0]!.n);

/** What a rollup would hold had its view seen every raw row of the site, against what it holds (both sorted). */
async function rollupAgainstRaw(rollup: string, site: string): Promise<{ fromRaw: unknown[]; held: unknown[] }> {
  const [view] = await rows<{ as_select: string; key: string }>(
    `SELECT v.as_select AS as_select, t.sorting_key AS key FROM system.tables AS v, system.tables AS t
     WHERE v.database = currentDatabase() AND t.database = currentDatabase() AND v.name = '${rollup}_mv' AND t.name = '${rollup}'`,
    site,
  );
  const source = view!.as_select.includes('analytics_sessions') ? 'analytics_sessions' : 'analytics_hits';
  const fromRaw = view!.as_select.replace(new RegExp(`FROM \\S*${source}\\b`), `FROM (SELECT * FROM ${source} WHERE website_id = {w:UUID})`);
  const columns = (await rows<{ name: string }>(`SELECT name FROM system.columns WHERE database = currentDatabase() AND table = '${rollup}' ORDER BY position`, site)).map((c) => c.name);
  const sums = columns.filter((c) => !view!.key.split(', ').includes(c));
  const rounded = (c: string) => (c === 'goal_value' ? `round(${c}, 6) AS ${c}` : c);
  const held = `SELECT ${view!.key}, ${sums.map((s) => `sum(${s}) AS ${s}`).join(', ')} FROM ${rollup} WHERE website_id = {w:UUID} GROUP BY ${view!.key}`;
  const sorted = (q: string) => `SELECT ${columns.map(rounded).join(', ')} FROM (${q}) WHERE ${sums.map((s) => `${s} != 0`).join(' OR ')} ORDER BY ${view!.key}`;
  return { fromRaw: await rows(sorted(fromRaw), site), held: await rows(sorted(held), site) };
}

/** Every table holds each journaled row exactly once: raw rows by identity, rollups equal to their views over the raw rows, reports equal either way. */
async function expectExact(site: string, hits: number): Promise<void> {
  const [h] = await rows<{ n: string; ids: string }>('SELECT count() AS n, uniqExact(session_id, session_hit_number) AS ids FROM analytics_hits WHERE website_id = {w:UUID}', site);
  expect(h).toEqual({ n: String(hits), ids: String(hits) });
  // Per session and version: +1 for the latest, 0 (written and cancelled, or collapsed away) for the others.
  const net = await rows<{ session_id: string; version: number; n: string; latest: number }>(
    `SELECT session_id, version, sum(sign) AS n, any(l) AS latest FROM analytics_sessions
     INNER JOIN (SELECT session_id, max(session_hit_number) AS l FROM analytics_hits WHERE website_id = {w:UUID} GROUP BY session_id) AS last USING (session_id)
     WHERE website_id = {w:UUID} GROUP BY session_id, version`,
    site,
  );
  expect(net.filter((r) => Number(r.n) !== (r.version === r.latest ? 1 : 0))).toEqual([]);
  expect(net.filter((r) => r.version === r.latest).length).toBe(4);
  for (const rollup of ROLLUPS) {
    const { fromRaw, held } = await rollupAgainstRaw(rollup, site);
    expect(held, rollup).toEqual(fromRaw);
    expect(held.length).toBeGreaterThan(0);
  }
  const website = { id: site, timezone: 'UTC' };
  const range = { start_date: '2026-10-31', end_date: '2026-11-01' };
  const specs: ReportSpec[] = [
    { date_range: range, metrics: ['pageviews', 'unique_users', 'sessions', 'bounce_rate', 'avg_session_duration', 'pages_per_session', 'goal_value'], dimensions: ['date'] },
    { date_range: range, metrics: ['pageviews', 'unique_users', 'sessions'], dimensions: ['source', 'medium', 'country'] },
    { date_range: range, metrics: ['pageviews', 'unique_users'], dimensions: ['page'] },
  ];
  for (const spec of specs) {
    const plans: string[] = [];
    const rolled = await runReport(stores.warehouse, website, new Set(), spec, { onPlan: (p) => plans.push(`${p.hits}|${p.sessions}`) });
    const raw = await runReport(stores.warehouse, website, new Set(), spec, { rollups: false });
    expect(plans.join(' '), JSON.stringify(spec)).toMatch(/_15m/);
    expect(rolled.rows, JSON.stringify(spec)).toEqual(raw.rows);
  }
}

/** Starts a process that adopts the dead journal and ships it; with what it logged. */
async function adopt(checkRows?: number): Promise<GroupCommitter & { logged: Array<Record<string, any>> }> {
  const logged: Array<Record<string, any>> = [];
  const capture = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
  const c = await GroupCommitter.open(stores.warehouse, {
    maxQueuedRows: 10_000, maxJournalRows: 100_000, journalRoot: root, shipIntervalMs: 60_000, shipBatchRows: 1_000_000, logger: capture, repair: { settleMs: 20, attempts: 2, checkRows },
  });
  try {
    await c.flush();
  } finally {
    // Closed at once: a live one would adopt the next test's dead journal on its periodic scan.
    await c.close();
  }
  return Object.assign(c, { logged });
}
const repairedLog = (logged: Array<Record<string, any>>) => logged.find((l) => 'repaired' in l && 'segments' in l)?.repaired as Record<string, number> | undefined;

describe('re-shipping after a crash that lost a block from one table', () => {
  it.each([
    ...[...RAW, ...ROLLUPS].map((lost) => ({ lost, checked: 'together', checkRows: undefined })),
    // Each segment read back and checked on its own, after both were shipped.
    { lost: 'analytics_sessions', checked: 'one segment at a time', checkRows: 1 },
    { lost: 'analytics_sessions_15m', checked: 'one segment at a time', checkRows: 1 },
  ])('puts back what $lost lost (its token recorded, its rows not), doubling nothing elsewhere; segments checked $checked', async ({ lost, checkRows }) => {
    const site = randomUUID();
    const dead = deadJournal(site);
    // The dead process was shipping its first segment: every table took it but one, which
    // recorded the insert's token without its rows (what a kill in that moment leaves).
    const token = `${dead.dir}/000000000001`;
    await shipAsDead(dead.first, token);
    const before = await count(lost, site);
    expect(before).toBeGreaterThan(0);
    await stores.warehouse.client.command({ query: `ALTER TABLE ${lost} DELETE WHERE website_id = {w:UUID}`, query_params: { w: site }, clickhouse_settings: { mutations_sync: '2' } });
    // Shipping it again is dropped by that table: the loss the repair exists for.
    await shipAsDead(dead.first, token);
    expect(await count(lost, site)).toBe(0);

    const c = await adopt(checkRows);
    expect(c.shipped.inserts).toBe(2);
    await expectExact(site, dead.hits);
    // Put back into that table alone (for the raw tables, the rows that were there before).
    const repaired = repairedLog(c.logged);
    expect(Object.keys(repaired ?? {})).toEqual([lost]);
    expect(c.shipped.repaired).toBe(repaired![lost]);
    if (RAW.includes(lost)) expect(c.shipped.repaired).toBe(before);
  }, 60_000);

  it('checks without repairing when nothing was lost', async () => {
    const site = randomUUID();
    const dead = deadJournal(site);
    await shipAsDead(dead.first, `${dead.dir}/000000000001`);
    const c = await adopt();
    expect(c.shipped.repaired).toBe(0);
    expect(repairedLog(c.logged)).toEqual({});
    await expectExact(site, dead.hits);
  }, 60_000);

  it('leaves a difference that no lost block of the segments explains', async () => {
    const site = randomUUID();
    const dead = deadJournal(site);
    await shipAsDead(dead.first, `${dead.dir}/000000000001`);
    await shipAsDead(dead.second, `${dead.dir}/000000000002`);
    // Raw hits the rollups don't have (another insert whose views have not run yet, or a loss
    // elsewhere) on a key the first segment contributes to: visitor 0's first page, twice.
    const first = JSON.parse(visit(site, 0, ['/'])[0]!.split('\n')[0]!) as Record<string, unknown>;
    const [hit] = await rows<Record<string, unknown>>(
      'SELECT * FROM analytics_hits WHERE website_id = {w:UUID} AND visitor = 1000 AND session_hit_number = 1', site,
    );
    expect(hit).toBeDefined();
    const extra = [1, 2].map((i) => JSON.stringify({ ...hit, session_id: randomUUID(), title: `extra ${i}`, time: first.time })).join('\n');
    await stores.warehouse.client.command({ query: 'CREATE TABLE extra_hits AS analytics_hits' });
    await stores.warehouse.insertRaw('extra_hits', 'JSONEachRow', Buffer.from(`${extra}\n`), { date_time_input_format: 'best_effort' });
    await stores.warehouse.client.command({ query: "ALTER TABLE analytics_hits ATTACH PARTITION ID '202610' FROM extra_hits" });
    await stores.warehouse.client.command({ query: 'DROP TABLE extra_hits' });
    const sums = 'SELECT (SELECT sum(hits) FROM analytics_hits_15m WHERE website_id = {w:UUID}) AS a, (SELECT sum(hits) FROM analytics_pages_15m WHERE website_id = {w:UUID}) AS b';
    const held = await rows(sums, site);
    expect(held).toEqual([{ a: String(dead.hits), b: String(dead.hits) }]);
    const c = await adopt();
    expect(c.shipped.repaired).toBe(0);
    expect(await rows(sums, site)).toEqual(held);
    // Both rollups of hits have a block that differs unexplained (the first segment's), reported rather than "repaired".
    expect(Object.keys(c.logged.find((l) => l.level === 40 && l.blocks)?.blocks ?? {}).sort()).toEqual(['analytics_hits_15m', 'analytics_pages_15m']);
  }, 60_000);
});
