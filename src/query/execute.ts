import type { Logger } from 'pino';
import type { Warehouse } from '../stores/index.js';
import { cancellable } from './cancel.js';
import { encodeCursor } from './cursor.js';
import type { CompiledQuery } from './types.js';

export interface QueryLimits {
  maxExecutionSeconds: number;
  maxMemoryBytes: number;
}

export interface QueryPage {
  rows: Record<string, unknown>[];
  columns: CompiledQuery['columns'];
  total_rows?: number;
  next_cursor: string | null;
  query_time_ms: number;
  sampled: boolean;
}

/**
 * Runs a compiled query with the warehouse's own limits (time, memory, result rows) and stops it
 * when `signal` aborts (the client went away). Values come back as the API's types.
 */
export async function runQuery(
  warehouse: Warehouse,
  query: CompiledQuery,
  limits: QueryLimits,
  options: { signal?: AbortSignal; withTotal?: boolean; logger?: Logger } = {},
): Promise<QueryPage> {
  const started = performance.now();
  return cancellable(
    warehouse,
    options.signal,
    (tag) => {
      const settings = {
        max_execution_time: limits.maxExecutionSeconds,
        max_memory_usage: String(limits.maxMemoryBytes),
        max_result_rows: String(query.limit + 1),
        result_overflow_mode: 'throw' as const,
        // Finds the query in system.processes, to stop it when the caller goes away.
        ...tag,
      };
      return page(warehouse, query, settings, options.signal, options.withTotal, started);
    },
    options.logger,
  );
}

async function page(
  warehouse: Warehouse,
  query: CompiledQuery,
  settings: Record<string, unknown>,
  signal: AbortSignal | undefined,
  withTotal: boolean | undefined,
  started: number,
): Promise<QueryPage> {
  const run = async <T>(sql: string) => {
    const result = await warehouse.client.query({
      query: sql,
      query_params: query.params,
      format: 'JSONEachRow',
      clickhouse_settings: settings as never,
      abort_signal: signal,
    });
    return result.json<T>();
  };
  const rows = await run<Record<string, unknown>>(query.sql);
  // A page that isn't full (and isn't past the end) is the rest of the result: its total is known
  // without counting. Only a full page, or one past the end, needs the count query (a second pass
  // over the data, which would otherwise double the cost of a typical grouped query).
  let totalRows: number | undefined;
  if (withTotal !== false) {
    if (rows.length < query.limit && (rows.length > 0 || query.offset === 0)) totalRows = query.offset + rows.length;
    else totalRows = Number((await run<{ total: string | number }>(query.countSql))[0]?.total ?? 0);
  }
  const types = new Map(query.columns.map((c) => [c.name, c.type]));
  for (const row of rows) {
    for (const [key, value] of Object.entries(row)) row[key] = toApiValue(types.get(key), value);
  }
  const more = totalRows !== undefined ? query.offset + rows.length < totalRows : rows.length === query.limit;
  return {
    rows,
    columns: query.columns,
    total_rows: totalRows,
    next_cursor: more ? encodeCursor(query.offset + rows.length, query.fingerprint) : null,
    query_time_ms: Math.round((performance.now() - started) * 10) / 10,
    sampled: false,
  };
}

/** ClickHouse JSON quirks to API values: 64-bit integers as numbers when safe, UTC timestamps in RFC 3339. */
export function toApiValue(type: string | undefined, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (type === 'int' && typeof value === 'string') {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : value;
  }
  if (type === 'timestamp' && typeof value === 'string' && /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$/.test(value)) {
    return `${value.replace(' ', 'T')}Z`;
  }
  return value;
}
