import { describe, expect, it } from 'vitest';
import { canonicalEventJson, canonicalJson, eventHash, sealEvents } from './chain.js';
import type { PendingAuditEvent } from './event.js';

const pending = (over: Partial<PendingAuditEvent> = {}): PendingAuditEvent => ({
  id: '01KAZ0000000000000000000ZZ',
  time: '2026-11-22T08:00:00.000Z',
  request_id: 'req-\u2028"quoted"\\',
  tenant: 'acme',
  principal: null,
  auth_method: 'anonymous',
  operation_id: 'getHealth',
  action: 'getHealth',
  resource_type: null,
  resource_ids: { z: '1', a: '2' },
  outcome: 'success',
  status: 200,
  rows_affected: null,
  client_ip: '127.0.0.1',
  user_agent: 'ua é 😀',
  captured: { 'body.name': { nested: [3, { b: 1, a: null }], é: true }, 'x-z': 'v' },
  ...over,
});

describe('audit chain', () => {
  it('writes an event the same as the general canonical JSON (sorted members), whatever its values', () => {
    for (const e of [pending(), pending({ principal: 'key_1', rows_affected: 12, resource_type: 'dataset', captured: {} })]) {
      const [linked] = sealEvents({ seq: 41, hash: 'f'.repeat(64) }, [e]).events;
      const { hash: _, ...unsealed } = linked!;
      expect(canonicalEventJson(unsealed)).toBe(canonicalJson(unsealed));
      expect(JSON.parse(canonicalEventJson(unsealed))).toEqual(unsealed);
    }
  });

  it('writes the canonical text for captured values JSON.stringify alone would order or write differently', () => {
    const tricky: unknown[] = [
      { '10': 1, '9': 2 }, { '2': 'a', '1': 'b', x: 1 }, { b: 1, a: 2 }, { a: { d: 1, c: 2 } }, [{ y: 1, x: 2 }], new Date(0),
      { when: new Date(0) }, [1, undefined, 3], { a: undefined, b: 1 }, { f: () => 1 }, { toJSON: () => 'x' }, -0, 1e21, 'é\u2028',
      Object.assign(Object.create(null), { b: 1, a: 2 }), Object.assign(Object.create(null), { a: 1, b: 2 }), { a: [], b: {}, c: null, d: true },
    ];
    for (const value of tricky) {
      const [linked] = sealEvents({ seq: 0, hash: null }, [pending({ resource_ids: {}, captured: { v: value } as Record<string, unknown> })]).events;
      const { hash, ...unsealed } = linked!;
      expect(canonicalEventJson(unsealed)).toBe(canonicalJson(unsealed));
      expect(hash).toBe(eventHash(unsealed));
    }
  });

  it('writes the same text for an event whose members come in another order (as read back from the store)', () => {
    const [linked] = sealEvents({ seq: 0, hash: null }, [pending({ resource_ids: { a: '1' } })]).events;
    const { hash: _, ...unsealed } = linked!;
    const reordered = Object.fromEntries(Object.entries(unsealed).reverse()) as typeof unsealed;
    expect(Object.keys(reordered)[0]).toBe('user_agent');
    expect(canonicalEventJson(reordered)).toBe(canonicalJson(unsealed));
  });

  it('falls back to the general way for an event with other members, or an undefined one', () => {
    const [linked] = sealEvents({ seq: 0, hash: null }, [pending()]).events;
    const { hash: _, ...unsealed } = linked!;
    const extra = { ...unsealed, zzz: 1 } as typeof unsealed;
    expect(canonicalEventJson(extra)).toBe(canonicalJson(extra));
    expect(canonicalEventJson(extra)).toContain('"zzz":1');
    const missing = { ...unsealed, user_agent: undefined } as unknown as typeof unsealed;
    expect(canonicalEventJson(missing)).toBe(canonicalJson(missing));
    expect(canonicalEventJson(missing)).not.toContain('user_agent');
  });

  it('chains each event to the one before: seq in order, prev_hash the previous hash, hash over the rest', () => {
    const { events } = sealEvents({ seq: 7, hash: 'a'.repeat(64) }, [pending(), pending({ status: 404, outcome: 'failure' })]);
    expect(events.map((e) => e.seq)).toEqual([8, 9]);
    expect(events[0]!.prev_hash).toBe('a'.repeat(64));
    expect(events[1]!.prev_hash).toBe(events[0]!.hash);
    for (const e of events) {
      const { hash, ...rest } = e;
      expect(hash).toBe(eventHash(rest));
    }
    expect(events[0]!.hash).not.toBe(events[1]!.hash);
  });

  it('gives the sealed events as one JSON array holding exactly those events (what the store inserts)', () => {
    const { events, json } = sealEvents({ seq: 3, hash: 'b'.repeat(64) }, [pending(), pending({ principal: 'key_1', rows_affected: 0, captured: {} })]);
    expect(JSON.parse(json)).toEqual(events);
    expect(events.map((e) => e.seq)).toEqual([4, 5]);
  });
});
