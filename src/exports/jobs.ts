import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { MetadataStore, Warehouse } from '../stores/index.js';
import { exportFileName, writeExportFile, type ExportCompression, type ExportFormat } from './writer.js';

export interface ExportJob {
  id: string;
  tenant: string;
  created_by: string;
  source_type: string;
  source_id: string;
  format: ExportFormat;
  compression: ExportCompression;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'expired';
  rows: number;
  bytes: number;
  error: string | null;
  file_path: string | null;
  created_at: Date;
  completed_at: Date | null;
  expires_at: Date | null;
}

export interface NewExport {
  tenant: string;
  createdBy: string;
  sourceType: 'dataset' | 'website';
  sourceId: string;
  format: ExportFormat;
  compression: ExportCompression;
  /** The compiled export query (every matching row) and its row count. */
  query: { sql: string; countSql: string; params: Record<string, unknown> };
}

export interface ExportJobsOptions {
  metadata: MetadataStore;
  warehouse: Warehouse;
  logger: Logger;
  /** Where export files are written. */
  dir: string;
  /** How long a finished export can be downloaded. */
  ttlMs: number;
  /** Exports run at once in this process. */
  concurrency: number;
  /** A running job's claim; renewed while it runs, so another process takes over if this one dies. */
  leaseMs?: number;
  sweepIntervalMs?: number;
}

const COLUMNS = 'id, tenant, created_by, source_type, source_id, format, compression, status, rows, bytes, error, file_path, created_at, completed_at, expires_at';

/**
 * Asynchronous exports: a job row in PostgreSQL, the file written by ClickHouse under `dir`, and a
 * sweeper that removes expired files. Jobs are claimed with a lease, so a job whose process died
 * is picked up again by any gateway process.
 */
export class ExportJobs {
  readonly #o: Required<ExportJobsOptions>;
  #running = new Map<string, AbortController>();
  #timer?: NodeJS.Timeout;
  #closed = false;
  #pump?: Promise<void>;

  constructor(options: ExportJobsOptions) {
    this.#o = { leaseMs: 60_000, sweepIntervalMs: 60_000, ...options };
  }

  async start(): Promise<void> {
    await mkdir(this.#o.dir, { recursive: true });
    this.#timer = setInterval(() => void this.tick(), this.#o.sweepIntervalMs);
    this.#timer.unref();
    void this.tick();
  }

  async create(input: NewExport): Promise<ExportJob> {
    const id = `exp_${randomBytes(12).toString('base64url').replace(/[-_]/g, '').slice(0, 16).padEnd(16, '0')}`;
    const { rows } = await this.#o.metadata.query<ExportJob>(
      `INSERT INTO export_jobs (id, tenant, created_by, source_type, source_id, format, compression, query_sql, count_sql, query_params, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'queued') RETURNING ${COLUMNS}`,
      [id, input.tenant, input.createdBy, input.sourceType, input.sourceId, input.format, input.compression, input.query.sql, input.query.countSql, JSON.stringify(input.query.params)],
    );
    void this.tick();
    return normalise(rows[0]!);
  }

  async get(id: string): Promise<ExportJob | undefined> {
    const { rows } = await this.#o.metadata.query<ExportJob>(`SELECT ${COLUMNS} FROM export_jobs WHERE id = $1`, [id]);
    return rows[0] && normalise(rows[0]);
  }

  /** Claims and runs what is queued (or abandoned), and expires old files. */
  tick(): Promise<void> {
    this.#pump ??= (async () => {
      try {
        await this.#expire();
        while (!this.#closed && this.#running.size < this.#o.concurrency) {
          const job = await this.#claim();
          if (!job) break;
          void this.#run(job);
        }
      } catch (err) {
        this.#o.logger.error({ err }, 'exports: scheduling failed');
      } finally {
        this.#pump = undefined;
      }
    })();
    return this.#pump;
  }

  /** Stops taking jobs; running ones are aborted and left for the next process to claim. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    for (const abort of this.#running.values()) abort.abort(new Error('shutting down'));
    await this.#pump;
    while (this.#running.size) await new Promise((r) => setTimeout(r, 10));
  }

  async #claim(): Promise<(ExportJob & { query_sql: string; count_sql: string; query_params: unknown }) | undefined> {
    const { rows } = await this.#o.metadata.query<ExportJob & { query_sql: string; count_sql: string; query_params: unknown }>(
      `UPDATE export_jobs SET status = 'running', started_at = now(), lease_until = now() + ($1 || ' milliseconds')::interval
       WHERE id = (SELECT id FROM export_jobs
                   WHERE status = 'queued' OR (status = 'running' AND lease_until < now())
                   ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING ${COLUMNS}, query_sql, count_sql, query_params`,
      [String(this.#o.leaseMs)],
    );
    return rows[0];
  }

  async #run(job: ExportJob & { query_sql: string; count_sql: string; query_params: unknown }): Promise<void> {
    const abort = new AbortController();
    this.#running.set(job.id, abort);
    const path = join(this.#o.dir, exportFileName(job.id, job.format, job.compression));
    const renew = setInterval(() => {
      void this.#o.metadata
        .query(`UPDATE export_jobs SET lease_until = now() + ($2 || ' milliseconds')::interval WHERE id = $1 AND status = 'running'`, [job.id, String(this.#o.leaseMs)])
        .catch(() => {});
    }, this.#o.leaseMs / 3);
    const log = this.#o.logger.child({ exportId: job.id });
    log.info({ format: job.format }, 'export: started');
    try {
      const params = (typeof job.query_params === 'string' ? JSON.parse(job.query_params) : job.query_params) as Record<string, unknown>;
      await rm(path, { force: true });
      const bytes = await writeExportFile(this.#o.warehouse, { sql: job.query_sql, params }, job.format, job.compression, path, abort.signal);
      const counted = await this.#o.warehouse.client.query({ query: job.count_sql, query_params: params, format: 'JSONEachRow', abort_signal: abort.signal });
      const rows = Number(((await counted.json<{ total: string | number }>())[0]?.total ?? 0));
      await this.#o.metadata.query(
        `UPDATE export_jobs SET status = 'succeeded', rows = $2, bytes = $3, file_path = $4, completed_at = now(),
           expires_at = now() + ($5 || ' milliseconds')::interval, lease_until = NULL WHERE id = $1`,
        [job.id, rows, bytes, path, String(this.#o.ttlMs)],
      );
      log.info({ rows, bytes }, 'export: finished');
    } catch (err) {
      await rm(path, { force: true }).catch(() => {});
      if (abort.signal.aborted) {
        // Shutting down: leave it for another process (or the next boot) to run again.
        await this.#o.metadata.query(`UPDATE export_jobs SET status = 'queued', lease_until = NULL WHERE id = $1`, [job.id]).catch(() => {});
      } else {
        log.error({ err }, 'export: failed');
        await this.#o.metadata
          .query(`UPDATE export_jobs SET status = 'failed', error = $2, completed_at = now(), lease_until = NULL WHERE id = $1`, [job.id, describeFailure(err)])
          .catch(() => {});
      }
    } finally {
      clearInterval(renew);
      this.#running.delete(job.id);
      if (!this.#closed) void this.tick();
    }
  }

  async #expire(): Promise<void> {
    const { rows } = await this.#o.metadata.query<{ id: string; file_path: string | null }>(
      `UPDATE export_jobs SET status = 'expired' WHERE status = 'succeeded' AND expires_at < now() RETURNING id, file_path`,
    );
    for (const row of rows) if (row.file_path) await rm(row.file_path, { force: true });
    if (rows.length) this.#o.logger.info({ count: rows.length }, 'exports: expired files removed');
  }
}

/** What a client may be told of a failure: the warehouse's error kind, never its message (it quotes SQL). */
function describeFailure(err: unknown): string {
  const e = err as { code?: string; type?: string };
  if (e?.type === 'MEMORY_LIMIT_EXCEEDED') return 'The export needed more memory than an export may use; narrow it with filters or fewer columns.';
  if (e?.type === 'TIMEOUT_EXCEEDED') return 'The export took longer than an export may take; narrow it with filters or a date range.';
  return `The export failed in the warehouse${e?.type ? ` (${e.type})` : ''}; quote the export id when reporting it.`;
}

function normalise(row: ExportJob): ExportJob {
  return { ...row, rows: Number(row.rows), bytes: Number(row.bytes) };
}
