import { ProblemError } from '../problem.js';
import { HIT_DIMENSION_SQL, type ReportFilter } from './report-compiler.js';
import { HITS_TABLE } from './warehouse-tables.js';

/** The columns of a website export, in their default order. */
export const HIT_EXPORT_FIELDS = [
  'timestamp', 'hit_type', 'client_id', 'user_id', 'session_id', 'page', 'hostname', 'title', 'referrer', 'source', 'medium', 'campaign',
  'keyword', 'content', 'country', 'device_type', 'browser', 'os', 'language', 'screen_resolution', 'event_category', 'event_action',
  'event_label', 'event_value',
] as const;
export type HitExportField = (typeof HIT_EXPORT_FIELDS)[number];

export interface HitExportSpec {
  date_range: { start_date: string; end_date: string };
  format: 'csv' | 'ndjson' | 'parquet';
  fields?: HitExportField[];
  filters?: ReportFilter[];
}

// Identifiers come only from this table; the client's values travel as typed parameters.
const FIELD_SQL: Record<HitExportField, string> = {
  ...Object.fromEntries(HIT_EXPORT_FIELDS.map((f) => [f, f])),
  // The hit's time in the website's time zone.
  timestamp: 'toTimeZone(time, {tz:String})',
} as Record<HitExportField, string>;

const DAY_MS = 86_400_000;
const MAX_RANGE_DAYS = 366;

function badRequest(detail: string, pointer: string): ProblemError {
  return new ProblemError(400, { type: 'validation', title: 'Request validation failed', detail, errors: [{ in: 'body', pointer, detail }] });
}

const nextDay = (date: string) => new Date(Date.parse(`${date}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);

/**
 * The query of a website export: its raw hits over the date range (calendar days in the
 * website's time zone), after the filters, oldest first, with the chosen fields.
 */
export function compileHitExport(spec: HitExportSpec, website: { id: string; timezone: string }): { sql: string; countSql: string; params: Record<string, unknown> } {
  const start = Date.parse(`${spec.date_range.start_date}T00:00:00Z`);
  const end = Date.parse(`${spec.date_range.end_date}T00:00:00Z`);
  if (end < start) throw badRequest('end_date is before start_date.', '/date_range/end_date');
  if ((end - start) / DAY_MS >= MAX_RANGE_DAYS) throw badRequest('An export may span at most 1 year.', '/date_range');
  const params: Record<string, unknown> = {
    website: website.id,
    tz: website.timezone,
    from: `${spec.date_range.start_date} 00:00:00`,
    to: `${nextDay(spec.date_range.end_date)} 00:00:00`,
  };
  const where = [
    'website_id = {website:UUID}',
    'time >= toDateTime64({from:String}, 3, {tz:String})',
    'time < toDateTime64({to:String}, 3, {tz:String})',
  ];
  (spec.filters ?? []).forEach((f, i) => {
    const col = HIT_DIMENSION_SQL[f.dimension];
    const p = `f${i}`;
    if ('values' in f) {
      params[p] = f.values;
      where.push(`${col} ${f.operator === 'in' ? 'IN' : 'NOT IN'} {${p}:Array(String)}`);
      return;
    }
    params[p] = f.value;
    const op = { equals: `${col} = {${p}:String}`, not_equals: `${col} != {${p}:String}`, contains: `position(${col}, {${p}:String}) > 0`, starts_with: `startsWith(${col}, {${p}:String})` };
    where.push(op[f.operator]);
  });
  const fields = spec.fields?.length ? spec.fields : HIT_EXPORT_FIELDS;
  const select = fields.map((f) => `${FIELD_SQL[f]} AS ${f}`);
  const filtered = `FROM ${HITS_TABLE} WHERE ${where.join(' AND ')}`;
  return {
    sql: `SELECT ${select.join(', ')} ${filtered} ORDER BY time, session_id, session_hit_number`,
    countSql: `SELECT count() AS total ${filtered}`,
    params,
  };
}
