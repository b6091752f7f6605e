import { createHash } from 'node:crypto';
import type { Warehouse } from '../stores/index.js';
import { decodeCursor, encodeCursor } from '../list-cursor.js';
import { newQueryId } from './ids.js';
import { compileReport, DIMENSIONS, type CompiledReport, type ReportSpec } from './report-compiler.js';
import { ProblemError } from '../problem.js';
import { forgetRollupCoverage, HITS_TABLE, rollupCoverage } from './warehouse-tables.js';

export interface ReportResult {
  query_id: string;
  rows: Array<Record<string, string | number | null>>;
  total_rows: number;
  sampled: boolean;
  query_time_ms: number;
  next_cursor: string | null;
  timezone: string;
}

export interface RealtimeFigures {
  website_id: string;
  timestamp: string;
  active_users: number;
  pageviews_per_minute: number;
  top_pages: Array<{ page: string; active_users: number }>;
  top_countries: Array<{ country: string; active_users: number }>;
}

const DIMENSION_SET: ReadonlySet<string> = new Set(DIMENSIONS);

/** The part of a query a cursor is bound to: everything but the paging. */
function fingerprint(spec: ReportSpec & { cursor?: string }): string {
  const { cursor: _c, offset: _o, ...rest } = spec;
  return createHash('sha256').update(JSON.stringify(rest)).digest('base64url').slice(0, 16);
}

export interface RunReportOptions {
  /** false: read only the raw hits and sessions (tests compare both paths). Default true. */
  rollups?: boolean;
  /** Told which tables the report read. */
  onPlan?(sources: CompiledReport['sources']): void;
}

export async function runReport(
  warehouse: Warehouse,
  website: { id: string; timezone: string },
  goalIds: ReadonlySet<string>,
  spec: ReportSpec & { cursor?: string },
  options: RunReportOptions = {},
): Promise<ReportResult> {
  const started = performance.now();
  let offset = spec.offset ?? 0;
  if (spec.cursor !== undefined) {
    if (spec.offset) {
      throw new ProblemError(400, { type: 'validation', title: 'Request validation failed', detail: 'Send cursor or offset, not both.', errors: [{ in: 'body', pointer: '#/offset', detail: 'not with cursor' }] });
    }
    const cursor = decodeCursor<{ o: number; f: string }>(spec.cursor, ['o', 'f'], 'body', ({ o }) => Number.isSafeInteger(o) && o >= 0)!;
    if (cursor.f !== fingerprint(spec)) {
      throw new ProblemError(400, { type: 'validation', title: 'Request validation failed', detail: 'The cursor belongs to a different query; send the same body as the previous page.', errors: [{ in: 'body', pointer: '#/cursor', detail: 'cursor of another query' }] });
    }
    offset = cursor.o;
  }
  const limit = spec.limit ?? 100;
  const rollupsFrom = options.rollups === false ? undefined : await rollupCoverage(warehouse);
  let compiled = compileReport({ ...spec, offset, limit }, website, goalIds, { rollupsFrom });
  const read = () => warehouse.client.query({ query: compiled.sql, query_params: compiled.params, format: 'JSONEachRow' }).then((r) => r.json<Record<string, unknown>>());
  let raw: Array<Record<string, unknown>>;
  try {
    raw = await read();
  } catch (err) {
    // A rollup switched off (ANALYTICS_ROLLUPS=false) by another process since this one read which exist: read raw rows.
    if (!rollupsFrom || !/UNKNOWN_TABLE|doesn't exist|does not exist/i.test(String((err as Error).message))) throw err;
    forgetRollupCoverage(warehouse);
    compiled = compileReport({ ...spec, offset, limit }, website, goalIds);
    raw = await read();
  }
  options.onPlan?.(compiled.sources);
  let total = raw.length ? Number(raw[0]!.__total) : 0;
  if (!raw.length && offset > 0) {
    const counted = await warehouse.client.query({ query: compiled.countSql, query_params: compiled.params, format: 'JSONEachRow' });
    total = Number((await counted.json<{ total: string | number }>())[0]?.total ?? 0);
  }
  const rows = raw.map((row) => {
    const out: Record<string, string | number | null> = {};
    for (const [key, value] of Object.entries(row)) {
      if (key === '__total') continue;
      out[key] = DIMENSION_SET.has(key) ? String(value) : value === null ? null : Number(value);
    }
    return out;
  });
  const nextOffset = offset + rows.length;
  return {
    query_id: newQueryId(),
    rows,
    total_rows: total,
    sampled: false,
    query_time_ms: Math.round((performance.now() - started) * 10) / 10,
    next_cursor: rows.length && nextOffset < total ? encodeCursor({ o: nextOffset, f: fingerprint(spec) }) : null,
    timezone: website.timezone,
  };
}

const ACTIVE_WINDOW_MS = 5 * 60_000;
const MINUTE_MS = 60_000;

/** Users with a hit in the last 5 minutes, pageviews in the last full minute, and where the active users are. */
export async function realtimeFigures(warehouse: Warehouse, websiteId: string, now: number): Promise<RealtimeFigures> {
  const minuteEnd = Math.floor(now / MINUTE_MS) * MINUTE_MS;
  const params = {
    website: websiteId,
    since: new Date(now - ACTIVE_WINDOW_MS).toISOString().replace('T', ' ').replace('Z', ''),
    until: new Date(now).toISOString().replace('T', ' ').replace('Z', ''),
    m0: new Date(minuteEnd - MINUTE_MS).toISOString().replace('T', ' ').replace('Z', ''),
    m1: new Date(minuteEnd).toISOString().replace('T', ' ').replace('Z', ''),
  };
  // Bounded above too: a hit dated ahead of this clock (client skew) is not activity yet.
  const recent = `website_id = {website:UUID} AND time >= toDateTime64({since:String}, 3, 'UTC') AND time <= toDateTime64({until:String}, 3, 'UTC')`;
  // Each active user counts once, on the page and country of their latest hit.
  const latest = `SELECT visitor, argMax(page, time) AS page, argMax(country, time) AS country FROM ${HITS_TABLE} WHERE ${recent} GROUP BY visitor`;
  const q = async <T>(query: string) => (await (await warehouse.client.query({ query, query_params: params, format: 'JSONEachRow' })).json<T>());
  const [totals, pages, countries] = await Promise.all([
    q<{ active: string; pageviews: string }>(
      `SELECT (SELECT uniqExact(visitor) FROM ${HITS_TABLE} WHERE ${recent}) AS active,
              (SELECT count() FROM ${HITS_TABLE} WHERE website_id = {website:UUID} AND hit_type IN ('pageview', 'screenview')
                 AND time >= toDateTime64({m0:String}, 3, 'UTC') AND time < toDateTime64({m1:String}, 3, 'UTC')) AS pageviews`,
    ),
    q<{ page: string; users: string }>(`SELECT page, count() AS users FROM (${latest}) GROUP BY page ORDER BY users DESC, page ASC LIMIT 10`),
    q<{ country: string; users: string }>(`SELECT country, count() AS users FROM (${latest}) GROUP BY country ORDER BY users DESC, country ASC LIMIT 10`),
  ]);
  return {
    website_id: websiteId,
    timestamp: new Date(now).toISOString(),
    active_users: Number(totals[0]?.active ?? 0),
    pageviews_per_minute: Number(totals[0]?.pageviews ?? 0),
    top_pages: pages.map((p) => ({ page: p.page, active_users: Number(p.users) })),
    top_countries: countries.map((c) => ({ country: /^[A-Z]{2}$/.test(c.country) ? c.country : 'ZZ', active_users: Number(c.users) })),
  };
}
