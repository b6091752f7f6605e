import type { Request, Response } from 'express';
import type { OperationInfo } from '../../generated/registry.js';
import { anonymizeIp } from '../../src/audit/anonymize-ip.js';
import { ANONYMOUS_TENANT, outcomeOf, type PendingAuditEvent } from '../../src/audit/event.js';
import '../../src/observability/request-facts.js';
import { clientIp } from '../../src/gateway/client-ip.js';
import { newRequestId } from '../request-id/request-id.js';

const USER_AGENT_MAX = 512;
/** Status recorded when the client went away before the answer was sent (nginx's convention). */
const CLIENT_CLOSED = 499;

/** What is read from the request when it starts: by the time the answer is sent, Express has moved on (params) and the socket may be gone. */
export interface RequestStart {
  params: Record<string, string>;
  clientIp: string;
}

// Shared by the records of operations without path parameters or captures (never written to).
const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;
const NOTHING_CAPTURED: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

export function requestStart(req: Request, s?: AuditSettings): RequestStart {
  const params = s && s.op.pathParams.length === 0 && s.capture.length === 0 ? NO_PARAMS : ({ ...req.params } as Record<string, string>);
  return { params, clientIp: clientIp(req) ?? req.socket?.remoteAddress ?? 'unknown' };
}

/** What an operation's audit record holds besides the request: read from the spec once, at boot. */
export interface AuditSettings {
  op: OperationInfo;
  action: string;
  capture: readonly string[];
  neverCapture: Set<string>;
}

export function auditSettings(op: OperationInfo, neverCapture: Set<string>): AuditSettings {
  const action = op.audit?.event ?? (op.authz ? `${op.authz.resource}.${op.authz.action}` : op.operationId);
  return { op, action, capture: op.audit?.capture ?? [], neverCapture };
}

/**
 * The record of one answered request: who, what, on which resource, how it ended. Only the fields
 * x-weir-audit.capture names are copied from the request (parameters, headers, `body.<field>`);
 * never a body, token or secret otherwise.
 */
export function auditRecord(s: AuditSettings, req: Request, res: Response, at: RequestStart): PendingAuditEvent {
  const { params } = at;
  const p = req.principal;
  const status = res.writableFinished || res.headersSent ? res.statusCode : CLIENT_CLOSED;
  let resourceIds = NO_PARAMS;
  if (s.op.pathParams.length) {
    resourceIds = {};
    for (const name of s.op.pathParams) if (params[name] !== undefined) resourceIds[name] = params[name];
  }
  const ua = req.headers['user-agent'];
  const now = Date.now();
  return {
    id: newRequestId(now),
    time: isoTime(now),
    request_id: req.id,
    tenant: p?.tenant ?? ANONYMOUS_TENANT,
    principal: p ? (p.authMethod === 'api_key' && p.credentialId ? p.credentialId : p.subject) : null,
    auth_method: p?.authMethod ?? 'anonymous',
    operation_id: s.op.operationId,
    action: s.action,
    resource_type: s.op.authz?.resource ?? null,
    resource_ids: resourceIds,
    outcome: outcomeOf(status),
    status,
    rows_affected: req.rowsAffected ?? null,
    client_ip: s.op.audit?.client_ip === 'anonymized' ? anonymizeIp(at.clientIp) : at.clientIp,
    user_agent: ua === undefined ? null : ua.slice(0, USER_AGENT_MAX),
    captured: s.capture.length === 0 ? NOTHING_CAPTURED : captured(s, req, params),
  };
}

// Date#toISOString once a second: records of the same second share its text up to the milliseconds.
let isoSecond = -1;
let isoPrefix = '';
const MILLIS = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20); // "2026-11-22T08:00:00."
  }
  return isoPrefix + MILLIS[ms - second * 1000];
}

function captured(s: AuditSettings, req: Request, params: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of s.capture) {
    let value: unknown;
    if (name.startsWith('body.')) {
      const body = req.body as Record<string, unknown> | undefined;
      value = body && typeof body === 'object' ? body[name.slice(5)] : undefined;
    } else if (params[name] !== undefined) {
      value = params[name];
    } else if ((req.query as Record<string, unknown>)[name] !== undefined) {
      value = (req.query as Record<string, unknown>)[name];
    } else if (!s.neverCapture.has(name.toLowerCase())) {
      value = req.get(name);
    }
    if (value !== undefined) out[name] = value;
  }
  return out;
}
