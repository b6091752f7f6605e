import { isUtf8 } from 'node:buffer';
import type { ColumnDef } from '../datasets/schema.js';

/** `check` answers: the row's bytes need the full validator (JSON.parse, then `RowValidator`). */
export const SLOW = -1;
/** As SLOW, and the object repeats a key: it must be re-serialised (the warehouse refuses duplicates). */
export const SLOW_DUPLICATE = -2;
/** The line holds only whitespace. */
export const BLANK = -3;

/**
 * A byte-level check of one JSON object row against a schema, made once per schema version.
 * It proves the common case without building any object: a flat JSON object whose every value
 * is valid for its column *and already in the form the warehouse stores* (so the row's bytes can
 * be forwarded as sent). It answers the index of the object's closing brace in that case, and
 * SLOW for anything it does not prove (a bad row, an escape in a key, a timestamp with an offset,
 * a missing defaulted column, arrays, maps, json columns...): those rows take the full validator,
 * which gives the same verdict it always did. So it may only ever say "valid" for rows that
 * `compileValidator(columns).validate(JSON.parse(row))` accepts unchanged.
 */
export interface FastRowCheck {
  check(buf: Uint8Array, start: number, end: number): number;
}

const enum Kind { String, Int, Float, Bool, Timestamp, Date, Other }

function kindOf(col: ColumnDef): Kind {
  switch (col.type) {
    case 'string': return Kind.String;
    case 'int': return Kind.Int;
    case 'float': return Kind.Float;
    case 'bool': return Kind.Bool;
    case 'timestamp': return Kind.Timestamp;
    case 'date': return Kind.Date;
    default: return Kind.Other;
  }
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isWs = (c: number) => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** A calendar date in 1900..2299 (the range DateTime64 and Date32 share). */
function dateOk(y: number, m: number, d: number): boolean {
  if (y < 1900 || y > 2299 || m < 1 || m > 12 || d < 1) return false;
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  return d <= (m === 2 && leap ? 29 : DAYS[m - 1]!);
}

const d2 = (b: Uint8Array, i: number) => (b[i]! - 0x30) * 10 + (b[i + 1]! - 0x30);
const allDigits = (b: Uint8Array, i: number, n: number) => {
  for (let k = 0; k < n; k++) if (!isDigit(b[i + k]!)) return false;
  return true;
};

/**
 * `YYYY-MM-DD` at `i`, followed by a closing quote; returns the index after the quote or -1.
 */
function scanDate(b: Uint8Array, i: number, end: number): number {
  if (i + 11 > end || b[i + 4] !== 0x2d || b[i + 7] !== 0x2d || b[i + 10] !== 0x22) return -1;
  if (!allDigits(b, i, 4) || !allDigits(b, i + 5, 2) || !allDigits(b, i + 8, 2)) return -1;
  const y = d2(b, i) * 100 + d2(b, i + 2);
  return dateOk(y, d2(b, i + 5), d2(b, i + 8)) ? i + 11 : -1;
}

/**
 * An ISO 8601 timestamp in UTC the warehouse reads as sent: `YYYY-MM-DD[T ]HH:MM[:SS[.f{1,9}]][Z]`
 * (no zone is UTC), then the closing quote. Offsets are normalised by the full validator.
 */
function scanTimestamp(b: Uint8Array, i: number, end: number): number {
  if (i + 17 > end || b[i + 4] !== 0x2d || b[i + 7] !== 0x2d || (b[i + 10] !== 0x54 && b[i + 10] !== 0x20) || b[i + 13] !== 0x3a) return -1;
  if (!allDigits(b, i, 4) || !allDigits(b, i + 5, 2) || !allDigits(b, i + 8, 2) || !allDigits(b, i + 11, 2) || !allDigits(b, i + 14, 2)) return -1;
  const y = d2(b, i) * 100 + d2(b, i + 2);
  if (!dateOk(y, d2(b, i + 5), d2(b, i + 8)) || d2(b, i + 11) > 23 || d2(b, i + 14) > 59) return -1;
  let j = i + 16;
  if (b[j] === 0x3a) {
    if (j + 3 > end || !allDigits(b, j + 1, 2) || d2(b, j + 1) > 59) return -1;
    j += 3;
    if (b[j] === 0x2e) {
      let n = 0;
      j++;
      while (j < end && isDigit(b[j]!)) {
        j++;
        n++;
      }
      if (n < 1 || n > 9) return -1;
    }
  }
  if (b[j] === 0x5a || b[j] === 0x7a) j++;
  return j < end && b[j] === 0x22 ? j + 1 : -1;
}

/**
 * A JSON number at `i`. Ints: at most 15 digits, no fraction or exponent (so a safe integer).
 * Floats: no exponent, at most 300 characters (so finite). Returns the index after it or -1.
 */
function scanNumber(b: Uint8Array, i: number, end: number, int: boolean): number {
  const from = i;
  if (b[i] === 0x2d) i++;
  if (i >= end) return -1;
  const digitsFrom = i;
  if (b[i] === 0x30) i++;
  else if (b[i]! >= 0x31 && b[i]! <= 0x39) while (i < end && isDigit(b[i]!)) i++;
  else return -1;
  if (int) {
    if (i - digitsFrom > 15 || (i < end && (b[i] === 0x2e || b[i] === 0x65 || b[i] === 0x45))) return -1;
    return i;
  }
  if (i < end && b[i] === 0x2e) {
    i++;
    const f = i;
    while (i < end && isDigit(b[i]!)) i++;
    if (i === f) return -1;
  }
  if (i < end && (b[i] === 0x65 || b[i] === 0x45)) return -1;
  return i - from > 300 ? -1 : i;
}

/** Set by scanString: the string held bytes over 0x7f (its UTF-8 is then checked once per row). */
let stringHadHighBytes = false;

/** A JSON string body from after its opening quote; returns the index after the closing quote or -1. */
function scanString(b: Uint8Array, i: number, end: number): number {
  stringHadHighBytes = false;
  while (i < end) {
    const c = b[i]!;
    if (c === 0x22) return i + 1;
    if (c >= 0x80) {
      stringHadHighBytes = true;
      i++;
      continue;
    }
    if (c === 0x5c) {
      const e = b[i + 1];
      if (e === 0x75) {
        for (let k = 2; k < 6; k++) {
          const h = b[i + k] ?? 0;
          if (!(isDigit(h) || (h >= 0x41 && h <= 0x46) || (h >= 0x61 && h <= 0x66))) return -1;
        }
        i += 6;
        continue;
      }
      if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i += 2;
        continue;
      }
      return -1;
    }
    if (c < 0x20) return -1;
    i++;
  }
  return -1;
}

export function compileFastCheck(columns: ColumnDef[]): FastRowCheck {
  const n = columns.length;
  const names = columns.map((c) => Buffer.from(c.name, 'utf8'));
  const kinds = columns.map(kindOf);
  const nullable = columns.map((c) => c.nullable);
  const maxLength = columns.map((c) => (c.type === 'string' && c.max_length !== undefined ? c.max_length : -1));
  // A column the row leaves out is only fine when the validator would leave it out too.
  const mustAppear = columns.flatMap((c, i) => (!c.nullable || c.default !== undefined ? [i] : []));
  const seen = new Uint32Array(n);
  let serial = 0;
  // The column order of the last row, to match keys at the first try when rows share one order.
  const order = new Int32Array(n + 1).fill(-1);

  const keyIs = (b: Uint8Array, ks: number, len: number, col: number) => {
    const name = names[col]!;
    if (name.length !== len) return false;
    for (let k = 0; k < len; k++) if (b[ks + k] !== name[k]) return false;
    return true;
  };
  const findColumn = (b: Uint8Array, ks: number, len: number, member: number): number => {
    const guess = member < n ? order[member]! : -1;
    if (guess >= 0 && keyIs(b, ks, len, guess)) return guess;
    for (let c = 0; c < n; c++) {
      if (keyIs(b, ks, len, c)) {
        if (member < n) order[member] = c;
        return c;
      }
    }
    return -1;
  };

  return {
    check(b, start, end) {
      let i = start;
      while (i < end && isWs(b[i]!)) i++;
      if (i === end) return BLANK;
      if ((i < end ? b[i]! : -1) !== 0x7b) return SLOW;
      i++;
      serial = (serial + 1) >>> 0 || 1;
      if (serial === 1) seen.fill(0);
      let duplicate = false;
      let high = false;
      let member = 0;
      while (i < end && isWs(b[i]!)) i++;
      let close = -1;
      if ((i < end ? b[i]! : -1) === 0x7d) close = i;
      while (close < 0) {
        // "key"
        if ((i < end ? b[i]! : -1) !== 0x22) return SLOW;
        const ks = i + 1;
        // Most rows repeat the last row's column order: try that column's name in place first
        // (names are plain ASCII identifiers, so the name and a closing quote is the whole key).
        let col = member < n ? order[member]! : -1;
        let ke = -1;
        if (col >= 0) {
          const name = names[col]!;
          ke = ks + name.length;
          if (ke < end && b[ke] === 0x22 && keyIs(b, ks, name.length, col)) member++;
          else col = -1;
        }
        if (col < 0) {
          ke = ks;
          while (ke < end && b[ke] !== 0x22 && b[ke] !== 0x5c && b[ke]! >= 0x20 && b[ke]! < 0x80) ke++;
          if (ke >= end || b[ke] !== 0x22) return SLOW;
          col = findColumn(b, ks, ke - ks, member++);
          if (col < 0) return SLOW;
        }
        if (seen[col] === serial) duplicate = true;
        seen[col] = serial;
        i = ke + 1;
        while (i < end && isWs(b[i]!)) i++;
        if ((i < end ? b[i]! : -1) !== 0x3a) return SLOW;
        i++;
        while (i < end && isWs(b[i]!)) i++;
        if (i >= end) return SLOW;
        const c = b[i]!;
        if (c === 0x6e) {
          // null: only as sent for a nullable column (a default or a refusal needs the validator).
          if (!nullable[col] || b[i + 1] !== 0x75 || b[i + 2] !== 0x6c || b[i + 3] !== 0x6c) return SLOW;
          i += 4;
        } else {
          switch (kinds[col]) {
            case Kind.String: {
              if (c !== 0x22) return SLOW;
              const from = i + 1;
              i = scanString(b, from, end);
              if (i < 0) return SLOW;
              // Bytes (escapes included) bound the characters: within the limit here is within it.
              if (maxLength[col]! >= 0 && i - 1 - from > maxLength[col]!) return SLOW;
              if (stringHadHighBytes) high = true;
              break;
            }
            case Kind.Int:
            case Kind.Float:
              i = scanNumber(b, i, end, kinds[col] === Kind.Int);
              if (i < 0) return SLOW;
              break;
            case Kind.Bool:
              if (c === 0x74 && b[i + 1] === 0x72 && b[i + 2] === 0x75 && b[i + 3] === 0x65) i += 4;
              else if (c === 0x66 && b[i + 1] === 0x61 && b[i + 2] === 0x6c && b[i + 3] === 0x73 && b[i + 4] === 0x65) i += 5;
              else return SLOW;
              break;
            case Kind.Timestamp:
              if (c !== 0x22) return SLOW;
              i = scanTimestamp(b, i + 1, end);
              if (i < 0) return SLOW;
              break;
            case Kind.Date:
              if (c !== 0x22) return SLOW;
              i = scanDate(b, i + 1, end);
              if (i < 0) return SLOW;
              break;
            default:
              return SLOW;
          }
        }
        if (i >= end) return SLOW;
        while (i < end && isWs(b[i]!)) i++;
        if ((i < end ? b[i]! : -1) === 0x2c) {
          i++;
          while (i < end && isWs(b[i]!)) i++;
        } else if ((i < end ? b[i]! : -1) === 0x7d) close = i;
        else return SLOW;
      }
      for (let k = close + 1; k < end; k++) if (!isWs(b[k]!)) return SLOW;
      for (const col of mustAppear) if (seen[col] !== serial) return SLOW;
      if (duplicate) return SLOW_DUPLICATE;
      if (high && !isUtf8(b.subarray(start, end))) return SLOW;
      return close;
    },
  };
}
