import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Logger } from 'pino';
import { newId } from '../datasets/ids.js';
import type { ColumnDef } from '../datasets/schema.js';
import type { DatasetService } from '../datasets/service.js';
import type { IngestError } from '../ingest/ingest-run.js';
import { MAX_REPORTED_ERRORS } from '../ingest/ingest-run.js';
import type { IngestService } from '../ingest/ingest-service.js';
import { writeQuarantine, type QuarantinedRow } from '../ingest/quarantine.js';
import { ndjsonRows } from '../ingest/row-splitters.js';
import type { MetadataStore } from '../stores/index.js';
import { csvRecords, csvRow } from './csv.js';

export type UploadFormat = 'ndjson' | 'csv';

export interface IngestJobRow {
  id: string;
  tenant: string;
  created_by: string;
  dataset_id: string;
  upload_id: string;
  file_path: string;
  format: UploadFormat;
  gzip: boolean;
  state: 'queued' | 'running' | 'succeeded' | 'failed';
  rows_done: string | number;
  rows_quarantined: string | number;
  bytes_done: string | number;
  bytes_total: string | number;
  lines_done: string | number;
  chunks_done: number;
  errors: IngestError[] | string;
  error: string | null;
  created_at: Date | string;
  started_at: Date | string | null;
  finished_at: Date | string | null;
  updated_at: Date | string;
}

export interface IngestJobsOptions {
  /** About this many bytes of rows per chunk (one INSERT, one progress commit). */
  chunkBytes: number;
  /** A running job's claim; renewed at a third of it; an expired one is taken over. */
  leaseMs: number;
  /** How often to look for queued jobs and expired leases. */
  sweepMs: number;
  maxRowBytes?: number;
}

const iso = (v: Date | string | null) => (v === null ? null : new Date(v).toISOString());
const chunkTag = (jobId: string, chunk: number) => `${jobId}#${chunk}`;

/** The job as the API shows it (IngestJob). */
export function presentJob(j: IngestJobRow) {
  return {
    id: j.id,
    dataset_id: j.dataset_id,
    upload_id: j.upload_id,
    state: j.state,
    format: j.format,
    rows_done: Number(j.rows_done),
    rows_quarantined: Number(j.rows_quarantined),
    bytes_done: Number(j.bytes_done),
    bytes_total: Number(j.bytes_total),
    errors: (typeof j.errors === 'string' ? (JSON.parse(j.errors) as IngestError[]) : j.errors).slice(0, MAX_REPORTED_ERRORS),
    created_at: iso(j.created_at)!,
    started_at: iso(j.started_at),
    finished_at: iso(j.finished_at),
    updated_at: iso(j.updated_at)!,
  };
}

/**
 * Ingest jobs for finished uploads: any process may run one under a lease; the file is read from
 * the start each time (gunzipped when asked) and the lines already committed are skipped.
 */
export class IngestJobs {
  private readonly owner = `${hostname()}:${process.pid}:${newId('job').slice(4)}`;
  private readonly running = new Map<string, Promise<void>>();
  private sweeper?: NodeJS.Timeout;
  private closed = false;
  private readonly maxRowBytes: number;

  constructor(
    private readonly metadata: MetadataStore,
    private readonly datasets: DatasetService,
    private readonly ingest: IngestService,
    private readonly logger: Logger,
    private readonly options: IngestJobsOptions,
  ) {
    this.maxRowBytes = options.maxRowBytes ?? 2 * 1024 * 1024;
  }

  /** Resumes jobs left behind (queued, or running under an expired lease) now and then periodically. */
  start(): void {
    void this.sweep();
    this.sweeper = setInterval(() => void this.sweep(), this.options.sweepMs);
    this.sweeper.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    await Promise.allSettled([...this.running.values()]);
  }

  async get(id: string): Promise<IngestJobRow | undefined> {
    return (await this.metadata.query<IngestJobRow>('SELECT * FROM ingest_jobs WHERE id = $1', [id])).rows[0];
  }

  async forUpload(uploadId: string): Promise<IngestJobRow | undefined> {
    return (await this.metadata.query<IngestJobRow>('SELECT * FROM ingest_jobs WHERE upload_id = $1', [uploadId])).rows[0];
  }

  /** Creates the job of a finished upload (once: a second finish returns the first job) and starts it. */
  async create(input: { tenant: string; createdBy: string; datasetId: string; uploadId: string; filePath: string; format: UploadFormat; gzip: boolean; bytesTotal: number }): Promise<string> {
    const id = newId('job');
    await this.metadata.query(
      `INSERT INTO ingest_jobs (id, tenant, created_by, dataset_id, upload_id, file_path, format, gzip, state, bytes_total)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'queued', $9) ON CONFLICT (upload_id) DO NOTHING`,
      [id, input.tenant, input.createdBy, input.datasetId, input.uploadId, input.filePath, input.format, input.gzip, input.bytesTotal],
    );
    const job = (await this.forUpload(input.uploadId))!;
    this.kick(job.id);
    return job.id;
  }

  /** Waits until the job is no longer queued or running in this process (tests). */
  async settled(id: string): Promise<void> {
    await this.running.get(id);
  }

  private async sweep(): Promise<void> {
    if (this.closed) return;
    try {
      const { rows } = await this.metadata.query<{ id: string }>(
        `SELECT id FROM ingest_jobs WHERE state = 'queued' OR (state = 'running' AND (lease_until IS NULL OR lease_until < now())) ORDER BY created_at LIMIT 20`,
      );
      for (const r of rows) this.kick(r.id);
    } catch (err) {
      this.logger.warn({ err }, 'ingest jobs: sweep failed');
    }
  }

  private kick(id: string): void {
    if (this.closed || this.running.has(id)) return;
    const run = this.run(id)
      .catch((err: unknown) => this.logger.error({ err, jobId: id }, 'ingest job: run failed'))
      .finally(() => this.running.delete(id));
    this.running.set(id, run);
  }

  /** Takes the job's lease when it is free: queued, or running under an expired lease. */
  private async claim(id: string): Promise<IngestJobRow | undefined> {
    const { rows } = await this.metadata.query<IngestJobRow>(
      `UPDATE ingest_jobs SET state = 'running', lease_owner = $2, lease_until = now() + ($3 || ' milliseconds')::interval,
         started_at = COALESCE(started_at, now()), updated_at = now()
       WHERE id = $1 AND (state = 'queued' OR (state = 'running' AND (lease_until IS NULL OR lease_until < now()) ) OR (state = 'running' AND lease_owner = $2))
       RETURNING *`,
      [id, this.owner, String(this.options.leaseMs)],
    );
    return rows[0];
  }

  private async run(id: string): Promise<void> {
    const job = await this.claim(id);
    if (!job) return;
    const log = this.logger.child({ jobId: id, datasetId: job.dataset_id });
    let lost = false;
    const renew = setInterval(() => {
      void this.metadata
        .query(`UPDATE ingest_jobs SET lease_until = now() + ($3 || ' milliseconds')::interval WHERE id = $1 AND lease_owner = $2 AND state = 'running'`, [id, this.owner, String(this.options.leaseMs)])
        .then((r) => {
          if (r.rowCount === 0) lost = true;
        })
        .catch(() => {});
    }, Math.max(200, this.options.leaseMs / 3));
    renew.unref();
    const state = {
      chunk: job.chunks_done,
      linesDone: Number(job.lines_done),
      errors: (typeof job.errors === 'string' ? JSON.parse(job.errors) : job.errors) as IngestError[],
    };
    let line = 0; // the last line (record) read
    try {
      const dataset = await this.datasets.writable(job.tenant, job.dataset_id);
      // The chunk that was in flight when an earlier run stopped: whatever of it landed goes.
      await this.ingest.undo(job.dataset_id, chunkTag(id, state.chunk));
      log.info({ resumeAfterLine: state.linesDone, chunk: state.chunk }, 'ingest job: running');
      const file = createReadStream(job.file_path, { highWaterMark: 256 * 1024 });
      let bytesRead = 0;
      file.on('data', (b) => (bytesRead += b.length));
      const decoded: Readable = job.gzip ? file.pipe(createGunzip()) : file;
      if (job.gzip) file.once('error', (err) => decoded.destroy(err));

      let rows: string[] = [];
      let rowBytes = 0;
      let quarantine: QuarantinedRow[] = [];
      let accepted = 0;
      const flush = async (final: boolean) => {
        if (lost) throw new Error('the job lease was lost to another process');
        const tag = chunkTag(id, state.chunk);
        if (rows.length) {
          const n = rows.length;
          await this.ingest.committer.submit(job.dataset_id, dataset.generation, Buffer.from(rows.join('\n') + '\n'), n);
          accepted = n;
        } else accepted = 0;
        for (const q of quarantine) if (state.errors.length < MAX_REPORTED_ERRORS) state.errors.push({ line: q.line, ...(q.column && { column: q.column }), detail: q.reason });
        const q = quarantine;
        const lines = line;
        const bytes = final ? (await stat(job.file_path)).size : bytesRead;
        await this.metadata.transaction(async (tx) => {
          await writeQuarantine(tx, job.dataset_id, tag, q);
          const r = await tx.query(
            `UPDATE ingest_jobs SET lines_done = $3, chunks_done = chunks_done + 1, rows_done = rows_done + $4, rows_quarantined = rows_quarantined + $5,
               bytes_done = GREATEST(bytes_done, $6), errors = $7::jsonb, updated_at = now()
             WHERE id = $1 AND lease_owner = $2 AND chunks_done = $8`,
            [id, this.owner, lines, accepted, q.length, bytes, JSON.stringify(state.errors), state.chunk],
          );
          if (r.rowCount !== 1) throw new Error('the job lease was lost to another process');
        });
        state.chunk++;
        state.linesDone = lines;
        rows = [];
        rowBytes = 0;
        quarantine = [];
      };
      const take = async (lineNo: number, value: unknown, raw: string) => {
        line = lineNo;
        if (lineNo <= state.linesDone) return;
        const outcome = dataset.validator.validate(value);
        if (!outcome.ok) {
          quarantine.push({ line: lineNo, column: outcome.error.column, reason: outcome.error.detail, raw });
        } else {
          const json = JSON.stringify({ ...(outcome.row ?? (value as object)), _request_id: chunkTag(id, state.chunk) });
          rows.push(json);
          rowBytes += json.length + 1;
        }
        if (rowBytes >= this.options.chunkBytes || quarantine.length >= 10_000) await flush(false);
      };

      if (job.format === 'ndjson') {
        for await (const batch of ndjsonRows(decoded as AsyncIterable<Buffer>, this.maxRowBytes)) {
          for (const r of batch) {
            let value: unknown;
            try {
              value = JSON.parse(r.text);
            } catch (err) {
              line = r.line;
              if (r.line > state.linesDone) quarantine.push({ line: r.line, reason: `malformed JSON: ${(err as Error).message}`, raw: r.text });
              continue;
            }
            await take(r.line, value, r.text);
          }
        }
      } else {
        const columns = new Map<string, ColumnDef>(dataset.record.columns.map((c) => [c.name, c]));
        let header: string[] | undefined;
        for await (const batch of csvRecords(decoded as AsyncIterable<Buffer>, this.maxRowBytes)) {
          for (const r of batch) {
            if (!header) {
              header = r.fields.map((f) => f.trim());
              line = r.line;
              continue;
            }
            await take(r.line, csvRow(header, columns, r.fields), r.raw);
          }
        }
      }
      await flush(true);
      await this.metadata.query(
        `UPDATE ingest_jobs SET state = 'succeeded', finished_at = now(), updated_at = now(), lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2`,
        [id, this.owner],
      );
      log.info('ingest job: succeeded');
    } catch (err) {
      if (lost || this.closed) {
        log.warn({ err }, 'ingest job: stopped (it resumes under a new lease)');
        return;
      }
      const detail = err instanceof Error ? err.message : String(err);
      // A 503 from the warehouse or a stale generation is transient: leave the job to be resumed.
      if ((err as { status?: number }).status === 503) {
        await this.metadata.query(`UPDATE ingest_jobs SET lease_until = now(), updated_at = now() WHERE id = $1 AND lease_owner = $2`, [id, this.owner]).catch(() => {});
        log.warn({ err }, 'ingest job: transient failure, will resume');
        return;
      }
      log.error({ err }, 'ingest job: failed');
      await this.ingest.undo(job.dataset_id, chunkTag(id, state.chunk)).catch(() => {});
      const errors = [...state.errors.slice(0, MAX_REPORTED_ERRORS - 1), { line: Math.max(line, 1), detail: `the job stopped: ${detail}` }];
      await this.metadata.query(
        `UPDATE ingest_jobs SET state = 'failed', error = $3, errors = $4::jsonb, finished_at = now(), updated_at = now(), lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2`,
        [id, this.owner, detail, JSON.stringify(errors)],
      );
    } finally {
      clearInterval(renew);
    }
  }
}

