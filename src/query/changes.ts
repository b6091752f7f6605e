import type { Warehouse } from '../stores/index.js';
import { ProblemError } from '../problem.js';
import { cancellable } from './cancel.js';
import { quoteIdent, visibleColumns } from './columns.js';
import { toApiValue, type QueryLimits } from './execute.js';
import { ParamBag } from './params.js';
import type { AccessView, QueryableDataset } from './types.js';

/**
 * The change feed: rows in `_ingested_at` order. A cursor is the ingest time of the last row sent
 * and how many rows of that same millisecond were sent. Rows younger than `settleMs` are held
 * back: `_ingested_at` is stamped when an INSERT starts, so a slow INSERT can commit rows older
 * than ones already committed by a faster one, and a cursor past them would skip them.
 */
interface ChangeCursor {
  t: string;
  n: number;
}

const PREFIX = 'chg_';
const TIME = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$/;
const START: ChangeCursor = { t: '1970-01-01 00:00:00.000', n: 0 };

export function encodeChangeCursor(c: ChangeCursor): string {
  return PREFIX + Buffer.from(JSON.stringify(c)).toString('base64url');
}

export function decodeChangeCursor(text: string): ChangeCursor {
  try {
    if (!text.startsWith(PREFIX)) throw new Error('prefix');
    const c = JSON.parse(Buffer.from(text.slice(PREFIX.length), 'base64url').toString('utf8')) as Partial<ChangeCursor>;
    if (typeof c.t === 'string' && TIME.test(c.t) && Number.isSafeInteger(c.n) && c.n! >= 0) return { t: c.t, n: c.n! };
  } catch {
    // reported below
  }
  throw new ProblemError(400, {
    type: 'invalid-cursor',
    title: 'Invalid cursor',
    detail: 'since is not a change-feed cursor; pass a next_cursor this operation returned, or leave since out to start over.',
    errors: [{ in: 'query', parameter: 'since', detail: 'is not a change-feed cursor' }],
  });
}

export interface ChangesPage {
  rows: Record<string, unknown>[];
  next_cursor: string;
  has_more: boolean;
}

export async function fetchChanges(
  warehouse: Warehouse,
  dataset: QueryableDataset,
  view: AccessView,
  options: { since?: string; limit: number; settleMs: number; limits: QueryLimits; signal?: AbortSignal },
): Promise<ChangesPage> {
  const since = options.since === undefined ? START : decodeChangeCursor(options.since);
  const params = new ParamBag();
  const columns = [...visibleColumns(dataset, view, params).values()];
  const select = [...columns.map((c) => `${c.sql} AS ${quoteIdent(c.name)}`), 'toString(`_ingested_at`) AS `__weir_t`'].join(', ');
  // Rows of one millisecond in an order that doesn't change between pages (identical rows are interchangeable).
  const tieBreak = dataset.columns.length ? `, cityHash64(toString(tuple(${dataset.columns.map((c) => quoteIdent(c.name)).join(', ')})))` : '';
  const where = [
    `\`_ingested_at\` >= ${params.add(since.t, "DateTime64(3, 'UTC')")}`,
    `\`_ingested_at\` <= now64(3) - toIntervalMillisecond(${params.add(options.settleMs, 'UInt32')})`,
    ...(view.rowFilter ? [`(${view.rowFilter.sql})`] : []),
  ];
  const sql = `SELECT ${select} FROM ${dataset.table} WHERE ${where.join(' AND ')} ORDER BY \`_ingested_at\`, \`_request_id\`${tieBreak} LIMIT ${options.limit + 1} OFFSET ${since.n}`;
  const fetched = await cancellable(warehouse, options.signal, async (tag) => {
    const result = await warehouse.client.query({
      query: sql,
      query_params: { ...params.values, ...(view.rowFilter?.params ?? {}) },
      format: 'JSONEachRow',
      clickhouse_settings: { max_execution_time: options.limits.maxExecutionSeconds, max_memory_usage: String(options.limits.maxMemoryBytes), ...tag } as never,
      abort_signal: options.signal,
    });
    return result.json<Record<string, unknown>>();
  });
  const page = fetched.slice(0, options.limit);
  const times = page.map((r) => String(r.__weir_t));
  const types = new Map(columns.map((c) => [c.name, c.type]));
  const rows = page.map((r) => {
    delete r.__weir_t;
    for (const [key, value] of Object.entries(r)) r[key] = toApiValue(types.get(key), value);
    return r;
  });
  return { rows, next_cursor: encodeChangeCursor(nextCursor(since, times)), has_more: fetched.length > options.limit };
}

function nextCursor(since: ChangeCursor, times: string[]): ChangeCursor {
  if (!times.length) return since;
  const last = times[times.length - 1]!;
  const sameAsLast = times.length - times.findLastIndex((t) => t !== last) - 1;
  return { t: last, n: last === since.t ? since.n + times.length : sameAsLast };
}
