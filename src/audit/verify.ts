import { eventHash } from './chain.js';
import type { AuditStore } from './store.js';

export interface BrokenRecord {
  tenant: string;
  seq: number;
  id: string;
  reason: string;
}

export interface VerifyResult {
  tenants: number;
  events: number;
  /** The first record (by tenant, then seq) that doesn't hold: altered, out of place, or after a gap. */
  broken?: BrokenRecord;
}

const PAGE = 1000;

/** Walks each tenant's chain from its first event, recomputing every hash. */
export async function verifyChains(store: AuditStore, only?: string): Promise<VerifyResult> {
  const tenants = only ? [only] : await store.tenants();
  let events = 0;
  for (const tenant of tenants) {
    let expectedSeq = 1;
    let prevHash: string | null = null;
    for (;;) {
      const page = await store.list({ tenant, afterSeq: expectedSeq - 1, limit: PAGE - 1 });
      for (const e of page) {
        events++;
        const at = (reason: string): VerifyResult => ({ tenants: tenants.length, events, broken: { tenant, seq: e.seq, id: e.id, reason } });
        if (e.seq !== expectedSeq) return at(`expected seq ${expectedSeq}: events ${expectedSeq}..${e.seq - 1} are missing`);
        if (e.prev_hash !== prevHash) return at(`prev_hash ${e.prev_hash} does not match the previous event's hash ${prevHash}`);
        const { hash, ...unsealed } = e;
        const actual = eventHash(unsealed);
        if (actual !== hash) return at(`content does not match its hash (stored ${hash}, computed ${actual}): the record was altered`);
        prevHash = hash;
        expectedSeq++;
      }
      if (page.length < PAGE) break;
    }
  }
  return { tenants: tenants.length, events };
}
