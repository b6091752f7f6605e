import { compileFastCheck, type FastRowCheck } from './fast-row-check.js';
import { typeLabel, type ColumnDef, type ScalarType } from '../datasets/schema.js';

/** Why a row was refused, and which column (if one) was at fault. */
export interface RowError { column?: string; detail: string }

/**
 * The outcome for one row: `row` is undefined when the row as sent can go to the warehouse
 * unchanged (the fast path), else the normalised row to serialise instead.
 */
export type RowOutcome = { ok: true; row?: Record<string, unknown> } | { ok: false; error: RowError };

type Check = (v: unknown) => { ok: true; value?: unknown } | { ok: false; detail: string };

// ISO 8601 / RFC 3339 date-times; without a zone they are read as UTC.
const TIMESTAMP_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|z|[+-]\d{2}:?\d{2})?$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
// DateTime64 and Date32 cover 1900-01-01 to 2299-12-31.
const MIN_MS = Date.UTC(1900, 0, 1);
const MAX_MS = Date.UTC(2300, 0, 1) - 1;

const got = (v: unknown): string => {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'object') return 'object';
  return `${typeof v} ${String(v)}`;
};
const fail = (expected: string, v: unknown) => ({ ok: false as const, detail: `expected ${expected}, got ${got(v)}` });
const OK = { ok: true as const };

function validDate(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  return d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
}

function scalarCheck(type: ScalarType, maxLength?: number): Check {
  switch (type) {
    case 'string':
      return (v) => {
        if (typeof v !== 'string') return fail('string', v);
        // length counts UTF-16 units; only count code points when that could matter.
        if (maxLength !== undefined && v.length > maxLength && [...v].length > maxLength) {
          return { ok: false, detail: `string longer than max_length ${maxLength}` };
        }
        return OK;
      };
    case 'int':
      return (v) => (typeof v === 'number' && Number.isSafeInteger(v) ? OK : fail('int (a whole number within ±2^53)', v));
    case 'float':
      return (v) => (typeof v === 'number' && Number.isFinite(v) ? OK : fail('float', v));
    case 'bool':
      return (v) => (typeof v === 'boolean' ? OK : fail('bool', v));
    case 'json':
      // Stored as its JSON text.
      return (v) => ({ ok: true, value: JSON.stringify(v) });
    case 'date':
      return (v) => {
        const m = typeof v === 'string' ? DATE_RE.exec(v) : null;
        if (!m || !validDate(+m[1]!, +m[2]!, +m[3]!)) return fail('date (YYYY-MM-DD)', v);
        const y = +m[1]!;
        return y >= 1900 && y <= 2299 ? OK : { ok: false, detail: 'date outside 1900-01-01..2299-12-31' };
      };
    case 'timestamp':
      return (v) => {
        if (typeof v === 'number') {
          // Epoch milliseconds: normalised to an ISO string so every backend reads the same instant.
          if (!Number.isFinite(v) || v < MIN_MS || v > MAX_MS) return fail('timestamp (epoch ms between 1900 and 2299)', v);
          return { ok: true, value: new Date(Math.trunc(v)).toISOString() };
        }
        const m = typeof v === 'string' ? TIMESTAMP_RE.exec(v) : null;
        if (!m || !validDate(+m[1]!, +m[2]!, +m[3]!) || +m[4]! > 23 || +m[5]! > 59 || +(m[6] ?? 0) > 59) {
          return fail('timestamp (ISO 8601 or epoch ms)', v);
        }
        const ms = Date.parse(m[8] ? v as string : `${(v as string).replace(' ', 'T')}Z`);
        if (!Number.isFinite(ms) || ms < MIN_MS || ms > MAX_MS) return { ok: false, detail: 'timestamp outside 1900..2299' };
        // A zone other than UTC is normalised here; a UTC one goes through as sent.
        if (m[8] && m[8] !== 'Z' && m[8] !== 'z') return { ok: true, value: new Date(ms).toISOString() };
        return OK;
      };
  }
}

function columnCheck(col: ColumnDef): Check {
  if (col.type === 'array') {
    const item = scalarCheck(col.items ?? 'string');
    return (v) => {
      if (!Array.isArray(v)) return fail(typeLabel(col), v);
      let copy: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        const r = item(v[i]);
        if (!r.ok) return { ok: false, detail: `item ${i}: ${r.detail}` };
        if (r.value !== undefined) (copy ??= [...v])[i] = r.value;
      }
      return copy ? { ok: true, value: copy } : OK;
    };
  }
  if (col.type === 'map') {
    const item = scalarCheck(col.values ?? 'string');
    return (v) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(typeLabel(col), v);
      let copy: Record<string, unknown> | undefined;
      for (const [k, x] of Object.entries(v)) {
        const r = item(x);
        if (!r.ok) return { ok: false, detail: `key ${JSON.stringify(k)}: ${r.detail}` };
        if (r.value !== undefined) (copy ??= { ...(v as Record<string, unknown>) })[k] = r.value;
      }
      return copy ? { ok: true, value: copy } : OK;
    };
  }
  return scalarCheck(col.type, col.max_length);
}

export interface RowValidator {
  validate(row: unknown): RowOutcome;
  /** The byte-level check for rows that can go as sent (see fast-row-check.ts); made with the validator. */
  readonly fast?: FastRowCheck;
}

/** Compiles a schema into a row check; one per schema version, reused for every row. */
export function compileValidator(columns: ColumnDef[]): RowValidator {
  const checks = new Map(columns.map((c) => [c.name, { col: c, check: columnCheck(c), fill: storedDefault(c) }]));
  const required = columns.filter((c) => !c.nullable);
  const withDefault = columns.filter((c) => c.default !== undefined).map((c) => ({ name: c.name, fill: storedDefault(c) }));
  return {
    fast: compileFastCheck(columns),
    validate(row) {
      if (typeof row !== 'object' || row === null || Array.isArray(row)) return { ok: false, error: { detail: `expected a JSON object, got ${got(row)}` } };
      const obj = row as Record<string, unknown>;
      let out: Record<string, unknown> | undefined;
      for (const key in obj) {
        const entry = checks.get(key);
        if (!entry) return { ok: false, error: { column: /^[a-z_][a-z0-9_]{0,62}$/.test(key) ? key : undefined, detail: `unknown column ${JSON.stringify(key.slice(0, 64))}` } };
        const v = obj[key];
        if (v === null) {
          if (entry.col.nullable) continue;
          if (entry.col.default !== undefined) {
            (out ??= { ...obj })[key] = entry.fill;
            continue;
          }
          return { ok: false, error: { column: key, detail: 'null for non-nullable column' } };
        }
        const r = entry.check(v);
        if (!r.ok) return { ok: false, error: { column: key, detail: r.detail } };
        if (r.value !== undefined) (out ??= { ...obj })[key] = r.value;
      }
      for (const col of required) {
        if (obj[col.name] === undefined && col.default === undefined) {
          return { ok: false, error: { column: col.name, detail: 'missing value for non-nullable column' } };
        }
      }
      for (const col of withDefault) {
        if (obj[col.name] === undefined) (out ??= { ...obj })[col.name] = col.fill;
      }
      return out ? { ok: true, row: out } : OK;
    },
  };
}

/** The default as the warehouse stores it (normalised like a sent value). */
function storedDefault(col: ColumnDef): unknown {
  if (col.default === undefined || col.default === null) return col.default;
  const r = columnCheck(col)(col.default);
  return r.ok && r.value !== undefined ? r.value : col.default;
}

/** Checks a column's `default` against its own type (at dataset create/update). */
export function checkDefault(col: ColumnDef): string | undefined {
  if (col.default === undefined) return undefined;
  if (col.default === null) return col.nullable ? undefined : 'a non-nullable column cannot default to null';
  const r = columnCheck(col)(col.default);
  return r.ok ? undefined : r.detail;
}
