import type { Warehouse } from '../stores/index.js';
import type { SessionState } from './sessions.js';

export const HITS_TABLE = 'analytics_hits';
export const SESSIONS_TABLE = 'analytics_sessions';

/**
 * One hits table for every website, in time order per website. No IP address column: the IP is
 * used for the country lookup and dropped before anything is written. `visitor` is 64 bits of a
 * hash of the website and the client (or user) id, never the id itself.
 */
const HITS_DDL = `CREATE TABLE IF NOT EXISTS ${HITS_TABLE} (
  website_id UUID,
  time DateTime64(3, 'UTC'),
  hit_type LowCardinality(String),
  visitor UInt64,
  client_id String,
  user_id String,
  session_id UUID,
  session_hit_number UInt32,
  is_new_visitor UInt8,
  is_interaction UInt8,
  page String,
  hostname String,
  title String,
  referrer String,
  source String,
  medium String,
  campaign String,
  keyword String,
  content String,
  event_category String,
  event_action String,
  event_label String,
  event_value Nullable(UInt32),
  country LowCardinality(String),
  device_type LowCardinality(String),
  browser LowCardinality(String),
  os LowCardinality(String),
  language String,
  screen_resolution String,
  goal_ids Array(String)
) ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (website_id, time)`;

/**
 * One row per session as it stands after its latest hit. Each hit cancels the session's previous
 * row (sign -1) and writes the new one (sign +1), so sums weighted by sign are exact before and
 * after ClickHouse collapses the pairs in the background. The version (the session's hit count)
 * pairs each cancel row with the row it cancels whatever order the rows arrive or sort in: a
 * plain CollapsingMergeTree keeps "the last positive row", which depends on the order within an
 * insert, and could drop the wrong state.
 */
const SESSIONS_DDL = `CREATE TABLE IF NOT EXISTS ${SESSIONS_TABLE} (
  website_id UUID,
  session_id UUID,
  sign Int8,
  version UInt32,
  start_time DateTime64(3, 'UTC'),
  end_time DateTime64(3, 'UTC'),
  visitor UInt64,
  is_new_visitor UInt8,
  hits UInt32,
  pageviews UInt32,
  interactions UInt32,
  entry_page String,
  entry_hostname String,
  referrer String,
  source String,
  medium String,
  campaign String,
  country LowCardinality(String),
  device_type LowCardinality(String),
  browser LowCardinality(String),
  os LowCardinality(String),
  goal_ids Array(String),
  goal_values Array(Float64)
) ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY toYYYYMM(start_time)
ORDER BY (website_id, start_time, session_id)`;

/**
 * The collector's one INSERT per group commit: a Null table (it keeps nothing) whose two views
 * copy hit rows (kind 0) into the hits table and session rows (kind 1) into the sessions table,
 * whose own views fill the rollups. One statement instead of one per table: an insert's fixed
 * cost (parsing, planning, starting the pipeline) is paid once, and the INSERT returns only after
 * every view downstream has written its part, so an acknowledged hit is stored.
 */
export const INGEST_TABLE = 'analytics_ingest';

/** The `name Type` column lines of a CREATE TABLE above. */
function columnsOf(ddl: string): Array<[string, string]> {
  const body = ddl.slice(ddl.indexOf('(\n') + 2, ddl.indexOf('\n) ENGINE'));
  return body.split('\n').map((line) => {
    const m = /^\s*(\w+) (.+?),?$/.exec(line)!;
    return [m[1]!, m[2]!];
  });
}

function ingestDdl(): string[] {
  const hitCols = columnsOf(HITS_DDL);
  const sessionCols = columnsOf(SESSIONS_DDL);
  const union = new Map<string, string>([['kind', 'UInt8'], ...hitCols, ...sessionCols]);
  for (const [name, type] of hitCols) if (union.get(name) !== type) throw new Error(`analytics: column ${name} differs between hits and sessions`);
  const list = (cols: Array<[string, string]>) => cols.map(([n]) => n).join(', ');
  return [
    `CREATE TABLE IF NOT EXISTS ${INGEST_TABLE} (${[...union].map(([n, t]) => `${n} ${t}`).join(', ')}) ENGINE = Null`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${INGEST_TABLE}_hits_mv TO ${HITS_TABLE} AS SELECT ${list(hitCols)} FROM ${INGEST_TABLE} WHERE kind = 0`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${INGEST_TABLE}_sessions_mv TO ${SESSIONS_TABLE} AS SELECT ${list(sessionCols)} FROM ${INGEST_TABLE} WHERE kind = 1`,
  ];
}

/**
 * Rollups: insert-time pre-aggregations that reports read instead of the raw tables when the
 * query allows (see report-compiler.ts). Each is filled by a materialized view as rows are
 * inserted into its source, in UTC quarter hours (every time zone's offset is a whole number of
 * quarter hours, so local days and hours are unions of buckets). Everything kept is a sum (exact
 * in any order; session rows carry their sign) or, for unique users, the visitor itself in the
 * key, so every report answered from a rollup equals the raw computation.
 */
export const HITS_ROLLUP = 'analytics_hits_15m';
export const PAGES_ROLLUP = 'analytics_pages_15m';
export const SESSIONS_ROLLUP = 'analytics_sessions_15m';
/** When each rollup's view was created: it holds every row whose time is at or after complete_from. */
export const ROLLUPS_TABLE = 'analytics_rollups';
export const ROLLUPS = [HITS_ROLLUP, PAGES_ROLLUP, SESSIONS_ROLLUP] as const;
export type RollupName = (typeof ROLLUPS)[number];

// Session-level dimensions of a hit: they rarely change within a visitor's quarter hour, so with
// the visitor in the key the rollup has about one row per visitor and quarter hour.
const HIT_ROLLUP_KEY = 'website_id, bucket, hostname, source, medium, campaign, country, device_type, browser, os, visitor';
// Pages: a visitor rarely views a page twice in a quarter hour, so this holds about one row per
// pageview, but sorted by page then visitor, and narrow: a report by page reads a few columns of
// rows already grouped by page (aggregation in order) instead of sorting raw hits by page.
const PAGE_ROLLUP_KEY = 'website_id, page, hostname, visitor, bucket';
// Sessions are rolled up at two grains in one table, so an insert writes one rollup part for them:
// grain 0 by the session-level dimensions (entry_page empty), grain 1 by landing page (the others
// empty). A query reads one grain.
const SESSION_ROLLUP_KEY = 'website_id, grain, bucket, entry_hostname, entry_page, source, medium, campaign, country, device_type, browser, os';

const ROLLUP_DDL: Record<RollupName, { table: string; view: string; source: string }> = {
  [HITS_ROLLUP]: {
    source: HITS_TABLE,
    table: `CREATE TABLE IF NOT EXISTS ${HITS_ROLLUP} (
  website_id UUID, bucket DateTime('UTC'), hostname String, source String, medium String, campaign String,
  country LowCardinality(String), device_type LowCardinality(String), browser LowCardinality(String), os LowCardinality(String),
  visitor UInt64, pageviews UInt64, hits UInt64
) ENGINE = SummingMergeTree((pageviews, hits))
PARTITION BY toYYYYMM(bucket)
ORDER BY (${HIT_ROLLUP_KEY})`,
    view: `CREATE MATERIALIZED VIEW IF NOT EXISTS ${HITS_ROLLUP}_mv TO ${HITS_ROLLUP} AS
SELECT website_id, toStartOfFifteenMinutes(time) AS bucket, hostname, source, medium, campaign, country, device_type, browser, os, visitor,
  countIf(hit_type IN ('pageview', 'screenview')) AS pageviews, count() AS hits
FROM ${HITS_TABLE} GROUP BY ${HIT_ROLLUP_KEY}`,
  },
  [PAGES_ROLLUP]: {
    source: HITS_TABLE,
    table: `CREATE TABLE IF NOT EXISTS ${PAGES_ROLLUP} (
  website_id UUID, page String, hostname String, visitor UInt64, bucket DateTime('UTC'), pageviews UInt64, hits UInt64
) ENGINE = SummingMergeTree((pageviews, hits))
PARTITION BY toYYYYMM(bucket)
ORDER BY (${PAGE_ROLLUP_KEY})`,
    view: `CREATE MATERIALIZED VIEW IF NOT EXISTS ${PAGES_ROLLUP}_mv TO ${PAGES_ROLLUP} AS
SELECT website_id, page, hostname, visitor, toStartOfFifteenMinutes(time) AS bucket,
  countIf(hit_type IN ('pageview', 'screenview')) AS pageviews, count() AS hits
FROM ${HITS_TABLE} GROUP BY ${PAGE_ROLLUP_KEY}`,
  },
  [SESSIONS_ROLLUP]: {
    source: SESSIONS_TABLE,
    table: `CREATE TABLE IF NOT EXISTS ${SESSIONS_ROLLUP} (
  website_id UUID, grain UInt8, bucket DateTime('UTC'), entry_hostname String, entry_page String, source String, medium String, campaign String,
  country LowCardinality(String), device_type LowCardinality(String), browser LowCardinality(String), os LowCardinality(String),
  sessions Int64, bounces Int64, duration_ms Int64, pageviews Int64, completions Int64, goal_value Float64
) ENGINE = SummingMergeTree((sessions, bounces, duration_ms, pageviews, completions, goal_value))
PARTITION BY toYYYYMM(bucket)
ORDER BY (${SESSION_ROLLUP_KEY})`,
    // The session table's own columns are qualified (s.) where an output column has their name.
    view: `CREATE MATERIALIZED VIEW IF NOT EXISTS ${SESSIONS_ROLLUP}_mv TO ${SESSIONS_ROLLUP} AS
SELECT website_id, g AS grain, toStartOfFifteenMinutes(start_time) AS bucket, entry_hostname,
  if(g = 1, s.entry_page, '') AS entry_page,
  if(g = 0, s.source, '') AS source, if(g = 0, s.medium, '') AS medium, if(g = 0, s.campaign, '') AS campaign,
  if(g = 0, s.country, '') AS country, if(g = 0, s.device_type, '') AS device_type, if(g = 0, s.browser, '') AS browser, if(g = 0, s.os, '') AS os,
  sum(sign) AS sessions, sumIf(sign, interactions <= 1) AS bounces, sum(sign * dateDiff('millisecond', start_time, end_time)) AS duration_ms,
  sum(sign * s.pageviews) AS pageviews, sumIf(sign, notEmpty(goal_ids)) AS completions, sum(sign * arraySum(goal_values)) AS goal_value
FROM ${SESSIONS_TABLE} AS s ARRAY JOIN [0, 1] AS g
GROUP BY ${SESSION_ROLLUP_KEY}`,
  },
};

const ROLLUPS_DDL = `CREATE TABLE IF NOT EXISTS ${ROLLUPS_TABLE} (
  name String,
  complete_from DateTime64(3, 'UTC'),
  created_at DateTime64(3, 'UTC')
) ENGINE = MergeTree ORDER BY name`;

/** How far ahead of its insert a hit may be dated (the collector refuses hits more than 5 minutes ahead). */
const MAX_HIT_LEAD_MS = 10 * 60_000;

/**
 * Creates the tables, and the rollups with their views, for new and existing installs alike. A
 * view only sees rows inserted after it exists: over an empty source (a new install) the rollup
 * is complete from the start; over existing data it is complete from a little after its creation
 * (no hit inserted before then can be dated later), and reports over older dates read raw rows.
 */
export async function createAnalyticsTables(warehouse: Warehouse, options: { rollups?: boolean } = {}): Promise<void> {
  const c = warehouse.client;
  await c.command({ query: HITS_DDL });
  await c.command({ query: SESSIONS_DDL });
  for (const query of ingestDdl()) await c.command({ query });
  await c.command({ query: ROLLUPS_DDL });
  if (options.rollups === false) {
    // Switched off: no view, no record (reports read raw rows), and no stale rows should it be switched on again.
    for (const name of ROLLUPS) {
      await c.command({ query: `DROP VIEW IF EXISTS ${name}_mv` });
      await c.command({ query: `DROP TABLE IF EXISTS ${name}` });
    }
    await c.command({ query: `TRUNCATE TABLE ${ROLLUPS_TABLE}` });
    coverage.delete(warehouse);
    return;
  }
  for (const name of ROLLUPS) {
    const ddl = ROLLUP_DDL[name];
    const exists = await rows<{ n: string }>(warehouse, `SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = {v:String}`, { v: `${name}_mv` });
    if (Number(exists[0]?.n ?? 0) > 0) continue;
    await c.command({ query: ddl.table });
    await c.command({ query: ddl.view });
    const counted = await rows<{ n: string }>(warehouse, `SELECT count() AS n FROM ${ddl.source}`);
    const now = Date.now();
    const completeFrom = Number(counted[0]?.n ?? 0) === 0 ? 0 : now + MAX_HIT_LEAD_MS;
    await c.insert({ table: ROLLUPS_TABLE, values: [{ name, complete_from: new Date(completeFrom).toISOString(), created_at: new Date(now).toISOString() }], format: 'JSONEachRow' });
  }
}

async function rows<T>(warehouse: Warehouse, query: string, query_params?: Record<string, unknown>): Promise<T[]> {
  return (await warehouse.client.query({ query, query_params, format: 'JSONEachRow' })).json<T>();
}

const coverage = new WeakMap<Warehouse, Promise<Partial<Record<RollupName, number>>>>();

export function forgetRollupCoverage(warehouse: Warehouse): void {
  coverage.delete(warehouse);
}

/**
 * From when each rollup holds every row (epoch ms); a rollup missing here is not used. Read once
 * per warehouse: it only changes when a rollup is created (at startup). With several records
 * (processes racing to create a view), the latest is the safe one.
 */
export function rollupCoverage(warehouse: Warehouse): Promise<Partial<Record<RollupName, number>>> {
  let known = coverage.get(warehouse);
  if (!known) {
    known = rows<{ name: RollupName; from: string }>(warehouse, `SELECT name, toUnixTimestamp64Milli(max(complete_from)) AS from FROM ${ROLLUPS_TABLE} GROUP BY name`).then((found) => {
      const out: Partial<Record<RollupName, number>> = {};
      for (const r of found) if ((ROLLUPS as readonly string[]).includes(r.name)) out[r.name] = Number(r.from);
      // Not cached until every rollup is known: a later read may find one created meanwhile.
      if (Object.keys(out).length < ROLLUPS.length) coverage.delete(warehouse);
      return out;
    });
    known.catch(() => coverage.delete(warehouse));
    coverage.set(warehouse, known);
  }
  return known;
}

export interface HitRow {
  website_id: string;
  time: string;
  hit_type: string;
  visitor: string;
  client_id: string;
  user_id: string;
  session_id: string;
  session_hit_number: number;
  is_new_visitor: number;
  is_interaction: number;
  page: string;
  hostname: string;
  title: string;
  referrer: string;
  source: string;
  medium: string;
  campaign: string;
  keyword: string;
  content: string;
  event_category: string;
  event_action: string;
  event_label: string;
  event_value: number | null;
  country: string;
  device_type: string;
  browser: string;
  os: string;
  language: string;
  screen_resolution: string;
  goal_ids: string[];
}

export type SessionRow = ReturnType<typeof sessionRow>;

const iso = (ms: number) => new Date(ms).toISOString();

export function sessionRow(websiteId: string, visitor: string, s: SessionState, sign: 1 | -1) {
  return {
    website_id: websiteId,
    session_id: s.id,
    sign,
    version: s.hits,
    start_time: iso(s.start),
    end_time: iso(s.last),
    visitor,
    is_new_visitor: s.newVisitor ? 1 : 0,
    hits: s.hits,
    pageviews: s.pageviews,
    interactions: s.interactions,
    entry_page: s.entryPage,
    entry_hostname: s.entryHostname,
    referrer: s.referrer,
    source: s.traffic.source,
    medium: s.traffic.medium,
    campaign: s.traffic.campaign,
    country: s.country,
    device_type: s.deviceType,
    browser: s.browser,
    os: s.os,
    goal_ids: s.goalIds,
    goal_values: s.goalValues,
  };
}

/** Deletes a website's hits and sessions (a mutation, run in the background by ClickHouse). */
export async function deleteWebsiteData(warehouse: Warehouse, websiteId: string): Promise<void> {
  const rollups = await rows<{ name: string }>(warehouse, `SELECT name FROM system.tables WHERE database = currentDatabase() AND name IN {names:Array(String)}`, { names: [...ROLLUPS] });
  for (const table of [HITS_TABLE, SESSIONS_TABLE, ...rollups.map((r) => r.name)]) {
    await warehouse.client.command({ query: `ALTER TABLE ${table} DELETE WHERE website_id = {w:UUID}`, query_params: { w: websiteId } });
  }
}
