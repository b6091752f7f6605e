import { notImplemented, type HandlerMap } from '../../generated/handlers.js';
import { operationsHandlers, type OperationsDeps } from './operations.js';

export type HandlerDeps = OperationsDeps;

/**
 * Every operation in the spec, bound to its handler. An operation marked `notImplemented` answers
 * 501 until its capability lands; the type makes a missing or misspelt entry a compile error.
 */
export function createHandlers(deps: HandlerDeps): HandlerMap {
  const operations = operationsHandlers(deps);
  return {
    ...operations,
    // identity
    issueToken: notImplemented,
    createApiKey: notImplemented,
    listApiKeys: notImplemented,
    revokeApiKey: notImplemented,
    rotateApiKey: notImplemented,
    getJwks: notImplemented,
    // operations
    getPrometheusMetrics: notImplemented,
    getUsageMetrics: notImplemented,
    listAuditEvents: notImplemented,
    // datasets
    createDataset: notImplemented,
    listDatasets: notImplemented,
    getDataset: notImplemented,
    updateDataset: notImplemented,
    deleteDataset: notImplemented,
    listDatasetVersions: notImplemented,
    getDatasetAccess: notImplemented,
    updateDatasetAccess: notImplemented,
    ingestRows: notImplemented,
    getIngestJob: notImplemented,
    tusOptions: notImplemented,
    createUpload: notImplemented,
    getUploadOffset: notImplemented,
    appendUpload: notImplemented,
    deleteUpload: notImplemented,
    queryDataset: notImplemented,
    getDatasetChanges: notImplemented,
    exportDataset: notImplemented,
    getExport: notImplemented,
    downloadExport: notImplemented,
    // web analytics
    collectHit: notImplemented,
    collectHitPixel: notImplemented,
    collectBatch: notImplemented,
    createWebsite: notImplemented,
    listWebsites: notImplemented,
    getWebsite: notImplemented,
    updateWebsite: notImplemented,
    deleteWebsite: notImplemented,
    createGoal: notImplemented,
    listGoals: notImplemented,
    getRealtime: notImplemented,
    queryWebsite: notImplemented,
    exportWebsite: notImplemented,
  };
}
