import { notImplemented, type HandlerMap } from '../../generated/handlers.js';
import type { DataServices } from '../datasets/services.js';
import { accessHandlers } from './access.js';
import type { AnalyticsServices } from '../analytics/service.js';
import { analyticsHandlers } from './analytics.js';
import { datasetsHandlers } from './datasets.js';
import { ingestHandlers } from './ingest.js';
import { uploadHandlers, type UploadDeps } from './uploads.js';
import { exportsHandlers, type ExportDeps } from './exports.js';
import { queryHandlers, type QueryDeps } from './query.js';
import { identityHandlers, type IdentityDeps } from './identity.js';
import { observabilityHandlers, type ObservabilityDeps } from './observability.js';
import { operationsHandlers, type OperationsDeps } from './operations.js';

/** `data` is absent when the app is built without it (its operations then answer 501). */
export type HandlerDeps = OperationsDeps & ObservabilityDeps & { data?: DataServices } & Partial<IdentityDeps> & { analytics?: AnalyticsServices } & { query?: QueryDeps; exports?: ExportDeps } & { uploads?: UploadDeps };

/**
 * Every operation in the spec, bound to its handler. An operation marked `notImplemented` answers
 * 501 until its capability lands; the type makes a missing or misspelt entry a compile error.
 */
export function createHandlers(deps: HandlerDeps): HandlerMap {
  const operations = operationsHandlers(deps);
  return {
    ...operations,
    // identity (`identity` and `access` are absent when the app is built without them: 501)
    ...(deps.identity && deps.access
      ? identityHandlers({ identity: deps.identity, access: deps.access })
      : { issueToken: notImplemented, createApiKey: notImplemented, listApiKeys: notImplemented, revokeApiKey: notImplemented, rotateApiKey: notImplemented, getJwks: notImplemented }),
    // operations
    ...observabilityHandlers(deps),
    // datasets
    ...datasetsHandlers(deps.data),
    ...(deps.access ? accessHandlers({ access: deps.access }) : { getDatasetAccess: notImplemented, updateDatasetAccess: notImplemented }),
    ...ingestHandlers(deps.data),
    ...uploadHandlers(deps.uploads),
    ...queryHandlers(deps.query),
    ...exportsHandlers(deps.exports),
    // web analytics
    ...analyticsHandlers(deps.analytics, deps.exports?.exports),
  };
}
