import type { WritableDataset } from '../datasets/service.js';
import type { MetadataStore } from '../stores/index.js';
import type { GroupCommitter } from './group-commit.js';
import { writeQuarantine, type QuarantinedRow } from './quarantine.js';
import type { RawRow } from './row-splitters.js';

export interface IngestError { line: number; column?: string; detail: string }
export const MAX_REPORTED_ERRORS = 20;

/**
 * The rows of one request (or one chunk of a job) on their way in: checked, tagged with the
 * request id, buffered up to `chunkBytes`, then handed to group commit. At most one chunk waits
 * for its commit while the next one fills, so memory stays at about two chunks.
 */
export class IngestRun {
  accepted = 0;
  quarantined = 0;
  readonly errors: IngestError[] = [];
  private buffer: string[] = [];
  private bufferBytes = 0;
  private bufferRows = 0;
  private quarantine: QuarantinedRow[] = [];
  private inFlight: Promise<void> | undefined;
  private readonly suffix: string;

  constructor(
    private readonly dataset: WritableDataset,
    private readonly committer: GroupCommitter,
    private readonly metadata: MetadataStore,
    /** Stored in each row's `_request_id`: the handle to undo this run. */
    readonly tag: string,
    private readonly chunkBytes: number,
  ) {
    this.suffix = `"_request_id":${JSON.stringify(tag)}}`;
  }

  /** Rows as JSON texts (NDJSON lines, JSON array elements). */
  async add(rows: RawRow[]): Promise<void> {
    for (const raw of rows) {
      let value: unknown;
      try {
        value = JSON.parse(raw.text);
      } catch (err) {
        this.reject(raw.line, raw.text, { detail: `malformed JSON: ${(err as Error).message}` });
        continue;
      }
      this.addValue(raw.line, value, raw.text);
    }
    if (this.bufferBytes >= this.chunkBytes) await this.commitBuffer();
  }

  /** Rows already parsed (CSV), with their text as sent for the quarantine. */
  async addParsed(rows: { line: number; value: Record<string, unknown>; raw: string }[]): Promise<void> {
    for (const r of rows) this.addValue(r.line, r.value, r.raw, true);
    if (this.bufferBytes >= this.chunkBytes) await this.commitBuffer();
  }

  private addValue(line: number, value: unknown, text: string, mustSerialise = false): void {
    const outcome = this.dataset.validator.validate(value);
    if (!outcome.ok) {
      this.reject(line, text, outcome.error);
      return;
    }
    let json: string;
    if (outcome.row || mustSerialise) json = JSON.stringify({ ...(outcome.row ?? (value as object)), _request_id: this.tag });
    else {
      // The fast path: the row as sent, with the tag spliced in before its closing brace.
      const body = text.trimEnd().slice(0, -1).trimEnd();
      json = body.endsWith('{') ? `${body}${this.suffix}` : `${body},${this.suffix}`;
    }
    this.buffer.push(json, '\n');
    this.bufferBytes += json.length + 1;
    this.bufferRows++;
  }

  private reject(line: number, raw: string, error: { column?: string; detail: string }): void {
    this.quarantined++;
    this.quarantine.push({ line, column: error.column, reason: error.detail, raw });
    if (this.errors.length < MAX_REPORTED_ERRORS) this.errors.push({ line, ...(error.column && { column: error.column }), detail: error.detail });
  }

  private async commitBuffer(): Promise<void> {
    await this.inFlight;
    const text = this.buffer.join('');
    const rows = this.bufferRows;
    const quarantine = this.quarantine;
    this.buffer = [];
    this.bufferBytes = 0;
    this.bufferRows = 0;
    this.quarantine = [];
    const work = Promise.all([
      rows ? this.committer.submit(this.dataset.record.id, this.dataset.generation, text, rows) : undefined,
      writeQuarantine(this.metadata, this.dataset.record.id, this.tag, quarantine),
    ]).then(() => {
      this.accepted += rows;
    });
    // Surfaced by the next await of inFlight; never left unhandled meanwhile.
    work.catch(() => {});
    this.inFlight = work;
  }

  /** Commits what is buffered and waits for every commit of this run. */
  async finish(): Promise<void> {
    await this.commitBuffer();
    await this.inFlight;
  }

  /** Waits for commits already started and drops what was not handed over yet. */
  async abandon(): Promise<void> {
    this.buffer = [];
    this.quarantine = [];
    await this.inFlight?.catch(() => {});
  }

  /** Bytes buffered and not yet handed over. */
  get pendingBytes(): number {
    return this.bufferBytes;
  }
}
