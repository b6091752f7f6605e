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
import type { UpgradeHandler } from './datasets/services.js';
import type { AnalyticsOptions } from './analytics/service.js';
import type { ResourceResolver } from './authz/index.js';
import { recordProblem } from './observability/problem-recorder.js';
import { createServices } from './services.js';
import { openStores, type Stores } from './stores/index.js';

export interface AppOverrides {
  /** Stores opened by the caller (who then closes them); opened from config when absent. */
  stores?: Stores;
  logger?: Logger;
  /** The operations' handlers, or a function of those the app builds (to replace a few). */
  handlers?: HandlerMap | ((built: HandlerMap) => HandlerMap);
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
  const services = await createServices(config, stores, logger, { analytics: overrides.analytics, resourceResolvers: overrides.resourceResolvers });
  const { metrics, audit, identity, access } = services;
  const deps: PluginDeps = { config, stores, logger, spec: overrides.spec ?? (spec as Record<string, unknown>), metrics, audit, identity, access };
  const plugins = configurePlugins(overrides.plugins ?? createPlugins(), {
    body: { limit: config.http.bodyLimit },
    validation: { validateResponses: config.http.validateResponses },
    ...overrides.pluginOptions,
  });
  const built = createHandlers({ ...services, stores, version: apiInfo.version, startedAt: Date.now() });
  const handlers = typeof overrides.handlers === 'function' ? overrides.handlers(built) : (overrides.handlers ?? built);
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
    upgradeHandlers: services.upgradeHandlers,
    close: () =>
      (closing ??= (async () => {
        for (const { plugin } of plugins) {
          try {
            await plugin.close?.();
          } catch (err) {
            logger.error({ err, plugin: plugin.name }, 'plugin failed to close');
          }
        }
        await services.close();
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
