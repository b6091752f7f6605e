/**
 * `npx tsx bench/report-10m.ts`: website reports over 10 million hits (and their sessions), made
 * inside ClickHouse with numbers() so setup takes seconds. The rows are inserted into the raw hits
 * and sessions tables as the collector's inserts are, so the rollups' materialized views fill
 * them the same way. Runs the report compiler's SQL for a few typical reports and prints the best
 * of three timings each (target: under 500 ms) and the table each side read (a rollup or raw);
 * BENCH_RAW=1 also times every report over the raw tables only, beside it.
 * The traffic is shaped like a site's (Zipf-like pages over BENCH_PAGES paths, returning visitors,
 * mostly distinct pages within a session; see below) and its shape is printed.
 * chDB in a temporary directory (BENCH_DATA_DIR: kept there and reused) unless BENCH_CLICKHOUSE_URL
 * is set. BENCH_HITS changes the size.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { runReport } from '../src/analytics/reports.js';
import type { ReportSpec } from '../src/analytics/report-compiler.js';
import { createAnalyticsTables, HITS_ROLLUP, HITS_TABLE, PAGES_ROLLUP, ROLLUPS, SESSIONS_TABLE } from '../src/analytics/warehouse-tables.js';
import { openWarehouse } from '../src/stores/warehouse.js';

const HITS = Number(process.env.BENCH_HITS ?? 10_000_000);
const HITS_PER_SESSION = 4;
const PAGES = Number(process.env.BENCH_PAGES ?? 3000);
const DAYS = 30;
const WEBSITE = '123e4567-e89b-12d3-a456-426614174000';
const START = '2026-01-01 00:00:00';

// BENCH_DATA_DIR keeps the generated data there between runs (generated once, reused after).
const keep = process.env.BENCH_DATA_DIR;
const dataDir = keep ?? mkdtempSync(path.join(os.tmpdir(), 'weir-bench-report-'));
const database = keep ? `weir_bench_report_${HITS}` : `weir_bench_report_${process.pid}`;
const warehouse = await openWarehouse({ clickhouseUrl: process.env.BENCH_CLICKHOUSE_URL, dataDir, database, logger: pino({ level: 'warn' }) });

try {
  await createAnalyticsTables(warehouse);
  const existing = await (await warehouse.client.query({ query: `SELECT count() AS n FROM ${HITS_TABLE}`, format: 'JSONEachRow' })).json<{ n: string }>();
  const generate = Number(existing[0]!.n) === 0;
  // A quarter of the sessions bounce (one hit), the rest have HITS_PER_SESSION.
  const sessions = Math.floor(HITS / (0.25 + 0.75 * HITS_PER_SESSION));
  const span = DAYS * 86_400;
  const t0 = performance.now();
  // Traffic shaped like a site's: session n has hits 4n..4n+3 a minute apart (three pageviews and
  // an event on the last page), from a start spread over the 30 days; a quarter bounce. Each
  // pageview's page is drawn from a Zipf-like distribution over PAGES paths (rank r with
  // probability ~ 1/(r+1): the top page gets about a twelfth of all views, most paths a few), so a
  // session's pages are mostly distinct; visitors come back: sessions belong to a third as many
  // visitors, each visitor's sessions spread over the month.
  const pageOf = (hit: string) => `concat('/p/', toString(toUInt32(floor(exp((intHash64(${hit}) % 1000000) / 1000000 * log(${PAGES + 1})))) - 1))`;
  const visitorOf = (session: string) => `intHash64(${session}) % ${Math.floor(sessions / 3)}`;
  if (generate) {
    await warehouse.client.command({
      query: `INSERT INTO ${SESSIONS_TABLE}
        SELECT toUUID({w:String}), generateUUIDv4(number), 1, 1,
          toDateTime64({start:String}, 3, 'UTC') + toIntervalSecond(intHash32(number) % ${span}) AS st,
          st + toIntervalSecond(if(number % 4 = 0, 0, 180)),
          ${visitorOf('number')}, number % 3 = 0,
          if(number % 4 = 0, 1, ${HITS_PER_SESSION}), if(number % 4 = 0, 1, ${HITS_PER_SESSION - 1}), if(number % 4 = 0, 1, ${HITS_PER_SESSION}),
          ${pageOf('number * 4')}, 'bench.example', '',
          ['google', '(direct)', 'newsletter', 'partner.example'][number % 4 + 1], ['organic', '(none)', 'email', 'referral'][number % 4 + 1], '(not set)',
          ['US', 'GB', 'DE', 'IN', 'JP'][number % 5 + 1], ['desktop', 'mobile', 'tablet'][number % 3 + 1], ['Chrome', 'Firefox', 'Mobile Safari'][number % 3 + 1], ['Windows', 'iOS', 'Android', 'Linux'][number % 4 + 1],
          if(number % 10 = 0, ['goal_bench000001'], []), if(number % 10 = 0, [50.], [])
        FROM numbers(${sessions})`,
      query_params: { w: WEBSITE, start: START },
    });
    // A bounced session (n % 4 = 0) has its first hit only; the others all four.
    await warehouse.client.command({
      query: `INSERT INTO ${HITS_TABLE}
        SELECT toUUID({w:String}), toDateTime64({start:String}, 3, 'UTC') + toIntervalSecond(intHash32(intDiv(number, 4)) % ${span} + (number % 4) * 60),
          if(number % 4 = 3, 'event', 'pageview'), ${visitorOf('intDiv(number, 4)')}, '', '', generateUUIDv4(intDiv(number, 4)), number % 4 + 1, 0, 1,
          ${pageOf('number - intDiv(number % 4, 3)')}, 'bench.example', 'Title', '',
          ['google', '(direct)', 'newsletter', 'partner.example'][intDiv(number, 4) % 4 + 1], ['organic', '(none)', 'email', 'referral'][intDiv(number, 4) % 4 + 1], '(not set)', '', '',
          '', '', '', NULL,
          ['US', 'GB', 'DE', 'IN', 'JP'][intDiv(number, 4) % 5 + 1], ['desktop', 'mobile', 'tablet'][intDiv(number, 4) % 3 + 1], ['Chrome', 'Firefox', 'Mobile Safari'][intDiv(number, 4) % 3 + 1], ['Windows', 'iOS', 'Android', 'Linux'][intDiv(number, 4) % 4 + 1],
          'en-us', '1920x1080', []
        FROM numbers(${sessions * HITS_PER_SESSION}) WHERE intDiv(number, 4) % 4 != 0 OR number % 4 = 0`,
      query_params: { w: WEBSITE, start: START },
    });
    // As background merges would have left them by the time anyone reports on last month.
    for (const table of ROLLUPS) await warehouse.client.command({ query: `OPTIMIZE TABLE ${table} FINAL` });
  }
  const counted = await (await warehouse.client.query({ query: `SELECT count() AS n FROM ${HITS_TABLE}`, format: 'JSONEachRow' })).json<{ n: string }>();
  console.log(`${warehouse.kind}: ${Number(counted[0]!.n).toLocaleString('en')} hits, ${sessions.toLocaleString('en')} sessions over ${DAYS} days, ${generate ? `generated in ${((performance.now() - t0) / 1000).toFixed(1)} s` : `reused from ${dataDir}`}\n`);

  const shape = await (await warehouse.client.query({
    query: `SELECT uniqExact(page) AS pages, max(c) / sum(c) AS top_share, (SELECT uniqExact(page, visitor) FROM ${HITS_TABLE}) AS pairs,
      (SELECT count() FROM ${HITS_ROLLUP}) AS hit_rollup_rows, (SELECT count() FROM ${PAGES_ROLLUP}) AS page_rollup_rows FROM (SELECT page, count() AS c FROM ${HITS_TABLE} GROUP BY page)`,
    format: 'JSONEachRow',
  })).json<{ pages: string; top_share: number; pairs: string; hit_rollup_rows: string; page_rollup_rows: string }>();
  const n = (v: string) => Number(v).toLocaleString('en');
  console.log(`shape: ${n(shape[0]!.pages)} pages (the top one ${(shape[0]!.top_share * 100).toFixed(1)}% of hits), ${n(shape[0]!.pairs)} distinct (page, visitor) pairs; ${n(shape[0]!.hit_rollup_rows)} rows in ${HITS_ROLLUP}, ${n(shape[0]!.page_rollup_rows)} in ${PAGES_ROLLUP}\n`);

  const range = { start_date: '2026-01-01', end_date: '2026-01-30' };
  const reports: Array<[string, ReportSpec]> = [
    ['pageviews and unique users by date (New York time)', { date_range: range, metrics: ['pageviews', 'unique_users'], dimensions: ['date'], order_by: [{ dimension: 'date' }], limit: 100 }],
    ['all session metrics by source and medium', { date_range: range, metrics: ['sessions', 'bounce_rate', 'avg_session_duration', 'pages_per_session', 'goal_completions', 'conversion_rate', 'goal_value'], dimensions: ['source', 'medium'] }],
    ['top 100 pages: pageviews, users, sessions, bounce rate (hits joined to sessions)', { date_range: range, metrics: ['pageviews', 'unique_users', 'sessions', 'bounce_rate'], dimensions: ['page'], limit: 100 }],
    ['sessions, users and pageviews by country and device type', { date_range: range, metrics: ['sessions', 'unique_users', 'pageviews', 'bounce_rate'], dimensions: ['country', 'device_type'] }],
    ['pageviews and sessions by local hour, one day (New York time)', { date_range: { start_date: '2026-01-15', end_date: '2026-01-15' }, metrics: ['pageviews', 'sessions'], dimensions: ['hour'], limit: 24 }],
    ['totals, mobile only, one week', { date_range: { start_date: '2026-01-08', end_date: '2026-01-14' }, metrics: ['pageviews', 'sessions', 'bounce_rate'], filters: [{ dimension: 'device_type', operator: 'equals', value: 'mobile' }] } as ReportSpec],
  ];
  const website = { id: WEBSITE, timezone: 'America/New_York' };
  const goals = new Set(['goal_bench000001']);
  const modes = process.env.BENCH_RAW ? [true, false] : [true];
  let worst = 0;
  for (const [label, spec] of reports) {
    for (const rollups of modes) {
      const times: number[] = [];
      let rows = 0;
      let plan = '';
      for (let i = 0; i < 3; i++) {
        const started = performance.now();
        const result = await runReport(warehouse, website, goals, spec, {
          rollups,
          onPlan: (p) => (plan = [p.hits && `hits from ${p.hits}`, p.sessions && `sessions from ${p.sessions}`].filter(Boolean).join(', ')),
        });
        times.push(performance.now() - started);
        rows = result.total_rows;
      }
      const best = Math.min(...times);
      if (rollups) worst = Math.max(worst, best);
      console.log(`${best.toFixed(0).padStart(5)} ms  ${rollups ? '' : '[raw only] '}${label} (${rows} rows; runs ${times.map((t) => t.toFixed(0)).join(', ')} ms; ${plan})`);
    }
  }
  console.log(`\nslowest report: ${worst.toFixed(0)} ms (target: under 500 ms)`);
} finally {
  await warehouse.close();
  if (!keep) rmSync(dataDir, { recursive: true, force: true });
}
