import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { MetadataStore } from '../stores/index.js';
import { AuditStore } from './store.js';
import { AuditWriter } from './writer.js';

export type { AuditEvent, PendingAuditEvent } from './event.js';
export { ANONYMOUS_TENANT } from './event.js';
export { AuditStore, type AuditFilter } from './store.js';

/** The audit log shared by the audit plugin (writes) and the GET /v1/audit handler (reads). */
export interface AuditLog {
  store: AuditStore;
  writer: AuditWriter;
}

export function createAuditLog(deps: { metadata: MetadataStore; config: Pick<Config, 'audit'>; metrics: GatewayMetrics; logger: Logger }): AuditLog {
  const store = new AuditStore(deps.metadata);
  return { store, writer: new AuditWriter(store, deps.config.audit, deps.metrics, deps.logger) };
}
