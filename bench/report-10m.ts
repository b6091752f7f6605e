/**
 * `npx tsx bench/report-10m.ts`: website reports over 10 million hits (and their sessions), made
 * inside ClickHouse with numbers() so setup takes seconds. Runs the report compiler's SQL for a
 * few typical reports and prints the best of three timings each (target: under 500 ms).
 * chDB in a temporary directory unless BENCH_CLICKHOUSE_URL is set. BENCH_HITS changes the size.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { runReport } from '../src/analytics/reports.js';
import type { ReportSpec } from '../src/analytics/report-compiler.js';
import { createAnalyticsTables, HITS_TABLE, SESSIONS_TABLE } from '../src/analytics/warehouse-tables.js';
import { openWarehouse } from '../src/stores/warehouse.js';

const HITS = Number(process.env.BENCH_HITS ?? 10_000_000);
const HITS_PER_SESSION = 4;
const DAYS = 30;
const WEBSITE = '123e4567-e89b-12d3-a456-426614174000';
const START = '2026-01-01 00:00:00';

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'weir-bench-report-'));
const warehouse = await openWarehouse({ clickhouseUrl: process.env.BENCH_CLICKHOUSE_URL, dataDir, database: `weir_bench_report_${process.pid}`, logger: pino({ level: 'warn' }) });

try {
  await createAnalyticsTables(warehouse);
  const sessions = Math.floor(HITS / HITS_PER_SESSION);
  const span = DAYS * 86_400;
  const t0 = performance.now();
  // Session n has hits 4n..4n+3, a minute apart from a start spread over the 30 days; a quarter bounce.
  await warehouse.client.command({
    query: `INSERT INTO ${SESSIONS_TABLE}
      SELECT toUUID({w:String}), generateUUIDv4(number), 1, 1,
        toDateTime64({start:String}, 3, 'UTC') + toIntervalSecond(intHash32(number) % ${span}) AS st,
        st + toIntervalSecond(if(number % 4 = 0, 0, 180)),
        intHash64(number) % ${Math.floor(sessions / 3)}, number % 3 = 0,
        if(number % 4 = 0, 1, ${HITS_PER_SESSION}), if(number % 4 = 0, 1, ${HITS_PER_SESSION}), if(number % 4 = 0, 1, ${HITS_PER_SESSION}),
        concat('/page/', toString(number % 200)), 'bench.example', '',
        ['google', '(direct)', 'newsletter', 'partner.example'][number % 4 + 1], ['organic', '(none)', 'email', 'referral'][number % 4 + 1], '(not set)',
        ['US', 'GB', 'DE', 'IN', 'JP'][number % 5 + 1], ['desktop', 'mobile', 'tablet'][number % 3 + 1], ['Chrome', 'Firefox', 'Mobile Safari'][number % 3 + 1], ['Windows', 'iOS', 'Android', 'Linux'][number % 4 + 1],
        if(number % 10 = 0, ['goal_bench000001'], []), if(number % 10 = 0, [50.], [])
      FROM numbers(${sessions})`,
    query_params: { w: WEBSITE, start: START },
  });
  await warehouse.client.command({
    query: `INSERT INTO ${HITS_TABLE}
      SELECT toUUID({w:String}), toDateTime64({start:String}, 3, 'UTC') + toIntervalSecond(intHash32(intDiv(number, 4)) % ${span} + (number % 4) * 60),
        if(number % 4 = 3, 'event', 'pageview'), intHash64(intDiv(number, 4)) % ${Math.floor(sessions / 3)}, '', '', generateUUIDv4(intDiv(number, 4)), number % 4 + 1, 0, 1,
        concat('/page/', toString(intHash32(number) % 200)), 'bench.example', 'Title', '',
        ['google', '(direct)', 'newsletter', 'partner.example'][intDiv(number, 4) % 4 + 1], ['organic', '(none)', 'email', 'referral'][intDiv(number, 4) % 4 + 1], '(not set)', '', '',
        '', '', '', NULL,
        ['US', 'GB', 'DE', 'IN', 'JP'][intDiv(number, 4) % 5 + 1], ['desktop', 'mobile', 'tablet'][intDiv(number, 4) % 3 + 1], ['Chrome', 'Firefox', 'Mobile Safari'][intDiv(number, 4) % 3 + 1], ['Windows', 'iOS', 'Android', 'Linux'][intDiv(number, 4) % 4 + 1],
        'en-us', '1920x1080', []
      FROM numbers(${HITS})`,
    query_params: { w: WEBSITE, start: START },
  });
  await warehouse.client.command({ query: `OPTIMIZE TABLE ${HITS_TABLE} FINAL` });
  const counted = await (await warehouse.client.query({ query: `SELECT count() AS n FROM ${HITS_TABLE}`, format: 'JSONEachRow' })).json<{ n: string }>();
  console.log(`${warehouse.kind}: ${Number(counted[0]!.n).toLocaleString('en')} hits, ${sessions.toLocaleString('en')} sessions over ${DAYS} days, generated in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);

  const range = { start_date: '2026-01-01', end_date: '2026-01-30' };
  const reports: Array<[string, ReportSpec]> = [
    ['pageviews and unique users by date (New York time)', { date_range: range, metrics: ['pageviews', 'unique_users'], dimensions: ['date'], order_by: [{ dimension: 'date' }], limit: 100 }],
    ['all session metrics by source and medium', { date_range: range, metrics: ['sessions', 'bounce_rate', 'avg_session_duration', 'pages_per_session', 'goal_completions', 'conversion_rate', 'goal_value'], dimensions: ['source', 'medium'] }],
    ['top 100 pages: pageviews, users, sessions, bounce rate (hits joined to sessions)', { date_range: range, metrics: ['pageviews', 'unique_users', 'sessions', 'bounce_rate'], dimensions: ['page'], limit: 100 }],
    ['totals, mobile only, one week', { date_range: { start_date: '2026-01-08', end_date: '2026-01-14' }, metrics: ['pageviews', 'sessions', 'bounce_rate'], filters: [{ dimension: 'device_type', operator: 'equals', value: 'mobile' }] } as ReportSpec],
  ];
  for (const [label, spec] of reports) {
    const times: number[] = [];
    let rows = 0;
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const result = await runReport(warehouse, { id: WEBSITE, timezone: 'America/New_York' }, new Set(['goal_bench000001']), spec);
      times.push(performance.now() - started);
      rows = result.total_rows;
    }
    console.log(`${Math.min(...times).toFixed(0).padStart(5)} ms  ${label} (${rows} rows; runs ${times.map((t) => t.toFixed(0)).join(', ')} ms)`);
  }
} finally {
  await warehouse.close();
  rmSync(dataDir, { recursive: true, force: true });
}
