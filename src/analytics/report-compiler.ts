import { ProblemError } from '../problem.js';
import { quarterHourAligned } from './timezone.js';
import { HITS_ROLLUP, HITS_TABLE, PAGES_ROLLUP, SESSIONS_ROLLUP, SESSIONS_TABLE, type RollupName } from './warehouse-tables.js';

export const DIMENSIONS = ['page', 'hostname', 'referrer', 'source', 'medium', 'campaign', 'country', 'device_type', 'browser', 'os', 'date', 'hour'] as const;
export const METRICS = ['pageviews', 'unique_users', 'sessions', 'bounce_rate', 'avg_session_duration', 'pages_per_session', 'goal_completions', 'conversion_rate', 'goal_value'] as const;
export type Dimension = (typeof DIMENSIONS)[number];
export type Metric = (typeof METRICS)[number];

export type ReportFilter =
  | { dimension: Dimension; operator: 'equals' | 'not_equals' | 'contains' | 'starts_with'; value: string }
  | { dimension: Dimension; operator: 'in' | 'not_in'; values: string[] };
export type ReportOrder = { metric: Metric; direction?: 'asc' | 'desc' } | { dimension: Dimension; direction?: 'asc' | 'desc' };

export interface ReportSpec {
  date_range: { start_date: string; end_date: string };
  metrics: Metric[];
  dimensions?: Dimension[];
  filters?: ReportFilter[];
  order_by?: ReportOrder[];
  limit?: number;
  offset?: number;
  goal_id?: string;
}

export interface CompiledReport {
  /** The table each side of the report reads: a rollup, or the raw hits/sessions. */
  sources: { hits?: string; sessions?: string };
  sql: string;
  /** Counts the rows of the whole result, for a page past its end. */
  countSql: string;
  params: Record<string, unknown>;
}

// Hit metrics come from the hits table; session metrics from the sessions table, where `page`
// and `hostname` are the session's landing page and host, and `date`/`hour` its start.
const HIT_METRICS: ReadonlySet<Metric> = new Set(['pageviews', 'unique_users']);

export const HIT_DIMENSION_SQL: Record<Dimension, string> = {
  page: 'page',
  hostname: 'hostname',
  referrer: 'referrer',
  source: 'source',
  medium: 'medium',
  campaign: 'campaign',
  country: 'country',
  device_type: 'device_type',
  browser: 'browser',
  os: 'os',
  date: 'toString(toDate(time, {tz:String}))',
  hour: 'toString(toHour(toTimeZone(time, {tz:String})))',
};

const SESSION_DIMENSION_SQL: Record<Dimension, string> = {
  ...HIT_DIMENSION_SQL,
  page: 'entry_page',
  hostname: 'entry_hostname',
  date: 'toString(toDate(start_time, {tz:String}))',
  hour: 'toString(toHour(toTimeZone(start_time, {tz:String})))',
};

const ROLLUP_TIME_DIMENSIONS = {
  date: 'toString(toDate(bucket, {tz:String}))',
  hour: 'toString(toHour(toTimeZone(bucket, {tz:String})))',
};
const HIT_ROLLUP_DIMENSIONS: Partial<Record<Dimension, string>> = {
  hostname: 'hostname',
  source: 'source',
  medium: 'medium',
  campaign: 'campaign',
  country: 'country',
  device_type: 'device_type',
  browser: 'browser',
  os: 'os',
  ...ROLLUP_TIME_DIMENSIONS,
};
const PAGE_ROLLUP_DIMENSIONS: Partial<Record<Dimension, string>> = { page: 'page', hostname: 'hostname', ...ROLLUP_TIME_DIMENSIONS };
const SESSION_ROLLUP_DIMENSIONS: Partial<Record<Dimension, string>> = { ...HIT_ROLLUP_DIMENSIONS, hostname: 'entry_hostname' };
const SESSION_PAGES_ROLLUP_DIMENSIONS: Partial<Record<Dimension, string>> = { page: 'entry_page', hostname: 'entry_hostname', ...ROLLUP_TIME_DIMENSIONS };

/** A table one side of a report can read, with the dimensions it can group and filter by. */
interface Source {
  table: string;
  rollup?: RollupName;
  dimensions: Partial<Record<Dimension, string>>;
  /** The rows' time range, and the rollup grain when there is one. */
  range: string[];
  measures: string[];
  /** Query settings for this side's SELECT. */
  settings?: string;
}

const RAW_RANGE = (col: string) => [`${col} >= toDateTime64({from:String}, 3, {tz:String})`, `${col} < toDateTime64({to:String}, 3, {tz:String})`];
const ROLLUP_RANGE = ['bucket >= toDateTime({from:String}, {tz:String})', 'bucket < toDateTime({to:String}, {tz:String})'];
const SESSION_ROLLUP_RANGE = (grain: 0 | 1) => [`grain = ${grain}`, ...ROLLUP_RANGE];
const HIT_USERS = 'uniqExact(visitor) AS h_users';
const SESSION_ROLLUP_MEASURES = [
  'sum(sessions) AS s_sessions',
  'sum(bounces) AS s_bounces',
  'sum(duration_ms) AS s_duration_ms',
  'sum(pageviews) AS s_pageviews',
  'sum(completions) AS s_completions',
  'sum(goal_value) AS s_goal_value',
];

export interface CompileOptions {
  /**
   * From when (epoch ms) each rollup holds every row, as rollupCoverage() reads it; a report
   * uses a rollup only when the rollup covers its whole range. Without it, raw tables only.
   */
  rollupsFrom?: Partial<Record<RollupName, number>>;
}

/** The table a side reads, with the grain for the sessions rollup (e.g. `analytics_sessions_15m:pages`). */
const sourceName = (s: Source) => (s.table === SESSIONS_ROLLUP ? `${s.table}:${s.range[0] === 'grain = 1' ? 'pages' : 'dimensions'}` : s.table);

const MAX_RANGE_DAYS = 3 * 366;
const DAY_MS = 86_400_000;

function badRequest(detail: string, pointer: string): ProblemError {
  return new ProblemError(400, { type: 'validation', title: 'Request validation failed', detail, errors: [{ in: 'body', pointer, detail }] });
}

const nextDay = (date: string) => new Date(Date.parse(`${date}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);

/**
 * Compiles a report into one ClickHouse query. Identifiers come only from the fixed tables above;
 * every value the client sent travels as a typed query parameter ({name:Type}), never as SQL text.
 */
export function compileReport(spec: ReportSpec, website: { id: string; timezone: string }, goalIds: ReadonlySet<string>, options: CompileOptions = {}): CompiledReport {
  const dims = spec.dimensions ?? [];
  const metrics = spec.metrics;
  const start = Date.parse(`${spec.date_range.start_date}T00:00:00Z`);
  const end = Date.parse(`${spec.date_range.end_date}T00:00:00Z`);
  if (end < start) throw badRequest('end_date is before start_date.', '/date_range/end_date');
  if ((end - start) / DAY_MS > MAX_RANGE_DAYS) throw badRequest('A date range may span at most 3 years.', '/date_range');
  if (spec.goal_id !== undefined && !goalIds.has(spec.goal_id)) throw badRequest(`The website has no goal ${spec.goal_id}.`, '/goal_id');

  const params: Record<string, unknown> = {
    website: website.id,
    tz: website.timezone,
    from: `${spec.date_range.start_date} 00:00:00`,
    to: `${nextDay(spec.date_range.end_date)} 00:00:00`,
    limit: spec.limit ?? 100,
    offset: spec.offset ?? 0,
  };
  if (spec.goal_id !== undefined) params.goal = spec.goal_id;

  const filterSql = (columns: Partial<Record<Dimension, string>>) =>
    (spec.filters ?? []).map((f, i) => {
      const col = columns[f.dimension]!;
      const p = `f${i}`;
      if ('values' in f) {
        params[p] = f.values;
        return `${col} ${f.operator === 'in' ? 'IN' : 'NOT IN'} {${p}:Array(String)}`;
      }
      params[p] = f.value;
      switch (f.operator) {
        case 'equals':
          return `${col} = {${p}:String}`;
        case 'not_equals':
          return `${col} != {${p}:String}`;
        case 'contains':
          return `position(${col}, {${p}:String}) > 0`;
        case 'starts_with':
          return `startsWith(${col}, {${p}:String})`;
      }
    });

  const wantHits = metrics.some((m) => HIT_METRICS.has(m));
  const wantSessions = metrics.some((m) => !HIT_METRICS.has(m));
  const dimAliases = dims.map((_, i) => `d${i}`);
  const groupBy = dims.length ? ` GROUP BY ${dimAliases.join(', ')}` : '';

  // A rollup serves a side when it has every dimension the report groups or filters by, covers
  // the whole range (widened by a day for any zone's offset), and the zone's local days and hours
  // are whole quarter hours at both ends of the range.
  const usedDims = new Set<Dimension>([...dims, ...(spec.filters ?? []).map((f) => f.dimension)]);
  const aligned = quarterHourAligned(website.timezone, [start, end + DAY_MS]);
  const covers = (rollup: RollupName) => {
    const from = options.rollupsFrom?.[rollup];
    return aligned && from !== undefined && from <= start - DAY_MS;
  };
  const pick = (candidates: Source[]) =>
    candidates.find((c) => (c.rollup === undefined || covers(c.rollup)) && [...usedDims].every((d) => c.dimensions[d] !== undefined))!;

  const hitSource = pick([
    { table: HITS_ROLLUP, rollup: HITS_ROLLUP, dimensions: HIT_ROLLUP_DIMENSIONS, range: ROLLUP_RANGE, measures: ['sum(pageviews) AS h_pageviews', HIT_USERS] },
    // Sorted by page: grouping by page runs in that order, one page's visitors at a time.
    { table: PAGES_ROLLUP, rollup: PAGES_ROLLUP, dimensions: PAGE_ROLLUP_DIMENSIONS, range: ROLLUP_RANGE, measures: ['sum(pageviews) AS h_pageviews', HIT_USERS], settings: 'optimize_aggregation_in_order = 1' },
    { table: HITS_TABLE, dimensions: HIT_DIMENSION_SQL, range: RAW_RANGE('time'), measures: ["countIf(hit_type IN ('pageview', 'screenview')) AS h_pageviews", HIT_USERS] },
  ]);

  const completed = spec.goal_id !== undefined ? 'has(goal_ids, {goal:String})' : 'notEmpty(goal_ids)';
  const value = spec.goal_id !== undefined ? 'arraySum(arrayFilter((v, g) -> g = {goal:String}, goal_values, goal_ids))' : 'arraySum(goal_values)';
  const rawSessions: Source = {
    table: SESSIONS_TABLE,
    dimensions: SESSION_DIMENSION_SQL,
    range: RAW_RANGE('start_time'),
    measures: [
      'sum(sign) AS s_sessions',
      'sumIf(sign, interactions <= 1) AS s_bounces',
      "sum(sign * dateDiff('millisecond', start_time, end_time)) AS s_duration_ms",
      'sum(sign * pageviews) AS s_pageviews',
      `sumIf(sign, ${completed}) AS s_completions`,
      `sum(sign * ${value}) AS s_goal_value`,
    ],
  };
  // The rollups sum completions of any goal: one goal's figures come from the raw sessions.
  const sessionSource = pick([
    ...(spec.goal_id === undefined
      ? ([
          { table: SESSIONS_ROLLUP, rollup: SESSIONS_ROLLUP, dimensions: SESSION_ROLLUP_DIMENSIONS, range: SESSION_ROLLUP_RANGE(0), measures: SESSION_ROLLUP_MEASURES },
          { table: SESSIONS_ROLLUP, rollup: SESSIONS_ROLLUP, dimensions: SESSION_PAGES_ROLLUP_DIMENSIONS, range: SESSION_ROLLUP_RANGE(1), measures: SESSION_ROLLUP_MEASURES },
        ] satisfies Source[])
      : []),
    rawSessions,
  ]);

  const sideSql = (source: Source, present: string, having: string) => {
    const where = ['website_id = {website:UUID}', ...source.range, ...filterSql(source.dimensions)];
    const cols = [...dims.map((d, i) => `${source.dimensions[d]} AS d${i}`), ...source.measures, `1 AS ${present}`];
    return `SELECT ${cols.join(', ')} FROM ${source.table} WHERE ${where.join(' AND ')}${groupBy}${having}${source.settings ? ` SETTINGS ${source.settings}` : ''}`;
  };
  const hitsSql = () => sideSql(hitSource, 'h_present', '');
  // Groups whose sessions all cancelled out (sum(sign) = 0) are not rows; without dimensions there is always one row.
  const sessionsSql = () => sideSql(sessionSource, 's_present', dims.length ? ' HAVING s_sessions > 0' : '');

  let from: string;
  let dimSelect: string[];
  if (wantHits && wantSessions) {
    const on = dims.length ? ` ON ${dimAliases.map((a) => `h.${a} = s.${a}`).join(' AND ')}` : '';
    from = `(${hitsSql()}) AS h ${dims.length ? 'FULL OUTER JOIN' : 'CROSS JOIN'} (${sessionsSql()}) AS s${on}`;
    // Without join_use_nulls a missing side reads as defaults; its present flag (0) says which side has the keys.
    dimSelect = dims.map((d, i) => `if(h.h_present = 1, h.d${i}, s.d${i}) AS ${d}`);
  } else if (wantHits) {
    from = `(${hitsSql()}) AS h`;
    dimSelect = dims.map((d, i) => `h.d${i} AS ${d}`);
  } else {
    from = `(${sessionsSql()}) AS s`;
    dimSelect = dims.map((d, i) => `s.d${i} AS ${d}`);
  }

  const metricSql: Record<Metric, string> = {
    pageviews: 'h.h_pageviews',
    unique_users: 'h.h_users',
    sessions: 's.s_sessions',
    bounce_rate: 'if(s.s_sessions > 0, s.s_bounces / s.s_sessions, NULL)',
    avg_session_duration: 'if(s.s_sessions > 0, s.s_duration_ms / 1000 / s.s_sessions, NULL)',
    pages_per_session: 'if(s.s_sessions > 0, s.s_pageviews / s.s_sessions, NULL)',
    goal_completions: 's.s_completions',
    conversion_rate: 'if(s.s_sessions > 0, s.s_completions / s.s_sessions, NULL)',
    goal_value: 's.s_goal_value',
  };
  const select = [...dimSelect, ...metrics.map((m) => `${metricSql[m]} AS ${m}`)];

  const order = (spec.order_by ?? [{ metric: metrics[0]!, direction: 'desc' as const }]).map((o, i) => {
    const key = 'metric' in o ? o.metric : o.dimension;
    const known = 'metric' in o ? metrics.includes(o.metric) : dims.includes(o.dimension);
    if (!known) throw badRequest(`order_by ${key} is not one of the query's ${'metric' in o ? 'metrics' : 'dimensions'}.`, `/order_by/${i}`);
    return `${key} ${(o.direction ?? ('metric' in o ? 'desc' : 'asc')).toUpperCase()}`;
  });
  // Dimensions last, so rows with equal sort keys page in a stable order.
  for (const d of dims) if (!order.some((o) => o.startsWith(`${d} `))) order.push(`${d} ASC`);

  const inner = `SELECT ${select.join(', ')} FROM ${from}`;
  return {
    sources: { hits: wantHits ? sourceName(hitSource) : undefined, sessions: wantSessions ? sourceName(sessionSource) : undefined },
    sql: `SELECT *, count() OVER () AS __total FROM (${inner}) ORDER BY ${order.join(', ')} LIMIT {limit:UInt32} OFFSET {offset:UInt32}`,
    countSql: `SELECT count() AS total FROM (${inner})`,
    params,
  };
}
