import type { ColumnType } from './types.js';

export type Scalar = string | number | boolean;

/**
 * Checks a filter value against a column's type and turns it into the form ClickHouse's typed
 * parameter expects. Returns an error message instead when it doesn't fit.
 */
export function coerceValue(type: ColumnType, value: Scalar): { value: string | number | boolean } | { error: string } {
  switch (type) {
    case 'string':
      return typeof value === 'string' ? { value } : { error: `expects a string, got ${typeof value}` };
    case 'int':
      return typeof value === 'number' && Number.isSafeInteger(value) ? { value } : { error: 'expects an integer' };
    case 'float':
      return typeof value === 'number' && Number.isFinite(value) ? { value } : { error: 'expects a number' };
    case 'bool':
      return typeof value === 'boolean' ? { value } : { error: 'expects true or false' };
    case 'timestamp': {
      const ms = typeof value === 'number' ? value : typeof value === 'string' && isIsoDateTime(value) ? Date.parse(value) : NaN;
      if (!Number.isFinite(ms)) return { error: 'expects an ISO 8601 date-time with a time zone, or epoch milliseconds' };
      return { value: new Date(ms).toISOString().replace('T', ' ').replace('Z', '') };
    }
    case 'date':
      return typeof value === 'string' && isIsoDate(value) ? { value } : { error: 'expects a date such as 2026-01-08' };
    default:
      return { error: `cannot be compared: it is a ${type} column` };
  }
}

export function isIsoDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(s);
}

export function isIsoDateTime(s: string): boolean {
  return /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i.test(s) && !Number.isNaN(Date.parse(s));
}

/** IANA time zone names (aliases such as Asia/Kolkata included): anything else is refused before it reaches SQL. */
export function isTimeZone(s: string): boolean {
  if (!/^[A-Za-z]+(?:[/_-][A-Za-z0-9]+|[+-]\d{1,2})*$/.test(s)) return false;
  try {
    new Intl.DateTimeFormat('en', { timeZone: s });
    return true;
  } catch {
    return false;
  }
}
