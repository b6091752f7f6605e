import type { Handler } from '../../generated/handlers.js';
import { requirePrincipal } from '../datasets/principal.js';
import { ProblemError } from '../problem.js';
import { presentJob } from '../uploads/jobs.js';
import type { UploadService } from '../uploads/service.js';

export interface UploadDeps {
  uploads: UploadService;
}

type UploadOps = 'tusOptions' | 'createUpload' | 'getUploadOffset' | 'appendUpload' | 'deleteUpload' | 'getIngestJob';

const HANDLED = { handled: true } as const;

/** The tus operations hand the request to the tus server (it writes the answer); getIngestJob reads the job. */
export function uploadHandlers({ uploads }: UploadDeps): { [K in UploadOps]: Handler<K> } {
  return {
    tusOptions: async ({ req, res }) => {
      await uploads.forward(req, res, req.principal);
      return HANDLED;
    },
    createUpload: async ({ req, res }) => {
      await uploads.create(req, res, requirePrincipal(req));
      return HANDLED;
    },
    getUploadOffset: async ({ req, res, params }) => {
      await uploads.forward(req, res, req.principal, params.uploadId);
      return HANDLED;
    },
    appendUpload: async ({ req, res, params }) => {
      await uploads.forward(req, res, requirePrincipal(req), params.uploadId);
      return HANDLED;
    },
    deleteUpload: async ({ req, res, params }) => {
      await uploads.forward(req, res, requirePrincipal(req), params.uploadId);
      return HANDLED;
    },
    getIngestJob: async ({ req, params }) => {
      const principal = requirePrincipal(req);
      const job = await uploads.jobs.get(params.jobId);
      // The upload's creator or an admin of its tenant; anyone else is told it does not exist.
      if (!job || job.tenant !== principal.tenant || (job.created_by !== principal.subject && !principal.roles.includes('admin'))) {
        throw new ProblemError(404, { detail: 'No such ingest job, or the caller may not see it.' });
      }
      return { status: 200, body: presentJob(job) };
    },
  };
}
