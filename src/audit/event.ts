/** One audit record as stored and served (the AuditEvent schema in the spec). */
export interface AuditEvent {
  seq: number;
  id: string;
  time: string;
  request_id: string;
  tenant: string;
  principal: string | null;
  auth_method: 'jwt' | 'api_key' | 'anonymous';
  operation_id: string;
  action: string;
  resource_type: string | null;
  resource_ids: Record<string, string>;
  outcome: 'success' | 'failure' | 'denied' | 'error';
  status: number;
  rows_affected: number | null;
  client_ip: string;
  user_agent: string | null;
  captured: Record<string, unknown>;
  hash: string;
  prev_hash: string | null;
}

/** An event before it joins its tenant's chain. */
export type PendingAuditEvent = Omit<AuditEvent, 'seq' | 'hash' | 'prev_hash'>;

/** The tenant of requests made without a principal (anonymous calls, failed authentication). */
export const ANONYMOUS_TENANT = '_anonymous';

export function outcomeOf(status: number): AuditEvent['outcome'] {
  if (status === 401 || status === 403) return 'denied';
  if (status >= 500) return 'error';
  if (status >= 400) return 'failure';
  return 'success';
}
