import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { asTenant, pluginsWithTestPrincipal } from '../helpers/test-principal.js';
import { expectedReport, localDate, sessionize, type ExpectedQuery, type ExpectedSession, type FixtureGoal, type Row } from '../fixtures/analytics/expected.js';
import { ADDRESSES, generateTraffic, SITES, type FixtureHit } from '../fixtures/analytics/traffic.js';
import { journalShipped } from './journal-wait.js';
import { runReport } from '../../src/analytics/reports.js';
import type { ReportSpec } from '../../src/analytics/report-compiler.js';

// Four days around the US switch to daylight saving time (2025-03-09), in the past.
const PERIOD_START = Date.parse('2025-03-07T00:00:00Z');
const fixture = generateTraffic({ seed: 20250307, visitorsPerSite: 450, periodStart: PERIOD_START, days: 4 });

let clock = PERIOD_START;
let gw: TestGateway;
const tenant = 'fixture';
const sites = new Map<string, { id: string; trackingId: string; timezone: string; sessions: ExpectedSession[]; goals: FixtureGoal[] }>();

const post = (path: string, body: unknown) =>
  fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...asTenant(tenant) }, body: JSON.stringify(body) });

async function createGoals(websiteId: string): Promise<FixtureGoal[]> {
  const specs: Array<[Record<string, unknown>, number, FixtureGoal['completedBy']]> = [
    [{ name: 'Purchase', type: 'destination', match_type: 'equals', value: '/checkout/thank-you', value_numeric: 50 }, 50, (s) => s.hits.some((h) => h.type === 'pageview' && h.page === '/checkout/thank-you')],
    [{ name: 'Signup', type: 'event', category: { match_type: 'equals', value: 'newsletter' }, action: { match_type: 'equals', value: 'subscribe' }, value_numeric: 2 }, 2, (s) => s.hits.some((h) => h.category === 'newsletter' && h.action === 'subscribe')],
    [{ name: 'Deep visit', type: 'pages_per_session', min_pages: 4, value_numeric: 5 }, 5, (s) => s.hits.filter((h) => h.type === 'pageview').length >= 4],
    [{ name: 'Engaged', type: 'duration', min_seconds: 600 }, 0, (s) => s.end - s.start >= 600_000],
  ];
  const goals: FixtureGoal[] = [];
  for (const [body, value, completedBy] of specs) {
    const res = await post(`/v1/websites/${websiteId}/goals`, body);
    expect(res.status).toBe(201);
    goals.push({ id: ((await res.json()) as { goal_id: string }).goal_id, value, completedBy });
  }
  return goals;
}

/** Sends the fixture as Measurement Protocol text batches, 20 hits of one site each, in time order, with the clock following. */
async function ingest(hits: FixtureHit[]): Promise<{ received: number; failed: Record<string, number> }> {
  const pending = new Map<string, FixtureHit[]>();
  let received = 0;
  const failed: Record<string, number> = {};
  const flush = async (site: string) => {
    const batch = pending.get(site) ?? [];
    pending.set(site, []);
    if (!batch.length) return;
    clock = batch[batch.length - 1]!.time + 1000;
    const { trackingId } = sites.get(site)!;
    const lines = batch.map((h) =>
      new URLSearchParams({ v: '1', tid: trackingId, cid: h.visitor, ...h.params, ua: h.agent.ua, uip: ADDRESSES.find((a) => a.country === h.country)!.ip, timestamp: String(h.time) }).toString(),
    );
    const res = await fetch(`${gw.url}/batch`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: lines.join('\n') });
    expect(res.status).toBe(200);
    const result = (await res.json()) as { received: number; errors?: Array<{ reason: string }> };
    received += result.received;
    for (const e of result.errors ?? []) failed[e.reason] = (failed[e.reason] ?? 0) + 1;
  };
  for (const h of hits) {
    const list = pending.get(h.site) ?? [];
    list.push(h);
    pending.set(h.site, list);
    if (list.length === 20) await flush(h.site);
  }
  for (const site of pending.keys()) await flush(site);
  // Acknowledged hits are journaled; reports read them once shipped to the warehouse.
  await journalShipped(gw.config.dataDir);
  return { received, failed };
}

beforeAll(async () => {
  gw = await startGateway('analytics_reports', { env: { ANALYTICS_SHIP_INTERVAL_MS: '100' }, overrides: { plugins: pluginsWithTestPrincipal({ without: ['rate-limit'] }), analytics: { now: () => clock } } });
  for (const site of SITES) {
    const res = await post('/v1/websites', { domain: site.domain, name: site.key, timezone: site.timezone, allowed_hostnames: [site.domain] });
    const body = (await res.json()) as { website_id: string; tracking_id: string };
    const goals = await createGoals(body.website_id);
    const sessions = sessionize(fixture.hits.filter((h) => h.site === site.key), site.timezone);
    sites.set(site.key, { id: body.website_id, trackingId: body.tracking_id, timezone: site.timezone, sessions, goals });
  }
}, 120_000);
afterAll(async () => gw?.close());

async function report(site: string, body: Record<string, unknown>) {
  const res = await post(`/v1/websites/${sites.get(site)!.id}/query`, body);
  const json = (await res.json()) as { rows: Row[]; total_rows: number; next_cursor: string | null; timezone: string; sampled: boolean; query_id: string };
  if (res.status !== 200) throw new Error(`query failed: ${JSON.stringify(json)}`);
  return json;
}

const ALL_METRICS = ['pageviews', 'unique_users', 'sessions', 'bounce_rate', 'avg_session_duration', 'pages_per_session', 'goal_completions', 'conversion_rate', 'goal_value'];

/** Compares rows by their dimension values, metrics exactly (ratios to 9 places). */
function expectRows(actual: Row[], expected: Map<string, Row>, dims: string[], metrics: string[]) {
  const byKey = new Map(actual.map((r) => [JSON.stringify(dims.map((d) => r[d])), r]));
  expect([...byKey.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [key, want] of expected) {
    const got = byKey.get(key)!;
    for (const m of metrics) {
      const w = want[m];
      if (w === null) expect(got[m], `${key} ${m}`).toBeNull();
      else expect(got[m] as number, `${key} ${m}`).toBeCloseTo(w as number, 9);
    }
  }
}

describe('reports over the generated fixture', () => {
  it('ingests the fixture: every real hit recorded, bots and foreign hosts dropped', async () => {
    const real = fixture.hits.filter((h) => !h.noise).length;
    const { received, failed } = await ingest(fixture.hits);
    expect(received).toBe(real);
    expect(failed).toEqual({ bot: 60, hostname_not_allowed: 60 });
    const sessions = [...sites.values()].reduce((n, s) => n + s.sessions.length, 0);
    expect(sessions).toBeGreaterThan(2000);
  }, 120_000);

  for (const [site, label] of [['ny', 'America/New_York, across the DST change'], ['in', 'Asia/Kolkata (UTC+5:30)']] as const) {
    it(`matches every metric by local date in ${label}`, async () => {
      const s = sites.get(site)!;
      const q: ExpectedQuery = { timeZone: s.timezone, startDate: '2025-03-07', endDate: '2025-03-10', dimensions: ['date'] };
      const result = await report(site, { date_range: { start_date: q.startDate, end_date: q.endDate }, metrics: ALL_METRICS, dimensions: ['date'], order_by: [{ dimension: 'date' }] });
      expect(result.timezone).toBe(s.timezone);
      expect(result.sampled).toBe(false);
      const expected = expectedReport(s.sessions, s.goals, q);
      expectRows(result.rows, expected, ['date'], ALL_METRICS);
      expect(result.rows.map((r) => r.date)).toEqual([...expected.values()].map((r) => r.date).sort());
    });
  }

  it('gives other day boundaries in another time zone for the same hits', async () => {
    const ny = sites.get('ny')!;
    const dayOne = (tz: string) => ny.sessions.flatMap((s) => s.hits).filter((h) => h.type === 'pageview' && localDate(h.time, tz) === '2025-03-08').length;
    const result = await report('ny', { date_range: { start_date: '2025-03-08', end_date: '2025-03-08' }, metrics: ['pageviews'] });
    expect(result.rows[0]!.pageviews).toBe(dayOne('America/New_York'));
    expect(dayOne('America/New_York')).not.toBe(dayOne('UTC'));
  });

  it('matches hourly pageviews and sessions in Asia/Kolkata', async () => {
    const s = sites.get('in')!;
    const q: ExpectedQuery = { timeZone: s.timezone, startDate: '2025-03-08', endDate: '2025-03-08', dimensions: ['hour'] };
    const result = await report('in', { date_range: { start_date: q.startDate, end_date: q.endDate }, metrics: ['pageviews', 'sessions'], dimensions: ['hour'], limit: 24 });
    expectRows(result.rows, expectedReport(s.sessions, s.goals, q), ['hour'], ['pageviews', 'sessions']);
  });

  it('matches conversions by source and medium, for all goals and for one goal', async () => {
    const s = sites.get('ny')!;
    const metrics = ['sessions', 'goal_completions', 'conversion_rate', 'goal_value', 'bounce_rate'];
    const q: ExpectedQuery = { timeZone: s.timezone, startDate: '2025-03-07', endDate: '2025-03-10', dimensions: ['source', 'medium'] };
    const all = await report('ny', { date_range: { start_date: q.startDate, end_date: q.endDate }, metrics, dimensions: ['source', 'medium'] });
    expectRows(all.rows, expectedReport(s.sessions, s.goals, q), ['source', 'medium'], metrics);
    const purchase = s.goals[0]!.id;
    const one = await report('ny', { date_range: { start_date: q.startDate, end_date: q.endDate }, metrics, dimensions: ['source', 'medium'], goal_id: purchase });
    const expected = expectedReport(s.sessions, s.goals, { ...q, goalId: purchase });
    expectRows(one.rows, expected, ['source', 'medium'], metrics);
    expect([...expected.values()].some((r) => (r.goal_completions as number) > 0)).toBe(true);
  });

  it('filters, orders and pages by cursor: top pages on mobile in UTC', async () => {
    const s = sites.get('utc')!;
    const metrics = ['pageviews', 'unique_users', 'bounce_rate', 'sessions'];
    const q: ExpectedQuery = { timeZone: s.timezone, startDate: '2025-03-07', endDate: '2025-03-10', dimensions: ['page'], filter: { dimension: 'device_type', value: 'mobile' } };
    const expected = expectedReport(s.sessions, s.goals, q);
    const body = {
      date_range: { start_date: q.startDate, end_date: q.endDate },
      metrics,
      dimensions: ['page'],
      filters: [{ dimension: 'device_type', operator: 'equals', value: 'mobile' }],
      order_by: [{ metric: 'pageviews', direction: 'desc' }],
      limit: 3,
    };
    const rows: Row[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const result = await report('utc', cursor ? { ...body, cursor } : body);
      expect(result.total_rows).toBe(expected.size);
      rows.push(...result.rows);
      if (!result.next_cursor) break;
      cursor = result.next_cursor;
    }
    expectRows(rows, expected, ['page'], metrics);
    const pageviews = rows.map((r) => r.pageviews as number);
    expect(pageviews).toEqual([...pageviews].sort((a, b) => b - a));
  });

  it('matches a partial range by country and device type, with in/not_in filters', async () => {
    const s = sites.get('in')!;
    const metrics = ['pageviews', 'unique_users', 'sessions', 'avg_session_duration', 'pages_per_session'];
    const q: ExpectedQuery = { timeZone: s.timezone, startDate: '2025-03-08', endDate: '2025-03-09', dimensions: ['country', 'device_type'] };
    const result = await report('in', { date_range: { start_date: q.startDate, end_date: q.endDate }, metrics, dimensions: ['country', 'device_type'], limit: 1000 });
    expectRows(result.rows, expectedReport(s.sessions, s.goals, q), ['country', 'device_type'], metrics);
    const filtered = await report('in', {
      date_range: { start_date: q.startDate, end_date: q.endDate },
      metrics: ['sessions'],
      dimensions: ['country'],
      filters: [{ dimension: 'country', operator: 'in', values: ['DE', 'JP'] }, { dimension: 'browser', operator: 'not_in', values: ['Firefox'] }],
    });
    expect(filtered.rows.map((r) => r.country).sort()).toEqual(['DE', 'JP']);
  });

  it('answers the same from the rollups as from the raw hits and sessions, in every site and zone', async () => {
    const range = { start_date: '2025-03-07', end_date: '2025-03-10' };
    const specs: ReportSpec[] = [
      { date_range: range, metrics: ALL_METRICS as ReportSpec['metrics'] },
      { date_range: range, metrics: ALL_METRICS as ReportSpec['metrics'], dimensions: ['date'] },
      { date_range: { start_date: '2025-03-08', end_date: '2025-03-09' }, metrics: ['pageviews', 'unique_users', 'sessions', 'bounce_rate'], dimensions: ['hour'] },
      { date_range: range, metrics: ALL_METRICS as ReportSpec['metrics'], dimensions: ['source', 'medium', 'campaign'] },
      { date_range: range, metrics: ['pageviews', 'unique_users', 'sessions', 'avg_session_duration'], dimensions: ['country', 'device_type', 'browser', 'os'] },
      { date_range: range, metrics: ['pageviews', 'unique_users', 'sessions', 'bounce_rate', 'goal_value'], dimensions: ['page'] },
      { date_range: range, metrics: ['pageviews', 'unique_users'], dimensions: ['date', 'hostname', 'page'], filters: [{ dimension: 'page', operator: 'not_equals', value: '/' }] },
      { date_range: range, metrics: ['pageviews', 'sessions', 'bounce_rate'], dimensions: ['date', 'hostname'], filters: [{ dimension: 'device_type', operator: 'equals', value: 'mobile' }] },
      { date_range: range, metrics: ['pageviews', 'unique_users', 'sessions'], filters: [{ dimension: 'country', operator: 'in', values: ['DE', 'JP', 'US'] }, { dimension: 'source', operator: 'contains', value: 'o' }] },
    ];
    const plans: string[] = [];
    for (const site of SITES) {
      const s = sites.get(site.key)!;
      const website = { id: s.id, timezone: s.timezone };
      for (const spec of specs) {
        const full = { ...spec, limit: 1000 };
        const rolled = await runReport(gw.stores.warehouse, website, new Set(), full, { onPlan: (p) => plans.push(`${p.hits}|${p.sessions}`) });
        const raw = await runReport(gw.stores.warehouse, website, new Set(), full, { rollups: false, onPlan: (p) => expect(`${p.hits}|${p.sessions}`).not.toMatch(/_15m/) });
        expect(rolled.rows.length, JSON.stringify(spec)).toBeGreaterThan(0);
        expect(rolled.rows, `${site.key} ${JSON.stringify(spec)}`).toEqual(raw.rows);
        expect(rolled.total_rows).toBe(raw.total_rows);
      }
    }
    // Every rollup served some report (the raw path is only the fallback here for pages and referrers).
    for (const rollup of ['analytics_hits_15m', 'analytics_pages_15m', 'analytics_sessions_15m:dimensions', 'analytics_sessions_15m:pages']) expect(plans.join(' ')).toContain(rollup);
  });

  it('refuses an unknown goal, a sort key outside the query, and a cursor with another body', async () => {
    const range = { start_date: '2025-03-07', end_date: '2025-03-08' };
    const id = sites.get('ny')!.id;
    expect((await post(`/v1/websites/${id}/query`, { date_range: range, metrics: ['sessions'], goal_id: 'goal_doesnotexist' })).status).toBe(400);
    expect((await post(`/v1/websites/${id}/query`, { date_range: range, metrics: ['sessions'], order_by: [{ metric: 'pageviews' }] })).status).toBe(400);
    const first = await report('ny', { date_range: range, metrics: ['pageviews'], dimensions: ['page'], limit: 1 });
    expect((await post(`/v1/websites/${id}/query`, { date_range: range, metrics: ['sessions'], dimensions: ['page'], limit: 1, cursor: first.next_cursor })).status).toBe(400);
    expect((await post(`/v1/websites/${id}/query`, { date_range: { start_date: '2020-01-01', end_date: '2025-01-01' }, metrics: ['sessions'] })).status).toBe(400);
  });

  it('answers realtime figures as of the clock: active users, last full minute, top pages and countries', async () => {
    const s = sites.get('utc')!;
    const hits = s.sessions.flatMap((x) => x.hits).sort((a, b) => a.time - b.time);
    const busiest = hits[Math.floor(hits.length / 2)]!.time;
    clock = busiest + 30_000;
    const active = hits.filter((h) => h.time >= clock - 300_000 && h.time <= clock);
    const latest = new Map<string, FixtureHit>();
    for (const h of active) latest.set(h.visitor, h);
    const minuteEnd = Math.floor(clock / 60_000) * 60_000;
    const count = (key: (h: FixtureHit) => string) => {
      const m = new Map<string, number>();
      for (const h of latest.values()) m.set(key(h), (m.get(key(h)) ?? 0) + 1);
      return [...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 10);
    };
    const res = await fetch(`${gw.url}/v1/websites/${s.id}/realtime`, { headers: asTenant(tenant) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, any>;
    expect(body).toEqual({
      website_id: s.id,
      timestamp: new Date(clock).toISOString(),
      active_users: latest.size,
      pageviews_per_minute: hits.filter((h) => h.type === 'pageview' && h.time >= minuteEnd - 60_000 && h.time < minuteEnd).length,
      top_pages: count((h) => h.page).map(([page, n]) => ({ page, active_users: n })),
      top_countries: count((h) => h.country).map(([country, n]) => ({ country, active_users: n })),
    });
    expect(latest.size).toBeGreaterThan(0);
  });
});
