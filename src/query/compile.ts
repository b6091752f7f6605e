import { clickhouseType, quoteIdent, visibleColumns, type VisibleColumn } from './columns.js';
import { decodeCursor, queryFingerprint } from './cursor.js';
import { QueryProblems } from './errors.js';
import { compileFilter } from './filters.js';
import { ParamBag } from './params.js';
import type { AccessView, ColumnType, CompiledQuery, QueryableDataset, QueryRequest } from './types.js';
import { coerceValue, isIsoDate, isTimeZone } from './values.js';

export interface CompileOptions {
  /** The most rows a page may hold (config). */
  maxLimit?: number;
  /** For an export: every matching row (or the body's `limit`), no page offset, no tie-breaking sort. */
  export?: boolean;
}

interface Output {
  alias: string;
  sql: string;
  type: ColumnType;
}

type Metric = NonNullable<QueryRequest['metrics']>[number];
type Dimension = NonNullable<QueryRequest['dimensions']>[number];

const numeric = new Set<ColumnType>(['int', 'float']);
const comparable = new Set<ColumnType>(['int', 'float', 'timestamp', 'date', 'string']);

/**
 * Compiles a structured query into ClickHouse SQL for one caller. Identifiers come only from the
 * dataset's schema (and only the columns the caller may see, through their masks); every value is a
 * typed parameter. What is wrong with the body is reported all at once, each with a pointer.
 */
export function compileQuery(req: QueryRequest, dataset: QueryableDataset, view: AccessView, options: CompileOptions = {}): CompiledQuery {
  const problems = new QueryProblems();
  const params = new ParamBag();
  const columns = visibleColumns(dataset, view, params);
  const aggregate = Boolean(req.metrics?.length || req.dimensions?.length);
  if (aggregate && req.select) problems.add('/select', 'cannot be combined with metrics or dimensions');

  const outputs: Output[] = [];
  const addOutput = (o: Output, at: string) => {
    if (outputs.some((x) => x.alias === o.alias)) problems.add(at, `repeats the result column name ${JSON.stringify(o.alias)}; give one an "as"`);
    else outputs.push(o);
  };
  const groupBy: string[] = [];
  if (!aggregate) {
    const names = req.select ?? [...columns.keys()];
    names.forEach((name, i) => {
      const col = columns.get(name);
      if (!col) problems.add(`/select/${i}`, `names an unknown column ${JSON.stringify(name)}`);
      else addOutput({ alias: name, sql: col.sql, type: col.type }, `/select/${i}`);
    });
  } else {
    (req.dimensions ?? []).forEach((d, i) => {
      const out = dimension(d, columns, params, problems, `/dimensions/${i}`, req.date_range?.timezone);
      if (out) {
        addOutput(out, `/dimensions/${i}`);
        groupBy.push(quoteIdent(out.alias));
      }
    });
    (req.metrics ?? []).forEach((m, i) => {
      const out = metric(m, columns, problems, `/metrics/${i}`);
      if (out) addOutput(out, `/metrics/${i}`);
    });
  }

  const where: string[] = [];
  if (view.rowFilter) where.push(`(${view.rowFilter.sql})`);
  if (req.filters) where.push(compileFilter(req.filters, columns, params, problems));
  if (req.date_range) {
    const range = dateRange(req.date_range, dataset, columns, params, problems);
    if (range) where.push(range);
  }

  const orderBy: string[] = [];
  const ordered = new Set<string>();
  (req.order_by ?? []).forEach((o, i) => {
    const out = outputs.find((x) => x.alias === o.column);
    if (out) ordered.add(out.alias);
    const sql = out ? quoteIdent(out.alias) : !aggregate ? columns.get(o.column)?.sql : undefined;
    if (!sql) {
      problems.add(`/order_by/${i}/column`, aggregate ? `must be a result column (a dimension or a metric's "as")` : `names an unknown column ${JSON.stringify(o.column)}`);
      return;
    }
    orderBy.push(`${sql} ${o.direction === 'desc' ? 'DESC' : 'ASC'}`);
  });
  // Tie-breakers, so pages don't overlap or skip rows: every result column not ordered yet (for an
  // aggregate, the dimensions: a group's key is unique).
  if (!options.export) {
    const keys = aggregate ? outputs.filter((o) => groupBy.includes(quoteIdent(o.alias))) : outputs;
    for (const o of keys) if (!ordered.has(o.alias)) orderBy.push(`${quoteIdent(o.alias)} ASC`);
  }

  const maxLimit = options.maxLimit ?? 100_000;
  const limit = Math.min(req.limit ?? 1000, maxLimit);
  const { cursor, limit: _limit, ...shape } = req;
  const fingerprint = queryFingerprint(shape);
  let offset = 0;
  if (cursor !== undefined) {
    const decoded = decodeCursor(cursor, fingerprint);
    if (decoded === undefined) problems.add('/cursor', 'is not a cursor of this query; send the same query with the next_cursor it returned, or no cursor');
    else offset = decoded;
  }
  problems.throwIfAny();

  const params_ = { ...params.values, ...(view.rowFilter?.params ?? {}) };
  const whereSql = where.length ? ` WHERE ${where.join(' AND ')}` : '';
  const groupSql = groupBy.length ? ` GROUP BY ${groupBy.join(', ')}` : '';
  const select = outputs.map((o) => `${o.sql} AS ${quoteIdent(o.alias)}`).join(', ');
  const from = `${dataset.table}${whereSql}${groupSql}`;
  const orderSql = orderBy.length ? ` ORDER BY ${orderBy.join(', ')}` : '';
  const page = options.export ? (req.limit !== undefined ? ` LIMIT ${req.limit}` : '') : ` LIMIT ${limit} OFFSET ${offset}`;
  const sql = `SELECT ${select} FROM ${from}${orderSql}${page}`;
  return {
    sql,
    countSql: options.export
      ? `SELECT count() AS total FROM (${sql})`
      : aggregate
        ? `SELECT count() AS total FROM (SELECT ${select} FROM ${from})`
        : `SELECT count() AS total FROM ${from}`,
    params: params_,
    columns: outputs.map((o) => ({ name: o.alias, type: o.type })),
    limit,
    offset,
    fingerprint,
  };
}

function dimension(
  d: Dimension,
  columns: Map<string, VisibleColumn>,
  params: ParamBag,
  problems: QueryProblems,
  at: string,
  defaultZone = 'UTC',
): Output | undefined {
  if (typeof d === 'string') {
    const col = columns.get(d);
    if (!col) problems.add(at, `names an unknown column ${JSON.stringify(d)}`);
    else if (col.type === 'json' || col.type === 'map') problems.add(at, `cannot group by ${col.name}: it is a ${col.type} column`);
    else return { alias: d, sql: col.sql, type: col.type };
    return undefined;
  }
  const col = columns.get(d.column);
  if (!col) {
    problems.add(`${at}/column`, `names an unknown column ${JSON.stringify(d.column)}`);
    return undefined;
  }
  const zone = d.timezone ?? defaultZone;
  if (!isTimeZone(zone)) {
    problems.add(d.timezone ? `${at}/timezone` : '/date_range/timezone', 'is not an IANA time zone such as Europe/Berlin or UTC');
    return undefined;
  }
  const alias = d.as ?? d.column;
  if (col.type === 'date') {
    const fn = { day: '', week: 'toMonday', month: 'toStartOfMonth' }[d.bucket as 'day'];
    if (fn === undefined) {
      problems.add(`${at}/bucket`, `${d.bucket} buckets need a timestamp column; ${col.name} is a date`);
      return undefined;
    }
    return { alias, sql: `toString(${fn ? `${fn}(${col.sql})` : col.sql})`, type: 'date' };
  }
  if (col.type !== 'timestamp') {
    problems.add(`${at}/column`, `time buckets need a timestamp or date column; ${col.name} is ${col.type}`);
    return undefined;
  }
  const tz = params.add(zone, 'String');
  switch (d.bucket) {
    case 'minute':
    case 'hour': {
      const start = `${d.bucket === 'minute' ? 'toStartOfMinute' : 'toStartOfHour'}(${col.sql}, ${tz})`;
      // RFC 3339 in the bucket's zone: ClickHouse's %z gives +0100, RFC 3339 wants +01:00.
      const offset = `formatDateTime(${start}, '%z', ${tz})`;
      return { alias, sql: `concat(formatDateTime(${start}, '%Y-%m-%dT%H:%i:%S', ${tz}), substring(${offset}, 1, 3), ':', substring(${offset}, 4, 2))`, type: 'timestamp' };
    }
    case 'day':
      return { alias, sql: `toString(toDate(${col.sql}, ${tz}))`, type: 'date' };
    case 'week':
      return { alias, sql: `toString(toMonday(${col.sql}, ${tz}))`, type: 'date' };
    case 'month':
      return { alias, sql: `toString(toStartOfMonth(${col.sql}, ${tz}))`, type: 'date' };
  }
}

function metric(m: Metric, columns: Map<string, VisibleColumn>, problems: QueryProblems, at: string): Output | undefined {
  const col = m.column === undefined ? undefined : columns.get(m.column);
  if (m.column !== undefined && !col) {
    problems.add(`${at}/column`, `names an unknown column ${JSON.stringify(m.column)}`);
    return undefined;
  }
  const alias = m.as ?? (col ? `${m.fn}_${col.name}` : m.fn);
  if (m.fn === 'count') return { alias, sql: col ? `count(${col.sql})` : 'count()', type: 'int' };
  if (!col) {
    problems.add(at, `${m.fn} needs a column`);
    return undefined;
  }
  switch (m.fn) {
    case 'count_distinct':
      return { alias, sql: `uniqExact(${col.sql})`, type: 'int' };
    case 'sum':
    case 'avg':
    case 'quantile': {
      if (!numeric.has(col.type)) {
        problems.add(`${at}/column`, `${m.fn} needs a numeric column; ${col.name} is ${col.type}`);
        return undefined;
      }
      if (m.fn === 'sum') return { alias, sql: `sum(${col.sql})`, type: col.type };
      if (m.fn === 'avg') return { alias, sql: `avg(${col.sql})`, type: 'float' };
      const p = m.p;
      if (typeof p !== 'number' || !(p >= 0 && p <= 1)) {
        problems.add(`${at}/p`, 'quantile needs p between 0 and 1');
        return undefined;
      }
      return { alias, sql: `quantile(${p})(${col.sql})`, type: 'float' };
    }
    case 'min':
    case 'max':
      if (!comparable.has(col.type)) {
        problems.add(`${at}/column`, `${m.fn} needs an ordered column; ${col.name} is ${col.type}`);
        return undefined;
      }
      return { alias, sql: `${m.fn}(${col.sql})`, type: col.type };
  }
}

function dateRange(
  range: NonNullable<QueryRequest['date_range']>,
  dataset: QueryableDataset,
  columns: Map<string, VisibleColumn>,
  params: ParamBag,
  problems: QueryProblems,
): string | undefined {
  const name = range.column ?? dataset.timeColumn;
  const col = name ? columns.get(name) : undefined;
  if (!col) {
    problems.add(range.column ? '/date_range/column' : '/date_range', name ? `names an unknown column ${JSON.stringify(name)}` : 'needs a column: the dataset has no time column');
    return undefined;
  }
  const zone = range.timezone ?? 'UTC';
  if (!isTimeZone(zone)) {
    problems.add('/date_range/timezone', 'is not an IANA time zone such as Europe/Berlin or UTC');
    return undefined;
  }
  const bound = (value: string, at: string): string | undefined => {
    if (col.type === 'date') {
      if (isIsoDate(value)) return params.add(value, 'Date32');
      problems.add(at, `${col.name} is a date column: give a date such as 2026-01-08`);
      return undefined;
    }
    if (col.type !== 'timestamp') {
      problems.add('/date_range/column', `needs a timestamp or date column; ${col.name} is ${col.type}`);
      return undefined;
    }
    // A bare date means midnight in the range's zone.
    if (isIsoDate(value)) return `toDateTime64(${params.add(value, 'String')}, 3, ${params.add(zone, 'String')})`;
    const coerced = coerceValue('timestamp', value);
    if ('error' in coerced) {
      problems.add(at, coerced.error);
      return undefined;
    }
    return params.add(coerced.value, clickhouseType('timestamp'));
  };
  const start = bound(range.start, '/date_range/start');
  const end = bound(range.end, '/date_range/end');
  return start && end ? `(${col.sql} >= ${start} AND ${col.sql} < ${end})` : undefined;
}
