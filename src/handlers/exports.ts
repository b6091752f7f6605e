import type { components } from '../../generated/types.js';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Handler } from '../../generated/handlers.js';
import type { AccessControl } from '../authz/index.js';
import { requirePrincipal } from '../datasets/principal.js';
import type { ExportJob, ExportJobs } from '../exports/jobs.js';
import { exportFileName, type ExportCompression, type ExportFormat } from '../exports/writer.js';
import type { Principal } from '../gateway/request-types.js';
import { ProblemError } from '../problem.js';
import { compileQuery } from '../query/compile.js';
import type { QueryRequest } from '../query/types.js';
import { datasetForCaller, type QueryDeps } from './query.js';

export interface ExportDeps extends Pick<QueryDeps, 'datasets' | 'access' | 'warehouse'> {
  exports: ExportJobs;
}

type ExportOps = 'exportDataset' | 'getExport' | 'downloadExport';

const contentTypes = { csv: 'text/csv', ndjson: 'application/x-ndjson', parquet: 'application/vnd.apache.parquet' } as const;

export function presentExport(job: ExportJob): components['schemas']['ExportJob'] {
  const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
  return {
    export_id: job.id,
    dataset_id: job.source_type === 'dataset' ? job.source_id : null,
    ...(job.source_type === 'website' ? { website_id: job.source_id } : {}),
    status: job.status,
    format: job.format,
    compression: job.compression,
    rows: job.rows,
    bytes: job.bytes,
    error: job.error,
    created_at: new Date(job.created_at).toISOString(),
    completed_at: iso(job.completed_at),
    expires_at: iso(job.expires_at),
    download_url: job.status === 'succeeded' ? `/v1/exports/${job.id}/download` : null,
  };
}

/** Only its creator, or an admin of its tenant, may see an export; to anyone else it doesn't exist. */
async function readableExport(deps: ExportDeps, principal: Principal, id: string): Promise<ExportJob> {
  const job = await deps.exports.get(id);
  const mayRead = job && job.tenant === principal.tenant && (job.created_by === principal.subject || deps.access.authorizer.holdsRole(principal, 'admin'));
  if (!job || !mayRead) throw new ProblemError(404, { detail: `There is no export ${id}.` });
  return job;
}

/** One `bytes=` range (the spec's pattern has already been checked) within a file of `size` bytes. */
export function byteRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header) : null;
  if (!m) return undefined;
  const [, from, to] = m;
  if (from === '') {
    const suffix = Number(to);
    if (!suffix || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(from);
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

export function exportsHandlers(deps: ExportDeps): { [K in ExportOps]: Handler<K> } {
  return {
    exportDataset: async ({ req, params, body }) => {
      const principal = requirePrincipal(req);
      const { format, compression = 'none', ...request } = body as QueryRequest & { format: ExportFormat; compression?: ExportCompression };
      if (format === 'parquet' && compression === 'gzip') {
        throw new ProblemError(400, {
          detail: 'Parquet files are compressed internally; export Parquet with compression none.',
          errors: [{ in: 'body', pointer: '#/compression', detail: 'gzip cannot be combined with parquet' }],
        });
      }
      const { record, view, queryable } = await datasetForCaller(deps, principal, params.datasetId);
      const compiled = compileQuery(request as QueryRequest, queryable, view, { export: true });
      const job = await deps.exports.create({
        tenant: principal.tenant,
        createdBy: principal.subject,
        sourceType: 'dataset',
        sourceId: record.id,
        format,
        compression,
        query: { sql: compiled.sql, countSql: compiled.countSql, params: compiled.params },
      });
      return { status: 202, headers: { Location: `/v1/exports/${job.id}` }, body: presentExport(job) };
    },
    getExport: async ({ req, params }) => ({ status: 200, body: presentExport(await readableExport(deps, requirePrincipal(req), params.exportId)) }),
    downloadExport: async ({ req, params, headers }) => {
      const job = await readableExport(deps, requirePrincipal(req), params.exportId);
      const expired = job.status === 'expired' || (job.expires_at !== null && new Date(job.expires_at) <= new Date());
      if (expired) throw new ProblemError(410, { type: 'export-expired', detail: `The file of export ${job.id} has expired and was removed; export again.` });
      if (job.status !== 'succeeded' || !job.file_path) {
        throw new ProblemError(409, { type: 'export-not-ready', detail: `Export ${job.id} is ${job.status}; download it once its status is succeeded.` });
      }
      const size = (await stat(job.file_path)).size;
      const contentType = job.compression === 'gzip' ? 'application/gzip' : contentTypes[job.format];
      const common = {
        'Accept-Ranges': 'bytes',
        ETag: `"${job.id}"`,
        'Content-Disposition': `attachment; filename="${job.source_id}-${exportFileName(job.id, job.format, job.compression)}"`,
        // The bytes must reach the client as they are on disk, or ranges would not line up.
        'Cache-Control': 'private, no-transform',
      };
      const range = byteRange(typeof headers.range === 'string' ? headers.range : undefined, size);
      if (range === 'unsatisfiable') {
        throw new ProblemError(416, { detail: `The file has ${size} bytes; ask for a range inside it.`, headers: { 'Content-Range': `bytes */${size}` } });
      }
      if (!range) {
        return { status: 200, contentType, headers: { ...common, 'Content-Length': String(size) }, body: createReadStream(job.file_path) };
      }
      return {
        status: 206,
        contentType,
        headers: { ...common, 'Content-Range': `bytes ${range.start}-${range.end}/${size}`, 'Content-Length': String(range.end - range.start + 1) },
        body: createReadStream(job.file_path, { start: range.start, end: range.end }),
      };
    },
  };
}
