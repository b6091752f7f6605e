import { hash as oneShotHash } from 'node:crypto';
import type { AuditEvent, PendingAuditEvent } from './event.js';

/**
 * RFC 8785 (JCS) canonical JSON: object members sorted by key (UTF-16 code units), no whitespace,
 * numbers and strings as ECMAScript's JSON.stringify writes them.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error('canonical JSON has no NaN or Infinity');
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + canonicalJson(value[i]);
    return `${out}]`;
  }
  // Written out (no entries/filter/map arrays): every audit record goes through here.
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = record[k];
    if (v === undefined) continue;
    out += `${first ? '' : ','}${JSON.stringify(k)}:${canonicalJson(v)}`;
    first = false;
  }
  return `${out}}`;
}

/** An event's members (all but `hash`) in canonical (sorted) order. */
const EVENT_KEYS = [
  'action', 'auth_method', 'captured', 'client_ip', 'id', 'operation_id', 'outcome', 'prev_hash', 'principal', 'request_id',
  'resource_ids', 'resource_type', 'rows_affected', 'seq', 'status', 'tenant', 'time', 'user_agent',
] as const satisfies readonly (keyof Omit<AuditEvent, 'hash'>)[];

/**
 * canonicalJson(event) for an event with exactly the AuditEvent members, all defined, by one
 * JSON.stringify: that writes members in the object's own order, which is the canonical (sorted)
 * order when the event's members come in EVENT_KEYS' order and every nested object's keys are
 * ascending (see writesCanonically). Anything else goes the general way; either way the text is the same.
 */
export function canonicalEventJson(event: Omit<AuditEvent, 'hash'>): string {
  const record = event as unknown as Record<string, unknown>;
  let count = 0;
  let inOrder = true;
  for (const k in record) {
    if (!Object.hasOwn(record, k)) continue;
    if (k !== EVENT_KEYS[count]) inOrder = false;
    count++;
  }
  if (count !== EVENT_KEYS.length) return canonicalJson(event);
  for (let i = 0; i < EVENT_KEYS.length; i++) if (!writesCanonically(record[EVENT_KEYS[i]!])) return canonicalJson(event);
  return JSON.stringify(inOrder ? record : inEventOrder(record));
}

function inEventOrder(record: Record<string, unknown>): Record<string, unknown> {
  const ordered: Record<string, unknown> = {};
  for (const k of EVENT_KEYS) ordered[k] = record[k];
  return ordered;
}

/**
 * Whether JSON.stringify(value) is canonicalJson(value): primitives it writes the same way, and
 * arrays and plain objects of those whose keys already come in sorted order (integer-like keys,
 * which objects list first, fail that where the order differs). Functions, toJSON, Dates, undefined
 * members and non-finite numbers are where the two differ or throw: those go the general way.
 */
function writesCanonically(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!writesCanonically(value[i])) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      const record = value as Record<string, unknown>;
      let prev: string | undefined;
      for (const k in record) {
        if (!Object.hasOwn(record, k) || (prev !== undefined && !(prev < k))) return false;
        if (!writesCanonically(record[k])) return false;
        prev = k;
      }
      return true;
    }
    default:
      return false;
  }
}

/** SHA-256 (hex) of the event's canonical JSON, every member but `hash`: it covers `prev_hash`, so each event seals the one before. */
export function eventHash(event: Omit<AuditEvent, 'hash'>): string {
  return sha256Hex(canonicalEventJson(event));
}

/**
 * Links pending events onto a tenant's chain after its head (seq 0 and null for an empty chain),
 * and gives the linked events as one JSON array too (what the store inserts), made from the
 * canonical text each event was hashed over, so no event is serialised twice.
 */
export function sealEvents(head: { seq: number; hash: string | null }, pending: PendingAuditEvent[]): { events: AuditEvent[]; json: string } {
  let { seq, hash } = head;
  const events: AuditEvent[] = new Array(pending.length);
  let json = '[';
  for (let i = 0; i < pending.length; i++) {
    const p = pending[i]!;
    // Written out rather than spread: every event takes one shape, its members in canonical order.
    const unsealed: Omit<AuditEvent, 'hash'> & { hash?: string } = {
      action: p.action, auth_method: p.auth_method, captured: p.captured, client_ip: p.client_ip, id: p.id,
      operation_id: p.operation_id, outcome: p.outcome, prev_hash: hash, principal: p.principal, request_id: p.request_id,
      resource_ids: p.resource_ids, resource_type: p.resource_type, rows_affected: p.rows_affected, seq: ++seq,
      status: p.status, tenant: p.tenant, time: p.time, user_agent: p.user_agent,
    };
    const text = canonicalEventJson(unsealed);
    hash = sha256Hex(text);
    unsealed.hash = hash;
    events[i] = unsealed as AuditEvent;
    // The canonical text is JSON with the same members and values; the hash joins it as the last member.
    json += `${i ? ',' : ''}${text.slice(0, -1)},"hash":"${hash}"}`;
  }
  return { events, json: `${json}]` };
}

// One call per event, without a Hash object (crypto.hash: Node >= 20.12; engines asks for 20.19).
const sha256Hex = (s: string): string => oneShotHash('sha256', s, 'hex');
