import { ProblemError } from './problem.js';

/** Opaque list cursors: base64url JSON of where the next page starts (the last item's sort key, an offset). */
export function encodeCursor(value: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T extends Record<string, string | number>>(cursor: string | undefined, keys: (keyof T)[], where: 'query' | 'body' = 'query'): T | undefined {
  if (cursor === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as T;
    if (value && typeof value === 'object' && keys.every((k) => ['string', 'number'].includes(typeof value[k]))) return value;
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
