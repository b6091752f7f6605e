import { createHash } from 'node:crypto';
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

/** SHA-256 (hex) of the event's canonical JSON, every member but `hash`: it covers `prev_hash`, so each event seals the one before. */
export function eventHash(event: Omit<AuditEvent, 'hash'>): string {
  return createHash('sha256').update(canonicalJson(event)).digest('hex');
}

/** Links pending events onto a tenant's chain after its head (seq 0 and null for an empty chain). */
export function linkEvents(head: { seq: number; hash: string | null }, pending: PendingAuditEvent[]): AuditEvent[] {
  let { seq, hash } = head;
  return pending.map((p) => {
    const unsealed = { ...p, seq: ++seq, prev_hash: hash };
    hash = eventHash(unsealed);
    return { ...unsealed, hash };
  });
}
