import { randomUUID } from 'node:crypto';
import { ProblemError } from '../problem.js';
import type { MetadataStore } from '../stores/index.js';

/** This process's identity in `ingest_idempotency.owner`. */
export const BOOT_ID = randomUUID();

export type IngestResultBody = { accepted: number; quarantined: number; errors: { line: number; column?: string; detail: string }[]; request_id: string };

export type Claim =
  | { kind: 'new' }
  /** An attempt by a process that is gone: undo its rows (`previousRequestId`), then start over. */
  | { kind: 'takeover'; previousRequestId: string }
  | { kind: 'done'; bodyHash: string; result: IngestResultBody };

interface Row { dataset_id: string; body_hash: string | null; state: string; request_id: string; result: unknown; owner: string; lease_expired: boolean }

/**
 * Idempotency-Key records in PostgreSQL. A key is claimed before any row is written; the
 * record holds the first result and the body's hash once the request is done. A claim left
 * `running` by a process that died is taken over once its lease ends (at once on embedded
 * PGlite, which only one process can open).
 */
export class IdempotencyStore {
  private readonly active = new Set<string>();

  constructor(private readonly db: MetadataStore, private readonly leaseMs: number) {}

  async claim(tenant: string, key: string, datasetId: string, requestId: string): Promise<Claim> {
    const id = `${tenant}\u0000${key}`;
    const inserted = await this.db.query(
      `INSERT INTO ingest_idempotency (tenant, key, dataset_id, state, request_id, owner, lease_until)
       VALUES ($1, $2, $3, 'running', $4, $5, now() + $6 * interval '1 millisecond') ON CONFLICT (tenant, key) DO NOTHING`,
      [tenant, key, datasetId, requestId, BOOT_ID, this.leaseMs],
    );
    if (inserted.rowCount === 1) {
      this.active.add(id);
      return { kind: 'new' };
    }
    const row = (await this.db.query<Row>(
      `SELECT dataset_id, body_hash, state, request_id, result, owner, lease_until < now() AS lease_expired FROM ingest_idempotency WHERE tenant = $1 AND key = $2`,
      [tenant, key],
    )).rows[0];
    if (!row) return this.claim(tenant, key, datasetId, requestId);
    if (row.dataset_id !== datasetId) throw mismatch();
    if (row.state === 'done') {
      const result = (typeof row.result === 'string' ? JSON.parse(row.result) : row.result) as IngestResultBody;
      return { kind: 'done', bodyHash: row.body_hash ?? '', result };
    }
    const ownerGone = row.owner !== BOOT_ID && (this.db.kind === 'pglite' || row.lease_expired);
    const orphaned = row.owner === BOOT_ID && !this.active.has(id);
    if (!ownerGone && !orphaned) {
      throw new ProblemError(409, {
        type: 'idempotency-in-progress',
        title: 'Request in progress',
        detail: 'A request with this Idempotency-Key is still being processed; retry when it has finished.',
        headers: { 'Retry-After': String(Math.max(1, Math.ceil(this.leaseMs / 1000))) },
      });
    }
    const taken = await this.db.query(
      `UPDATE ingest_idempotency SET owner = $3, request_id = $4, lease_until = now() + $5 * interval '1 millisecond'
       WHERE tenant = $1 AND key = $2 AND state = 'running' AND owner = $6 AND request_id = $7`,
      [tenant, key, BOOT_ID, requestId, this.leaseMs, row.owner, row.request_id],
    );
    if (taken.rowCount !== 1) return this.claim(tenant, key, datasetId, requestId);
    this.active.add(id);
    return { kind: 'takeover', previousRequestId: row.request_id };
  }

  async renew(tenant: string, key: string): Promise<void> {
    await this.db.query(
      `UPDATE ingest_idempotency SET lease_until = now() + $3 * interval '1 millisecond' WHERE tenant = $1 AND key = $2 AND owner = $4 AND state = 'running'`,
      [tenant, key, this.leaseMs, BOOT_ID],
    );
  }

  async complete(tenant: string, key: string, bodyHash: string, result: IngestResultBody): Promise<void> {
    await this.db.query(
      `UPDATE ingest_idempotency SET state = 'done', body_hash = $3, result = $4::jsonb WHERE tenant = $1 AND key = $2 AND owner = $5`,
      [tenant, key, bodyHash, JSON.stringify(result), BOOT_ID],
    );
    this.active.delete(`${tenant}\u0000${key}`);
  }

  /** Gives the key up after a failed attempt whose rows were undone, so a retry starts clean. */
  async release(tenant: string, key: string): Promise<void> {
    await this.db.query(`DELETE FROM ingest_idempotency WHERE tenant = $1 AND key = $2 AND owner = $3 AND state = 'running'`, [tenant, key, BOOT_ID]);
    this.active.delete(`${tenant}\u0000${key}`);
  }
}

export function mismatch(): ProblemError {
  return new ProblemError(422, {
    type: 'idempotency-key-reused',
    title: 'Idempotency-Key reused',
    detail: 'This Idempotency-Key was used for a request with another body (or dataset); use a new key for a new request.',
  });
}
