import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FileStore } from '@tus/file-store';
import { MemoryLocker, Server, type Locker, type Upload } from '@tus/server';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { newId } from '../datasets/ids.js';
import type { DatasetService } from '../datasets/service.js';
import type { Principal } from '../gateway/request-types.js';
import { ProblemError } from '../problem.js';
import { answerProblemsAsJson, markProblem, tusErrorAsProblem } from './tus-problems.js';
import type { MetadataStore } from '../stores/index.js';
import { IngestJobs, type UploadFormat } from './jobs.js';

export interface UploadOptions {
  dir: string;
  maxSize: number;
  expiryMs: number;
  /** Serialises requests for one upload: see createUploadLocker (in-process or through Redis). */
  locker?: Locker;
}

export interface UploadRecord {
  id: string;
  tenant: string;
  created_by: string;
  dataset_id: string;
  format: UploadFormat;
  gzip: boolean;
}

/** What `Upload-Metadata` says, once checked. */
export interface UploadRequest { datasetId: string; format: UploadFormat; gzip: boolean }

const TUS_HEADERS = { 'Tus-Resumable': '1.0.0' };
const badMetadata = (detail: string) => new ProblemError(400, { type: 'invalid-upload-metadata', title: 'Invalid upload metadata', detail, headers: TUS_HEADERS });

/** Parses tus `Upload-Metadata` (`key base64value` pairs, comma-separated) for an upload into a dataset. */
export function parseUploadMetadata(header: string | undefined): UploadRequest {
  if (!header) throw badMetadata('Upload-Metadata is required: dataset_id and format (ndjson or csv), and gzip if the file is gzip-compressed.');
  const meta: Record<string, string | null> = {};
  for (const pair of header.split(',')) {
    const [key, value, ...rest] = pair.trim().split(' ');
    if (!key || rest.length) throw badMetadata('Upload-Metadata must be comma-separated "key base64value" pairs.');
    meta[key] = value === undefined ? null : Buffer.from(value, 'base64').toString('utf8');
  }
  const datasetId = meta.dataset_id;
  if (!datasetId || !/^ds_[0-9A-Za-z]{8,40}$/.test(datasetId)) throw badMetadata('Upload-Metadata needs dataset_id, the id of the dataset to ingest into (ds_...).');
  const format = meta.format;
  if (format !== 'ndjson' && format !== 'csv') throw badMetadata(`Upload-Metadata format must be ndjson or csv${format ? `, not ${JSON.stringify(format.slice(0, 40))}` : ''}.`);
  const gz = meta.gzip;
  if (gz !== undefined && gz !== null && gz !== '' && gz !== 'true' && gz !== 'false') throw badMetadata('Upload-Metadata gzip is a key without a value, or true or false.');
  return { datasetId, format, gzip: gz === null || gz === '' || gz === 'true' };
}

type NodeBound = { runtime?: { node?: { req: IncomingMessage } } };
const nodeReq = (req: unknown) => (req as NodeBound).runtime?.node?.req as (Request & { weirUpload?: UploadRequest }) | undefined;

/**
 * Resumable uploads: the tus server (creation, creation-with-upload, termination, expiration) over
 * files in `dir`, behind the gateway's plugin chain. Who may touch an upload is in PostgreSQL
 * (`uploads`); a finished upload becomes an ingest job.
 *
 * Locking: requests for one upload are serialised by the locker given (createUploadLocker: through
 * Redis when configured, so a resumed PATCH may land on any gateway process sharing the upload
 * directory; in-process otherwise).
 */
export class UploadService {
  readonly tus: Server;
  private readonly store: FileStore;
  private expirySweeper?: NodeJS.Timeout;

  constructor(
    private readonly metadata: MetadataStore,
    private readonly datasets: DatasetService,
    readonly jobs: IngestJobs,
    private readonly logger: Logger,
    private readonly options: UploadOptions,
  ) {
    this.store = new FileStore({ directory: options.dir, expirationPeriodInMilliseconds: options.expiryMs });
    this.tus = new Server({
      path: '/v1/uploads',
      datastore: this.store,
      locker: options.locker ?? new MemoryLocker(),
      maxSize: options.maxSize,
      relativeLocation: true,
      exposedHeaders: ['Weir-Ingest-Job-Id', 'X-Request-Id'],
      disableTerminationForFinishedUploads: true,
      namingFunction: () => newId('up'),
      onUploadCreate: async (req, upload) => {
        const node = nodeReq(req);
        const principal = node?.principal;
        const wanted = node?.weirUpload;
        // The handler checked both before handing the request over; this is the backstop.
        if (!principal || !wanted) throw { status_code: 400, body: 'Upload-Metadata not checked\n' };
        await this.metadata.query(
          'INSERT INTO uploads (id, tenant, created_by, dataset_id, format, gzip) VALUES ($1, $2, $3, $4, $5, $6)',
          [upload.id, principal.tenant, principal.subject, wanted.datasetId, wanted.format, wanted.gzip],
        );
        return {};
      },
      onUploadFinish: async (_req, upload) => {
        const jobId = await this.finish(upload);
        return { headers: { 'Weir-Ingest-Job-Id': jobId } };
      },
      onResponseError: (req, err) => {
        if (!('status_code' in err)) this.logger.error({ err }, 'uploads: tus request failed');
        const node = nodeReq(req);
        markProblem(node?.res);
        const tusError = 'status_code' in err ? err : { status_code: 500, body: '' };
        return tusErrorAsProblem(tusError, node?.id ? `urn:weir:request:${node.id}` : undefined);
      },
    });
  }

  start(): void {
    this.jobs.start();
    // Expired, unfinished uploads are removed hourly (the tus expiration extension).
    this.expirySweeper = setInterval(() => void this.store.deleteExpired().catch((err: unknown) => this.logger.warn({ err }, 'uploads: expiry sweep failed')), 3600_000);
    this.expirySweeper.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.expirySweeper);
    await this.jobs.close();
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    return (await this.metadata.query<UploadRecord>('SELECT * FROM uploads WHERE id = $1', [id])).rows[0];
  }

  /** createUpload: the caller may write the dataset (404 otherwise) and the metadata is sound (400), before tus sees the request. */
  async create(req: Request, res: Response, principal: Principal): Promise<void> {
    const header = req.headers['upload-metadata'];
    const wanted = parseUploadMetadata(typeof header === 'string' ? header : undefined);
    try {
      await this.datasets.writable(principal.tenant, wanted.datasetId);
    } catch (err) {
      if (err instanceof ProblemError) throw new ProblemError(err.status, { type: err.type.replace(/^.*\/problems\//, ''), title: err.title, detail: err.detail, extra: err.extra, headers: { ...err.headers, ...TUS_HEADERS } });
      throw err;
    }
    (req as Request & { weirUpload?: UploadRequest }).weirUpload = wanted;
    answerProblemsAsJson(res);
    await this.tus.handle(req, res as unknown as ServerResponse);
  }

  /** The other tus requests, for an upload the caller's tenant owns (404 otherwise, as for any resource). */
  async forward(req: Request, res: Response, principal: Principal | undefined, uploadId?: string): Promise<void> {
    if (uploadId !== undefined) {
      const upload = await this.get(uploadId);
      if (!upload || !principal || upload.tenant !== principal.tenant) {
        if (req.method === 'HEAD') {
          res.status(404).set(TUS_HEADERS).set('Cache-Control', 'no-store').end();
          return;
        }
        throw new ProblemError(404, { detail: 'No such upload, or the caller may not see it.', headers: TUS_HEADERS });
      }
      if (req.method === 'HEAD') {
        const job = await this.jobs.forUpload(uploadId);
        if (job) res.setHeader('Weir-Ingest-Job-Id', job.id);
      }
    }
    answerProblemsAsJson(res);
    await this.tus.handle(req, res as unknown as ServerResponse);
  }

  private async finish(upload: Upload): Promise<string> {
    const record = await this.get(upload.id);
    if (!record) throw { status_code: 500, body: 'upload has no owner record\n' };
    return this.jobs.create({
      tenant: record.tenant,
      createdBy: record.created_by,
      datasetId: record.dataset_id,
      uploadId: record.id,
      filePath: join(this.options.dir, upload.id),
      format: record.format,
      gzip: record.gzip,
      bytesTotal: upload.size ?? upload.offset,
    });
  }
}
