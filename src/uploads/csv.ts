import { StringDecoder } from 'node:string_decoder';
import type { ColumnDef } from '../datasets/schema.js';

/** One CSV record: its 1-based record number (the header is record 1), its fields and its text. */
export interface CsvRecord { line: number; fields: string[]; raw: string }

/**
 * A small streaming RFC 4180 reader: comma-separated, `"` quoting with `""` escapes, quoted fields
 * may hold commas and newlines; LF or CRLF record ends; blank records are skipped (but counted).
 * Memory is one input chunk plus the longest record (capped at `maxRecordBytes`).
 */
export async function* csvRecords(chunks: AsyncIterable<Buffer>, maxRecordBytes: number): AsyncGenerator<CsvRecord[]> {
  const decoder = new StringDecoder('utf8');
  let fields: string[] = [];
  let field = '';
  let raw = '';
  let inQuotes = false;
  let quoteSeen = false; // a '"' inside quotes: either an escape or the closing quote
  let line = 0;
  let batch: CsvRecord[] = [];
  const endRecord = () => {
    fields.push(field);
    line++;
    const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!(fields.length === 1 && fields[0]!.replace(/\r$/, '') === '')) {
      const last = fields.length - 1;
      if (!quoteSeenLast && fields[last]!.endsWith('\r')) fields[last] = fields[last]!.slice(0, -1);
      batch.push({ line, fields, raw: text });
    }
    fields = [];
    field = '';
    raw = '';
  };
  let quoteSeenLast = false;
  const consume = (text: string) => {
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      raw += c;
      if (inQuotes) {
        if (quoteSeen) {
          quoteSeen = false;
          if (c === '"') {
            field += '"';
            continue;
          }
          inQuotes = false;
          quoteSeenLast = true;
          // fall through: c is the character after a closing quote
        } else if (c === '"') {
          quoteSeen = true;
          continue;
        } else {
          field += c;
          continue;
        }
      }
      if (c === ',') {
        fields.push(field);
        field = '';
        quoteSeenLast = false;
      } else if (c === '\n') {
        raw = raw.slice(0, -1);
        endRecord();
        quoteSeenLast = false;
      } else if (c === '"' && field === '') {
        inQuotes = true;
      } else if (c === '\r' && quoteSeenLast) {
        // CR of a CRLF after a quoted field
      } else {
        field += c;
      }
      if (raw.length > maxRecordBytes) throw new Error(`record ${line + 1} is longer than ${maxRecordBytes} bytes`);
    }
  };
  for await (const chunk of chunks) {
    consume(decoder.write(chunk));
    if (batch.length) {
      yield batch;
      batch = [];
    }
  }
  consume(decoder.end());
  if (quoteSeen) {
    inQuotes = false;
    quoteSeen = false;
    quoteSeenLast = true;
  }
  if (inQuotes) throw new Error(`record ${line + 1} has an unterminated quoted field`);
  if (field !== '' || fields.length) endRecord();
  if (batch.length) yield batch;
}

/**
 * A CSV record as a row: each field converted to its column's type (empty fields are left out, so
 * defaults and nulls apply); what does not convert stays a string for the validator to refuse.
 */
export function csvRow(header: string[], columns: Map<string, ColumnDef>, fields: string[]): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (let i = 0; i < header.length; i++) {
    const name = header[i]!;
    const v = fields[i];
    if (v === undefined || v === '') continue;
    row[name] = convert(columns.get(name), v);
  }
  if (fields.length > header.length) row[`_extra_fields`] = fields.slice(header.length);
  return row;
}

function convert(col: ColumnDef | undefined, v: string): unknown {
  switch (col?.type) {
    case 'int':
      return /^-?\d+$/.test(v) ? Number(v) : v;
    case 'float': {
      const n = Number(v);
      return v.trim() !== '' && Number.isFinite(n) ? n : v;
    }
    case 'bool':
      return v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v;
    case 'json':
    case 'map':
    case 'array':
      try {
        return JSON.parse(v) as unknown;
      } catch {
        return v;
      }
    default:
      return v;
  }
}
