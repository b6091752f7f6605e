import { Upload, type HttpRequest, type HttpResponse } from 'tus-js-client';
import type { ReadStream } from 'node:fs';

export const b64 = (s: string) => Buffer.from(s).toString('base64');

export interface UploadOutcome { url: string; jobId: string | undefined }

/** A tus upload through the gateway with tus-js-client; resolves with the upload's URL and the ingest job id. */
export function tusUpload(
  endpoint: string,
  file: Buffer | ReadStream,
  opts: { metadata: Record<string, string>; headers: Record<string, string>; uploadUrl?: string; chunkSize?: number; onProgress?: (sent: number, total: number, upload: Upload) => void; retryDelays?: number[] | null },
): { upload: Upload; done: Promise<UploadOutcome> } {
  let jobId: string | undefined;
  let resolve!: (v: UploadOutcome) => void;
  let reject!: (e: Error) => void;
  const done = new Promise<UploadOutcome>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const upload = new Upload(file, {
    endpoint: `${endpoint}/v1/uploads`,
    uploadUrl: opts.uploadUrl,
    metadata: opts.metadata,
    headers: opts.headers,
    // tus-js-client sends empty PATCHes for an in-memory Buffer without a chunk size.
    chunkSize: opts.chunkSize ?? 4 * 1024 * 1024,
    retryDelays: opts.retryDelays === undefined ? [0, 200, 500] : opts.retryDelays,
    storeFingerprintForResuming: false,
    removeFingerprintOnSuccess: true,
    onProgress: (sent, total) => opts.onProgress?.(sent, total, upload),
    onAfterResponse: (_req: HttpRequest, res: HttpResponse) => {
      jobId = res.getHeader('Weir-Ingest-Job-Id') ?? jobId;
    },
    onError: (err) => reject(err),
    onSuccess: () => resolve({ url: upload.url!, jobId }),
  });
  upload.start();
  return { upload, done };
}

export interface JobBody { id: string; state: string; rows_done: number; rows_quarantined: number; bytes_done: number; bytes_total: number; errors: { line: number; column?: string; detail: string }[] }

/** Polls GET /v1/ingest-jobs/{id} until the job is succeeded or failed. */
export async function waitForJob(base: string, jobId: string, headers: Record<string, string>, timeoutMs = 120_000): Promise<JobBody> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${base}/v1/ingest-jobs/${jobId}`, { headers });
    if (res.status !== 200) throw new Error(`GET job: ${res.status} ${await res.text()}`);
    const job = (await res.json()) as JobBody;
    if (job.state === 'succeeded' || job.state === 'failed') return job;
    if (Date.now() > until) throw new Error(`job ${jobId} still ${job.state}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
