import type { Logger } from 'pino';
import type { ResourceResolver } from '../authz/index.js';
import type { Config } from '../config.js';
import type { DataServices } from '../datasets/services.js';
import type { Stores } from '../stores/index.js';
import { IngestJobs } from './jobs.js';
import { createUploadLocker } from './shared-locker.js';
import { UploadService } from './service.js';

export async function createUploadServices({ config, stores, data, logger }: { config: Config; stores: Stores; data: DataServices; logger: Logger }) {
  const jobs = new IngestJobs(stores.metadata, data.datasets, data.ingest, logger.child({ component: 'ingest-jobs' }), {
    chunkBytes: data.ingest.chunkBytes,
    // A job whose process died is taken over once its lease has run out.
    leaseMs: config.uploads.jobLeaseMs,
    sweepMs: Math.min(5_000, config.uploads.jobLeaseMs),
  });
  const uploadLogger = logger.child({ component: 'uploads' });
  const locker = await createUploadLocker(stores.shared, uploadLogger);
  const service = new UploadService(stores.metadata, data.datasets, jobs, uploadLogger, { ...config.uploads, locker: locker.locker });
  const resolveUpload: ResourceResolver = async (id) => {
    const u = await service.get(id);
    return u && { tenant: u.tenant, attributes: { created_by: u.created_by, dataset_id: u.dataset_id } };
  };
  const resolveJob: ResourceResolver = async (id) => {
    const j = await jobs.get(id);
    return j && { tenant: j.tenant, attributes: { created_by: j.created_by, dataset_id: j.dataset_id } };
  };
  return { service, jobs, resolveUpload, resolveJob, closeLocker: locker.close };
}
