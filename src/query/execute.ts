import type { Warehouse } from '../stores/index.js';
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
  options: { signal?: AbortSignal; withTotal?: boolean } = {},
): Promise<QueryPage> {
  const started = performance.now();
  const settings = {
    max_execution_time: limits.maxExecutionSeconds,
    max_memory_usage: String(limits.maxMemoryBytes),
    max_result_rows: String(query.limit + 1),
    result_overflow_mode: 'throw' as const,
  };
  const run = async <T>(sql: string) => {
    const result = await warehouse.client.query({
      query: sql,
      query_params: query.params,
      format: 'JSONEachRow',
      clickhouse_settings: settings as never,
      abort_signal: options.signal,
    });
    return result.json<T>();
  };
  const [rows, total] = await Promise.all([
    run<Record<string, unknown>>(query.sql),
    options.withTotal === false ? undefined : run<{ total: string | number }>(query.countSql),
  ]);
  const types = new Map(query.columns.map((c) => [c.name, c.type]));
  for (const row of rows) {
    for (const [key, value] of Object.entries(row)) row[key] = toApiValue(types.get(key), value);
  }
  const totalRows = total ? Number(total[0]?.total ?? 0) : undefined;
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
