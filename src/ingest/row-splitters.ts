import { StringDecoder } from 'node:string_decoder';
import { ProblemError } from '../problem.js';

/** One row's text and where it was: its 1-based line (NDJSON, CSV) or position (JSON array). */
export interface RawRow { line: number; text: string }

const rowTooLong = (max: number, line: number) =>
  new ProblemError(413, { type: 'row-too-large', title: 'Row too large', detail: `Row ${line} is longer than ${max} bytes; no row may be.`, extra: { line } });

/**
 * NDJSON rows, line by line; blank lines are skipped (but counted). Memory is one chunk plus
 * the longest line, which is capped at `maxRowBytes`.
 */
export async function* ndjsonRows(chunks: AsyncIterable<Buffer>, maxRowBytes: number, firstLine = 1): AsyncGenerator<RawRow[]> {
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let line = firstLine - 1;
  for await (const chunk of chunks) {
    const text = carry + decoder.write(chunk);
    const rows: RawRow[] = [];
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      line++;
      const row = text.slice(start, nl);
      start = nl + 1;
      if (row.length > maxRowBytes) throw rowTooLong(maxRowBytes, line);
      if (row.trim() !== '') rows.push({ line, text: row });
    }
    carry = text.slice(start);
    if (carry.length > maxRowBytes) throw rowTooLong(maxRowBytes, line + 1);
    if (rows.length) yield rows;
  }
  carry += decoder.end();
  if (carry.trim() !== '') yield [{ line: line + 1, text: carry }];
}

const malformedArray = (detail: string) =>
  new ProblemError(400, { type: 'malformed-body', title: 'Malformed request body', detail: `The body is not a JSON array of rows: ${detail}.` });

/**
 * The elements of a top-level JSON array, each as its own text, found by an incremental scan
 * (strings, escapes and nesting depth) so the array is never held whole. Each element is then
 * parsed on its own: a bad element is one bad row, a broken array structure is a 400.
 */
export async function* jsonArrayRows(chunks: AsyncIterable<Buffer>, maxRowBytes: number): AsyncGenerator<RawRow[]> {
  const decoder = new StringDecoder('utf8');
  // before: waiting for '['; between: waiting for an element or ']'; inside: in an element; after: after ']'
  let state = 'before' as 'before' | 'between' | 'inside' | 'after';
  let depth = 0;
  let inString = false;
  let escaped = false;
  let element = '';
  let position = 0;
  const flushText = (text: string, from: number, to: number) => {
    element += text.slice(from, to);
    if (element.length > maxRowBytes) throw rowTooLong(maxRowBytes, position);
  };
  for await (const chunk of chunks) {
    const text = decoder.write(chunk);
    const rows: RawRow[] = [];
    let elementStart = state === 'inside' ? 0 : -1;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (state === 'inside') {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === 92 /* \ */) escaped = true;
          else if (c === 34 /* " */) inString = false;
          continue;
        }
        if (c === 34) inString = true;
        else if (c === 123 || c === 91) depth++;
        else if (c === 125 || c === 93) {
          if (depth === 0) {
            // ']' closing the array right after an element
            if (c !== 93) throw malformedArray(`unexpected "}" at element ${position}`);
            flushText(text, elementStart, i);
            rows.push({ line: position, text: element });
            element = '';
            state = 'after';
            continue;
          }
          depth--;
        } else if (c === 44 /* , */ && depth === 0) {
          flushText(text, elementStart, i);
          rows.push({ line: position, text: element });
          element = '';
          state = 'between';
        }
        continue;
      }
      if (c === 32 || c === 10 || c === 13 || c === 9) continue;
      if (state === 'before') {
        if (c !== 91) throw malformedArray('it does not start with "["');
        state = 'between';
      } else if (state === 'between') {
        if (c === 93 && position === 0) {
          state = 'after';
          continue;
        }
        if (c === 44 || c === 93) throw malformedArray(`missing element ${position + 1}`);
        position++;
        state = 'inside';
        elementStart = i;
        depth = 0;
        i--; // re-read this character inside the element
      } else if ((state as string) === 'after') {
        throw malformedArray('there is more after the closing "]"');
      }
    }
    if (state === 'inside') flushText(text, Math.max(elementStart, 0), text.length);
    if (rows.length) yield rows;
  }
  if (state !== 'after') throw malformedArray(state === 'before' ? 'the body is empty' : 'it ends before the closing "]"');
}
