import type { HandlerMap } from '../../generated/handlers.js';
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

export type HandlerDeps = OperationsDeps &
  ObservabilityDeps &
  IdentityDeps & {
    data: DataServices;
    analytics: AnalyticsServices;
    query: QueryDeps;
    exports: ExportDeps;
    uploads: UploadDeps;
  };

/** Every operation in the spec, bound to its handler; the type makes a missing or misspelt entry a compile error. */
export function createHandlers(deps: HandlerDeps): HandlerMap {
  return {
    ...operationsHandlers(deps),
    // identity
    ...identityHandlers(deps),
    // operations
    ...observabilityHandlers(deps),
    // datasets
    ...datasetsHandlers(deps.data),
    ...accessHandlers(deps),
    ...ingestHandlers(deps.data),
    ...uploadHandlers(deps.uploads),
    ...queryHandlers(deps.query),
    ...exportsHandlers(deps.exports),
    // web analytics
    ...analyticsHandlers(deps.analytics, deps.exports.exports),
  };
}
