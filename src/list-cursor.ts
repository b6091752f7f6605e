import { ProblemError } from './problem.js';
import type { Queryable } from './stores/index.js';

/** Opaque list cursors: base64url JSON of where the next page starts (the last item's sort key, an offset). */
export function encodeCursor(value: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** The cursor's value, checked to have `keys` (and to pass `valid`); anything else is a 400 naming the cursor. */
export function decodeCursor<T extends Record<string, string | number>>(
  cursor: string | undefined,
  keys: (keyof T)[],
  where: 'query' | 'body' = 'query',
  valid: (value: T) => boolean = () => true,
): T | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as T;
    if (value && typeof value === 'object' && keys.every((k) => ['string', 'number'].includes(typeof value[k])) && valid(value)) return value;
  } catch {
    // reported below
  }
  throw new ProblemError(400, {
    type: 'validation',
    title: 'Request validation failed',
    detail: 'The cursor is not one this list gave out; start again without it.',
    errors: [where === 'query' ? { in: 'query', parameter: 'cursor', detail: 'invalid cursor' } : { in: 'body', pointer: '#/cursor', detail: 'invalid cursor' }],
  });
}

/** A list of rows read in (created_at, id) order: what to select, and the filter with its parameters ($1..$n). */
export interface KeysetList {
  select: string;
  from: string;
  where: string;
  params: unknown[];
  order: 'asc' | 'desc';
  /** The id column; `id` unless said. */
  id?: string;
  /** Checks a cursor's id before it reaches SQL (a uuid column fails on anything else). */
  validId?: (id: string) => boolean;
}

// created_at in microseconds, in one fixed format: a JS Date would drop the microseconds and skip or repeat rows.
const CURSOR_TIME = `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
// Cursors given out before microseconds were kept end at milliseconds; both are accepted.
const TIME_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3})\d{0,3}Z$/;

/** Whether `t` is a real instant after 1970 in the cursor's format (so PostgreSQL won't refuse it). */
function validTime(t: string): boolean {
  const m = TIME_RE.exec(t);
  if (!m) return false;
  const ms = Date.parse(`${m[1]}Z`);
  return ms >= 0 && new Date(ms).toISOString() === `${m[1]}Z`;
}

/**
 * One page of `list` after `cursor`: `limit + 1` rows are read so the page knows whether another
 * follows, and `next_cursor` (null on the last page) holds the last row's (created_at, id).
 */
export async function keysetPage<R extends object>(
  db: Queryable,
  list: KeysetList,
  page: { cursor?: string; limit: number },
): Promise<{ items: R[]; next_cursor: string | null }> {
  const id = list.id ?? 'id';
  const after = decodeCursor<{ c: string; i: string }>(page.cursor, ['c', 'i'], 'query', (v) => typeof v.c === 'string' && validTime(v.c) && typeof v.i === 'string' && (list.validId?.(v.i) ?? true));
  const params = [...list.params];
  const where = [`(${list.where})`];
  if (after) {
    params.push(after.c, after.i);
    where.push(`(created_at, ${id}) ${list.order === 'asc' ? '>' : '<'} ($${params.length - 1}::timestamptz, $${params.length})`);
  }
  params.push(page.limit + 1);
  const dir = list.order === 'asc' ? 'ASC' : 'DESC';
  const { rows } = await db.query<R & { cursor_at: string }>(
    `SELECT ${list.select}, ${CURSOR_TIME} AS cursor_at FROM ${list.from} WHERE ${where.join(' AND ')} ORDER BY created_at ${dir}, ${id} ${dir} LIMIT $${params.length}`,
    params,
  );
  const items = rows.slice(0, page.limit);
  const last = items.at(-1);
  return { items, next_cursor: rows.length > page.limit && last ? encodeCursor({ c: last.cursor_at, i: String((last as Record<string, unknown>)[id]) }) : null };
}
