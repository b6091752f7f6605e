import type { MetadataStore } from '../stores/index.js';
import { sealEvents } from './chain.js';
import type { AuditEvent, PendingAuditEvent } from './event.js';

const COLUMNS = [
  'tenant', 'seq', 'id', 'time', 'request_id', 'principal', 'auth_method', 'operation_id', 'action', 'resource_type',
  'resource_ids', 'outcome', 'status', 'rows_affected', 'client_ip', 'user_agent', 'captured', 'hash', 'prev_hash',
] as const;
/**
 * Events linked (hashed) and sent per statement. The hashing and JSON of a statement's rows run in one
 * go on the event loop; a few hundred at once held up requests by milliseconds (the p99 at half load),
 * so a flush does them a chunk at a time, the loop serving requests while each chunk is written.
 */
const ROWS_PER_INSERT = 100;

export interface AuditFilter {
  tenant: string;
  from?: string;
  to?: string;
  principal?: string;
  operationId?: string;
  outcome?: AuditEvent['outcome'];
  /** Events after this seq. */
  afterSeq?: number;
  limit: number;
}

/** The audit_events table (migration 0010): appends chained batches, reads pages back. */
export class AuditStore {
  constructor(private readonly db: MetadataStore) {}

  /**
   * Appends events in one transaction. Each tenant's chain head is read under a per-tenant advisory
   * lock, so gateway processes sharing the database extend the chain one at a time, without gaps.
   */
  async append(pending: PendingAuditEvent[]): Promise<AuditEvent[]> {
    const byTenant = new Map<string, PendingAuditEvent[]>();
    for (const e of pending) {
      const list = byTenant.get(e.tenant);
      if (list) list.push(e);
      else byTenant.set(e.tenant, [e]);
    }
    // Locks taken in one order by everyone, so two batches can't deadlock.
    const tenants = [...byTenant.keys()].sort();
    return this.db.transaction(async (tx) => {
      const written: AuditEvent[] = [];
      for (const tenant of tenants) {
        await tx.query(`SELECT pg_advisory_xact_lock(hashtext('weir_audit:' || current_schema() || ':' || $1))`, [tenant]);
        const top = await tx.query<{ seq: string; hash: string }>(
          'SELECT seq, hash FROM audit_events WHERE tenant = $1 ORDER BY seq DESC LIMIT 1',
          [tenant],
        );
        const row = top.rows[0];
        let head: { seq: number; hash: string | null } = row ? { seq: Number(row.seq), hash: row.hash } : { seq: 0, hash: null };
        const events = byTenant.get(tenant)!;
        for (let i = 0; i < events.length; i += ROWS_PER_INSERT) {
          const { events: linked, json } = sealEvents(head, events.slice(i, i + ROWS_PER_INSERT));
          const last = linked[linked.length - 1]!;
          head = { seq: last.seq, hash: last.hash };
          await tx.query(INSERT_SQL, [json]);
          for (const e of linked) written.push(e);
        }
      }
      return written;
    });
  }

  /** One page in seq order; `limit + 1` rows are read so the caller knows whether there is more. */
  async list(f: AuditFilter): Promise<AuditEvent[]> {
    const where = ['tenant = $1'];
    const params: unknown[] = [f.tenant];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (f.from) add('time >= ?', f.from);
    if (f.to) add('time < ?', f.to);
    if (f.principal) add('principal = ?', f.principal);
    if (f.operationId) add('operation_id = ?', f.operationId);
    if (f.outcome) add('outcome = ?', f.outcome);
    if (f.afterSeq !== undefined) add('seq > ?', f.afterSeq);
    params.push(f.limit + 1);
    const res = await this.db.query<StoredRow>(
      `SELECT ${COLUMNS.join(', ')} FROM audit_events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT $${params.length}`,
      params,
    );
    return res.rows.map(fromRow);
  }

  async tenants(): Promise<string[]> {
    return (await this.db.query<{ tenant: string }>('SELECT DISTINCT tenant FROM audit_events ORDER BY tenant', [])).rows.map((r) => r.tenant);
  }
}

/** Column types for jsonb_to_recordset, as migration 0010 declares them. */
const RECORD_TYPES = [
  'tenant text', 'seq bigint', 'id text', 'time timestamptz', 'request_id text', 'principal text', 'auth_method text', 'operation_id text',
  'action text', 'resource_type text', 'resource_ids jsonb', 'outcome text', 'status integer', 'rows_affected bigint', 'client_ip text',
  'user_agent text', 'captured jsonb', 'hash text', 'prev_hash text',
].join(', ');
const INSERT_SQL = `INSERT INTO audit_events (${COLUMNS.join(', ')}) SELECT ${COLUMNS.join(', ')} FROM jsonb_to_recordset($1::jsonb) AS r(${RECORD_TYPES})`;

// The batch goes as one JSON parameter (sealEvents' json) rather than 19 bind parameters per row:
// building, sending and planning a statement with thousands of parameters cost more than the rows
// themselves (PGlite especially). The values are the same (the JSON members are the columns), so hashes still verify.

export interface StoredRow {
  tenant: string;
  seq: string | number;
  id: string;
  time: Date | string;
  request_id: string;
  principal: string | null;
  auth_method: AuditEvent['auth_method'];
  operation_id: string;
  action: string;
  resource_type: string | null;
  resource_ids: Record<string, string> | string;
  outcome: AuditEvent['outcome'];
  status: number;
  rows_affected: string | number | null;
  client_ip: string;
  user_agent: string | null;
  captured: Record<string, unknown> | string;
  hash: string;
  prev_hash: string | null;
}

/** A row as the event it was hashed as (bigints back to numbers, jsonb to objects, the time to ISO 8601). */
export function fromRow(r: StoredRow): AuditEvent {
  return {
    seq: Number(r.seq),
    id: r.id,
    time: new Date(r.time).toISOString(),
    request_id: r.request_id,
    tenant: r.tenant,
    principal: r.principal,
    auth_method: r.auth_method,
    operation_id: r.operation_id,
    action: r.action,
    resource_type: r.resource_type,
    resource_ids: typeof r.resource_ids === 'string' ? JSON.parse(r.resource_ids) : r.resource_ids,
    outcome: r.outcome,
    status: Number(r.status),
    rows_affected: r.rows_affected === null ? null : Number(r.rows_affected),
    client_ip: r.client_ip,
    user_agent: r.user_agent,
    captured: typeof r.captured === 'string' ? JSON.parse(r.captured) : r.captured,
    hash: r.hash,
    prev_hash: r.prev_hash,
  };
}
