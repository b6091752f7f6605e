import type { WritableDataset } from '../datasets/service.js';
import { ProblemError } from '../problem.js';
import type { MetadataStore } from '../stores/index.js';
import { BLANK, SLOW, SLOW_DUPLICATE } from './fast-row-check.js';
import type { GroupCommitter } from './group-commit.js';
import { writeQuarantine, type QuarantinedRow } from './quarantine.js';
import type { RawRow } from './row-splitters.js';

export interface IngestError { line: number; column?: string; detail: string }
export const MAX_REPORTED_ERRORS = 20;

const NEWLINE = 0x0a;

/**
 * Full-size row blocks (a chunk and a row) kept for the next request: ingest then allocates
 * no new memory in steady state, and what it holds does not wait for a garbage collection.
 */
export class BlockPool {
  private readonly free: Buffer[] = [];

  constructor(readonly blockBytes: number, private readonly max: number) {}

  /** A block of at least `bytes` (a pooled one when it is big enough). */
  take(bytes: number): Buffer {
    if (bytes <= this.blockBytes && this.free.length) return this.free.pop()!;
    return Buffer.allocUnsafeSlow(Math.max(bytes, 0));
  }

  give(block: Buffer | undefined): void {
    if (block && block.length === this.blockBytes && this.free.length < this.max) this.free.push(block);
  }
}

export const rowTooLong = (max: number, line: number) =>
  new ProblemError(413, { type: 'row-too-large', title: 'Row too large', detail: `Row ${line} is longer than ${max} bytes; no row may be.`, extra: { line } });

/**
 * The rows of one request (or one chunk of a job) on their way in: checked, tagged with the
 * request id, buffered up to `chunkBytes`, then handed to group commit. At most one chunk waits
 * for its commit while the next one fills, so memory stays at about two chunks.
 *
 * Rows are handled as bytes: NDJSON is split on newlines in the body's Buffers, and a row the
 * schema's byte-level check proves valid and canonical is copied as sent into the outgoing
 * JSONEachRow block with its `_request_id` spliced in (no string, no object). Any other row is
 * parsed and validated in full, and normalised, quarantined or re-serialised as before.
 */
export class IngestRun {
  accepted = 0;
  quarantined = 0;
  readonly errors: IngestError[] = [];
  /** The JSONEachRow block being filled: `outLen` bytes of `out`, `outRows` rows. */
  private out: Buffer;
  private outLen = 0;
  private outRows = 0;
  /** The block of the commit before, free for reuse once that commit settled. */
  private spare: Buffer | undefined;
  private quarantine: QuarantinedRow[] = [];
  private inFlight: Promise<void> | undefined;
  /** `"_request_id":"<tag>"}` and a newline: what closes every row. */
  private readonly tail: Buffer;
  /** NDJSON: the start of a line whose end has not arrived yet, and the lines seen so far. */
  private carry: Buffer | undefined;
  private line = 0;

  constructor(
    private readonly dataset: WritableDataset,
    private readonly committer: GroupCommitter,
    private readonly metadata: MetadataStore,
    /** Stored in each row's `_request_id`: the handle to undo this run. */
    readonly tag: string,
    private readonly chunkBytes: number,
    /** NDJSON lines longer than this are a 413. */
    private readonly maxRowBytes = 2 * 1024 * 1024,
    private readonly pool = new BlockPool(chunkBytes + 64 * 1024, 0),
  ) {
    this.tail = Buffer.from(`"_request_id":${JSON.stringify(tag)}}\n`);
    // Small to start (a request of a few rows holds little); it doubles up to a chunk as rows come.
    this.out = Buffer.allocUnsafeSlow(64 * 1024);
  }

  /**
   * A piece of an NDJSON body (any split). Lines are numbered from 1; blank lines are skipped
   * but counted. Call `endNdjson` after the last piece.
   */
  async addNdjson(chunk: Buffer): Promise<void> {
    let s = 0;
    if (this.carry) {
      const nl = chunk.indexOf(NEWLINE);
      if (nl < 0) {
        if (this.carry.length + chunk.length > this.maxRowBytes) throw rowTooLong(this.maxRowBytes, this.line + 1);
        this.carry = Buffer.concat([this.carry, chunk]);
        return;
      }
      const joined = Buffer.concat([this.carry, chunk.subarray(0, nl)]);
      this.carry = undefined;
      this.line++;
      if (joined.length > this.maxRowBytes) throw rowTooLong(this.maxRowBytes, this.line);
      this.row(joined, 0, joined.length, this.line);
      s = nl + 1;
    }
    const max = this.maxRowBytes;
    for (let nl = chunk.indexOf(NEWLINE, s); nl !== -1; nl = chunk.indexOf(NEWLINE, s)) {
      const line = ++this.line;
      if (nl - s > max) throw rowTooLong(max, line);
      this.row(chunk, s, nl, line);
      s = nl + 1;
      // A full block goes at once, so blocks stay within a chunk and a row of the limit.
      if (this.outLen >= this.chunkBytes) await this.commitBuffer();
    }
    if (s < chunk.length) {
      if (chunk.length - s > max) throw rowTooLong(max, this.line + 1);
      // A copy: the rest of the chunk is not kept alive for one partial line.
      this.carry = Buffer.from(chunk.subarray(s));
    }
    if (this.outLen >= this.chunkBytes) await this.commitBuffer();
  }

  /** The last NDJSON line, when the body does not end with a newline. */
  endNdjson(): void {
    const carry = this.carry;
    this.carry = undefined;
    if (carry) this.row(carry, 0, carry.length, ++this.line);
  }

  /** Rows as JSON texts (JSON array elements, or lines split elsewhere). */
  async add(rows: RawRow[]): Promise<void> {
    for (const raw of rows) {
      const bytes = Buffer.from(raw.text);
      this.row(bytes, 0, bytes.length, raw.line, raw.text);
    }
    if (this.outLen >= this.chunkBytes) await this.commitBuffer();
  }

  /** Rows already parsed (CSV), with their text as sent for the quarantine. */
  async addParsed(rows: { line: number; value: Record<string, unknown>; raw: string }[]): Promise<void> {
    for (const r of rows) this.addValue(r.line, r.value, r.raw, true);
    if (this.outLen >= this.chunkBytes) await this.commitBuffer();
  }

  /** One row's bytes, `buf[start, end)`; `text` when the caller has it as a string already. */
  private row(buf: Buffer, start: number, end: number, line: number, text?: string): void {
    const fast = this.dataset.validator.fast;
    const close = fast ? fast.check(buf, start, end) : SLOW;
    if (close >= 0) {
      // Valid and canonical: the bytes up to the closing brace, then the tag.
      let p = close - 1;
      while (buf[p] === 0x20 || buf[p] === 0x09 || buf[p] === 0x0d || buf[p] === 0x0a) p--;
      const empty = buf[p] === 0x7b;
      this.ensure(close - start + this.tail.length + 1);
      const out = this.out;
      let o = this.outLen;
      o += buf.copy(out, o, start, close);
      if (!empty) out[o++] = 0x2c;
      o += this.tail.copy(out, o);
      this.outLen = o;
      this.outRows++;
      return;
    }
    if (close === BLANK) return;
    const rowText = text ?? buf.toString('utf8', start, end);
    if (rowText.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(rowText);
    } catch (err) {
      this.reject(line, rowText, { detail: `malformed JSON: ${(err as Error).message}` });
      return;
    }
    this.addValue(line, value, rowText, close === SLOW_DUPLICATE);
  }

  private addValue(line: number, value: unknown, text: string, mustSerialise = false): void {
    const outcome = this.dataset.validator.validate(value);
    if (!outcome.ok) {
      this.reject(line, text, outcome.error);
      return;
    }
    let json: string;
    if (outcome.row || mustSerialise) json = `${JSON.stringify({ ...(outcome.row ?? (value as object)), _request_id: this.tag })}\n`;
    else {
      // The row as sent, with the tag spliced in before its closing brace.
      const body = text.trimEnd().slice(0, -1).trimEnd();
      json = body.endsWith('{') ? `${body}${this.tail.toString()}` : `${body},${this.tail.toString()}`;
    }
    this.ensure(json.length * 3);
    this.outLen += this.out.write(json, this.outLen);
    this.outRows++;
  }

  /** Room for `bytes` more in the block being filled. */
  private ensure(bytes: number): void {
    if (this.outLen + bytes <= this.out.length) return;
    // Doubling, but never past what one block may hold (a chunk and one row) unless a row needs it.
    const bigger = this.pool.take(Math.max(Math.min(this.out.length * 2, this.pool.blockBytes), this.outLen + bytes));
    this.out.copy(bigger, 0, 0, this.outLen);
    this.pool.give(this.out);
    this.out = bigger;
  }

  private reject(line: number, raw: string, error: { column?: string; detail: string }): void {
    this.quarantined++;
    this.quarantine.push({ line, column: error.column, reason: error.detail, raw });
    if (this.errors.length < MAX_REPORTED_ERRORS) this.errors.push({ line, ...(error.column && { column: error.column }), detail: error.detail });
  }

  private async commitBuffer(): Promise<void> {
    await this.inFlight;
    let block = this.out;
    const data = block.subarray(0, this.outLen);
    const rows = this.outRows;
    const quarantine = this.quarantine;
    // The block goes to group commit as is; the next rows fill the spare (free again: the commit
    // that held it settled above) or a new one.
    this.out = this.spare ?? this.pool.take(Math.min(block.length, this.pool.blockBytes));
    // A block grown for one huge row is not kept for reuse.
    if (block.length > this.pool.blockBytes) block = Buffer.alloc(0);
    this.spare = undefined;
    this.outLen = 0;
    this.outRows = 0;
    this.quarantine = [];
    const work = Promise.all([
      rows ? this.committer.submit(this.dataset.record.id, this.dataset.generation, data, rows) : undefined,
      writeQuarantine(this.metadata, this.dataset.record.id, this.tag, quarantine),
    ]).then(() => {
      this.accepted += rows;
      if (block.length) this.spare = block;
    });
    // Surfaced by the next await of inFlight; never left unhandled meanwhile.
    work.catch(() => {});
    this.inFlight = work;
  }

  /** Commits what is buffered and waits for every commit of this run. */
  async finish(): Promise<void> {
    if (this.carry) this.endNdjson();
    await this.commitBuffer();
    await this.inFlight;
    this.release();
  }

  /** Waits for commits already started and drops what was not handed over yet. */
  async abandon(): Promise<void> {
    this.outLen = 0;
    this.outRows = 0;
    this.carry = undefined;
    this.quarantine = [];
    await this.inFlight?.catch(() => {});
    this.release();
  }

  /** The blocks back to the pool (a block that went to a failed commit never comes back: see `commitBuffer`). */
  private release(): void {
    this.pool.give(this.spare);
    this.pool.give(this.out);
    this.spare = undefined;
    this.out = Buffer.alloc(0);
    this.outLen = 0;
  }

  /** Bytes buffered and not yet handed over. */
  get pendingBytes(): number {
    return this.outLen;
  }
}
