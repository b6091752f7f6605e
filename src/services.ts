import type { Logger } from 'pino';
import type { Config } from './config.js';
import { createAnalyticsServices, type AnalyticsOptions, type AnalyticsServices } from './analytics/service.js';
import { tokenAuthenticator } from './analytics/token-auth.js';
import { createAuditLog, type AuditLog } from './audit/index.js';
import { openAccessControl, type AccessControl, type ResourceResolver } from './authz/index.js';
import { createDataServices, type DataServices, type UpgradeHandler } from './datasets/services.js';
import { ExportJobs } from './exports/jobs.js';
import type { ExportDeps } from './handlers/exports.js';
import type { QueryDeps } from './handlers/query.js';
import type { UploadDeps } from './handlers/uploads.js';
import { apiKeyOwner } from './identity/api-keys.js';
import { bootstrapIfEmpty } from './identity/bootstrap.js';
import { openIdentity, type Identity } from './identity/index.js';
import { StreamIngestEndpoint } from './ingest/stream-endpoint.js';
import { createGatewayMetrics, type GatewayMetrics } from './observability/metrics.js';
import { QueryCache } from './query/cache.js';
import type { Stores } from './stores/index.js';
import { createUploadServices } from './uploads/index.js';

/** The capabilities of one app, wired to each other and to the stores; what the plugins and handlers work with. */
export interface Services {
  metrics: GatewayMetrics;
  audit: AuditLog;
  identity: Identity;
  access: AccessControl;
  data: DataServices;
  analytics: AnalyticsServices;
  query: QueryDeps;
  exports: ExportDeps;
  uploads: UploadDeps;
  /** WebSocket endpoints: whoever listens hands each HTTP 'upgrade' to these, in order. */
  upgradeHandlers: UpgradeHandler[];
  /** Stops the background work and closes what the services opened; the stores stay open. */
  close(): Promise<void>;
}

export interface ServiceOptions {
  /** Web-analytics options (a test clock, a token authenticator for the realtime WebSocket). */
  analytics?: AnalyticsOptions;
  /** Resource owners for authorization by resource type, replacing those registered here (tests, fixtures). */
  resourceResolvers?: Record<string, ResourceResolver>;
}

/** Opens every capability on the given stores, starts their background work and registers their resource owners. */
export async function createServices(config: Config, stores: Stores, logger: Logger, options: ServiceOptions = {}): Promise<Services> {
  const metrics = createGatewayMetrics(stores);
  const audit = createAuditLog({ metadata: stores.metadata, config, metrics, logger });
  const identity = await openIdentity(config, stores, logger);
  const access = await openAccessControl(config, stores, logger);
  // WebSocket subscriptions (realtime, stream ingest) present a token instead of headers.
  const authenticate = tokenAuthenticator(identity);
  access.resources.register('api-key', apiKeyOwner(identity.apiKeys));
  const data = createDataServices({ config, stores, logger });
  access.resources.register('dataset', async (id) => {
    const tenant = await data.datasets.tenantOf(id);
    return tenant === undefined ? undefined : { tenant };
  });
  const analytics = await createAnalyticsServices({ config, stores, logger, metrics }, { authenticate, ...options.analytics });
  access.resources.register('website', analytics.resolveWebsite);
  const queryCache = new QueryCache(stores.shared, config.query.cacheTtlMs, logger.child({ component: 'query-cache' }));
  data.ingest.committer.onCommitted = (datasetId) => queryCache.invalidate(datasetId);
  const exportJobs = new ExportJobs({
    metadata: stores.metadata,
    warehouse: stores.warehouse,
    logger: logger.child({ component: 'exports' }),
    dir: config.exports.dir,
    ttlMs: config.exports.ttlMs,
    concurrency: config.exports.concurrency,
  });
  await exportJobs.start();
  access.resources.register('export', async (id) => {
    const job = await exportJobs.get(id);
    return job && { tenant: job.tenant, attributes: { created_by: job.created_by } };
  });
  const uploads = await createUploadServices({ config, stores, data, logger });
  access.resources.register('upload', uploads.resolveUpload);
  access.resources.register('ingest-job', uploads.resolveJob);
  uploads.service.start();
  data.upgradeHandlers.push(analytics.upgradeHandler);
  const ingestStream = new StreamIngestEndpoint({ ingest: data.ingest, access, authenticate, logger: logger.child({ component: 'ingest-stream' }) });
  data.upgradeHandlers.push(ingestStream.handleUpgrade);
  for (const [type, resolver] of Object.entries(options.resourceResolvers ?? {})) access.resources.override(type, resolver);
  await bootstrapIfEmpty(identity, stores.metadata, logger);

  return {
    metrics,
    audit,
    identity,
    access,
    data,
    analytics,
    query: { datasets: data.datasets, access, warehouse: stores.warehouse, cache: queryCache, limits: config.query },
    exports: { datasets: data.datasets, access, warehouse: stores.warehouse, exports: exportJobs },
    uploads: { uploads: uploads.service },
    upgradeHandlers: data.upgradeHandlers,
    async close() {
      await analytics.close();
      await ingestStream.close();
      await exportJobs.close();
      await uploads.service.close();
      await uploads.closeLocker();
      await data.close();
      await identity.close();
      await access.close();
    },
  };
}
