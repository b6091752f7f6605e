import cors from 'cors';
import express, { type Express } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import spec from '../generated/openapi.json' with { type: 'json' };
import type { HandlerMap } from '../generated/handlers.js';
import { apiInfo, operations, type OperationInfo } from '../generated/registry.js';
import { createPlugins } from '../plugins/index.js';
import type { Config } from './config.js';
import { docsRouter } from './docs.js';
import { problemErrorHandler, unmatchedRoute } from './gateway/errors.js';
import { configurePlugins, globalMiddleware, mountOperations } from './gateway/pipeline.js';
import { staticHeaders } from './gateway/static-headers.js';
import { compressionWhenAccepted } from './gateway/compression.js';
import type { AnyPlugin, PluginDeps } from './gateway/plugin.js';
import './gateway/request-types.js';
import { createHandlers } from './handlers/index.js';
import { createLogger } from './logger.js';
import { createDataServices, type UpgradeHandler } from './datasets/services.js';
import { createAnalyticsServices, type AnalyticsOptions } from './analytics/service.js';
import { tokenAuthenticator } from './analytics/token-auth.js';
import { StreamIngestEndpoint } from './ingest/stream-endpoint.js';
import { createAuditLog } from './audit/index.js';
import { openAccessControl, type ResourceResolver } from './authz/index.js';
import { apiKeyOwner } from './identity/api-keys.js';
import { bootstrapIfEmpty } from './identity/bootstrap.js';
import { openIdentity } from './identity/index.js';
import { createGatewayMetrics } from './observability/metrics.js';
import { recordProblem } from './observability/problem-recorder.js';
import { openStores, type Stores } from './stores/index.js';
import { ExportJobs } from './exports/jobs.js';
import { QueryCache } from './query/cache.js';
import { createUploadServices } from './uploads/index.js';

export interface AppOverrides {
  /** Stores opened by the caller (who then closes them); opened from config when absent. */
  stores?: Stores;
  logger?: Logger;
  handlers?: HandlerMap;
  plugins?: AnyPlugin[];
  /** Per-plugin options by plugin name, on top of those derived from config. */
  pluginOptions?: Record<string, unknown>;
  operations?: readonly OperationInfo[];
  spec?: Record<string, unknown>;
  /** Resource owners for authorization by resource type, replacing those the app registers (tests, fixtures). */
  resourceResolvers?: Record<string, ResourceResolver>;
  /** Web-analytics options (a test clock, a token authenticator for the realtime WebSocket). */
  analytics?: AnalyticsOptions;
}

export interface WeirApp extends Express {
  weir: {
    deps: PluginDeps;
    /** WebSocket endpoints: whoever listens hands each HTTP 'upgrade' to these, in order (see attachUpgrades). */
    upgradeHandlers: UpgradeHandler[];
    /** Closes the plugins (flushing their buffers) and the stores this app opened. Idempotent. */
    close(): Promise<void>;
  };
}

/** Builds the gateway's Express app from config, without listening. */
export async function buildApp(config: Config, overrides: AppOverrides = {}): Promise<WeirApp> {
  const logger = overrides.logger ?? createLogger(config);
  const stores = overrides.stores ?? (await openStores(storeConfig(config), logger));
  const metrics = createGatewayMetrics(stores);
  const audit = createAuditLog({ metadata: stores.metadata, config, metrics, logger });
  const identity = await openIdentity(config, stores, logger);
  const access = await openAccessControl(config, stores, logger);
  access.resources.register('api-key', apiKeyOwner(identity.apiKeys));
  const data = createDataServices({ config, stores, logger });
  access.resources.register('dataset', async (id) => {
    const tenant = await data.datasets.tenantOf(id);
    return tenant === undefined ? undefined : { tenant };
  });
  const analytics = await createAnalyticsServices({ config, stores, logger, metrics }, { authenticate: tokenAuthenticator(identity), ...overrides.analytics });
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
  const ingestStream = new StreamIngestEndpoint({ ingest: data.ingest, access, authenticate: tokenAuthenticator(identity), logger: logger.child({ component: 'ingest-stream' }) });
  data.upgradeHandlers.push(ingestStream.handleUpgrade);
  for (const [type, resolver] of Object.entries(overrides.resourceResolvers ?? {})) access.resources.override(type, resolver);
  await bootstrapIfEmpty(identity, stores.metadata, logger);
  const deps: PluginDeps = { config, stores, logger, spec: overrides.spec ?? (spec as Record<string, unknown>), metrics, audit, identity, access };
  const plugins = configurePlugins(overrides.plugins ?? createPlugins(), {
    body: { limit: config.http.bodyLimit },
    validation: { validateResponses: config.http.validateResponses },
    ...overrides.pluginOptions,
  });
  const queryDeps = { datasets: data.datasets, access, warehouse: stores.warehouse, cache: queryCache, limits: config.query };
  const exportDeps = { datasets: data.datasets, access, warehouse: stores.warehouse, exports: exportJobs };
  const handlers = overrides.handlers ?? createHandlers({ stores, version: apiInfo.version, startedAt: Date.now(), metrics, audit, data, identity, access, analytics, query: queryDeps, exports: exportDeps, uploads: { uploads: uploads.service } });
  const ops = overrides.operations ?? Object.values(operations);

  const app = express() as unknown as WeirApp;
  app.disable('x-powered-by');
  // req.ip is the socket's peer unless that peer is a configured proxy (TRUST_PROXY), so a spoofed X-Forwarded-For changes nothing.
  app.set('trust proxy', config.http.trustProxy);
  // Middleware for every request, run as one layer ahead of the operations (see mountOperations).
  const front = globalMiddleware(plugins, deps);
  front.push(
    staticHeaders(
      helmet({
        strictTransportSecurity: config.tls ? { maxAge: config.tls.hstsMaxAge, includeSubDomains: true } : false,
      }),
    ),
  );
  const origins = config.http.corsOrigins;
  if (origins === '*' || origins.length) {
    const corsMiddleware = cors({
      origin: origins === '*' ? true : origins,
      exposedHeaders: ['X-Request-Id', 'RateLimit', 'RateLimit-Policy', 'Retry-After', 'Location', 'Deprecation', 'Sunset'],
    });
    // Only a real preflight (with Access-Control-Request-Method) is CORS's; other OPTIONS requests,
    // such as tus discovery, go on to their operation.
    front.push((req, res, next) =>
      req.method === 'OPTIONS' && !req.headers['access-control-request-method'] ? next() : corsMiddleware(req, res, next),
    );
  }
  front.push(compressionWhenAccepted());
  mountOperations(app, ops, handlers, plugins, deps, front);
  // After the operations (no operation path is under /docs or /openapi.json), so API requests don't pass its routes.
  app.use(docsRouter(deps.spec));
  app.use(unmatchedRoute(ops));
  app.use(recordProblem);
  app.use(problemErrorHandler(logger));

  let closing: Promise<void> | undefined;
  app.weir = {
    deps,
    upgradeHandlers: data.upgradeHandlers,
    close: () =>
      (closing ??= (async () => {
        for (const { plugin } of plugins) {
          try {
            await plugin.close?.();
          } catch (err) {
            logger.error({ err, plugin: plugin.name }, 'plugin failed to close');
          }
        }
        await analytics.close();
        await ingestStream.close();
        await exportJobs.close();
        await uploads.service.close();
        await uploads.closeLocker();
        await data.close();
        await identity.close();
        await access.close();
        if (!overrides.stores) await stores.close();
      })()),
  };
  return app;
}

export function storeConfig(config: Config) {
  return {
    databaseUrl: config.database.url,
    databaseSchema: config.database.schema,
    clickhouseUrl: config.clickhouse.url,
    clickhouseDatabase: config.clickhouse.database,
    redisUrl: config.redis.url,
    redisKeyPrefix: config.redis.keyPrefix,
    dataDir: config.dataDir,
  };
}
