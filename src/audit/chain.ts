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
const EVENT_PREFIXES = EVENT_KEYS.map((k, i) => `${i ? ',' : '{'}${JSON.stringify(k)}:`);

/**
 * canonicalJson(event) for an event with exactly the AuditEvent members, all defined: the members'
 * order is known, so nothing is sorted. Anything else goes the general way; either way the text is the same.
 */
export function canonicalEventJson(event: Omit<AuditEvent, 'hash'>): string {
  const record = event as unknown as Record<string, unknown>;
  let count = 0;
  for (const k in record) if (Object.hasOwn(record, k)) count++;
  if (count !== EVENT_KEYS.length) return canonicalJson(event);
  let out = '';
  for (let i = 0; i < EVENT_KEYS.length; i++) {
    const v = record[EVENT_KEYS[i]!];
    if (v === undefined) return canonicalJson(event);
    out += EVENT_PREFIXES[i] + (typeof v === 'string' ? JSON.stringify(v) : canonicalJson(v));
  }
  return `${out}}`;
}

/** SHA-256 (hex) of the event's canonical JSON, every member but `hash`: it covers `prev_hash`, so each event seals the one before. */
export function eventHash(event: Omit<AuditEvent, 'hash'>): string {
  return sha256Hex(canonicalEventJson(event));
}

/** Links pending events onto a tenant's chain after its head (seq 0 and null for an empty chain). */
export function linkEvents(head: { seq: number; hash: string | null }, pending: PendingAuditEvent[]): AuditEvent[] {
  let { seq, hash } = head;
  const linked: AuditEvent[] = new Array(pending.length);
  for (let i = 0; i < pending.length; i++) {
    const unsealed: Omit<AuditEvent, 'hash'> & { hash?: string } = { ...pending[i]!, seq: ++seq, prev_hash: hash };
    hash = eventHash(unsealed);
    unsealed.hash = hash;
    linked[i] = unsealed as AuditEvent;
  }
  return linked;
}

// One call per event, without a Hash object (crypto.hash: Node >= 20.12; engines asks for 20.19).
const sha256Hex = (s: string): string => oneShotHash('sha256', s, 'hex');
