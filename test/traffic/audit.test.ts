import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/index.js';
import { eventHash } from '../../src/audit/chain.js';
import { verifyChains } from '../../src/audit/verify.js';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { testStoreMode } from '../helpers/store-env.js';
import { TEST_PRINCIPAL, pluginsWithTestPrincipal, principalHeader } from '../helpers/test-principal.js';
import { statuses } from './helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway('audit', {
    env: { AUDIT_FLUSH_MS: '20', RATE_LIMIT_POLICIES: JSON.stringify({ default: { burst: 1000, rate: 100 } }) },
    overrides: { plugins: pluginsWithTestPrincipal() },
  });
});
afterAll(async () => {
  await gw?.close();
});

const flush = () => gw.app.weir.deps.audit.writer.flush();
const auditor = (tenant: string, extra: object = {}) => principalHeader({ tenant, subject: 'auditor@example.org', roles: ['auditor'], ...extra });
async function readLog(query: string, headers: Record<string, string>): Promise<{ items: AuditEvent[]; next_cursor: string | null }> {
  const res = await fetch(`${gw.url}/v1/audit?${query}`, { headers });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { items: AuditEvent[]; next_cursor: string | null };
}

describe('audit records', () => {
  it('records who did what to which resource, how it ended, and only the captured fields', async () => {
    const who = principalHeader({ tenant: 'acme', subject: 'ada@acme.example', authMethod: 'jwt' });
    const res = await fetch(`${gw.url}/v1/datasets/ds_01J9ZK3M5X8Q2V7N4B?secret=nope`, {
      headers: { ...who, 'user-agent': 'audit-test/1.0', authorization: 'Bearer should-never-be-stored' },
    });
    await res.arrayBuffer();
    await flush();
    const { items } = await readLog('operation_id=getDataset', auditor('acme'));
    expect(items).toHaveLength(1);
    const e = items[0]!;
    expect(e).toMatchObject({
      seq: 1,
      prev_hash: null,
      request_id: res.headers.get('x-request-id'),
      tenant: 'acme',
      principal: 'ada@acme.example',
      auth_method: 'jwt',
      operation_id: 'getDataset',
      action: 'dataset.read',
      resource_type: 'dataset',
      resource_ids: { datasetId: 'ds_01J9ZK3M5X8Q2V7N4B' },
      status: res.status,
      outcome: res.status === 501 || res.status >= 500 ? 'error' : 'failure',
      client_ip: expect.stringMatching(/127\.0\.0\.1/),
      user_agent: 'audit-test/1.0',
      rows_affected: null,
    });
    expect(JSON.stringify(e)).not.toContain('should-never-be-stored');
    expect(JSON.stringify(e)).not.toContain('nope');
    expect(e.hash).toBe(eventHash((({ hash: _, ...rest }) => rest)(e)));
  });

  it('records refused credentials as denied, under the anonymous tenant', async () => {
    expect(await statuses(`${gw.url}/v1/metrics`, 1, { headers: { [TEST_PRINCIPAL]: 'invalid' } })).toEqual([401]);
    await flush();
    const { items } = await readLog('tenant=_anonymous&outcome=denied', auditor('ops', { roles: ['admin'] }));
    expect(items).toEqual([expect.objectContaining({ operation_id: 'getUsageMetrics', status: 401, principal: null, auth_method: 'anonymous' })]);
  });

  it('chains each tenant on its own, and GET /v1/audit pages through it with a cursor and filters', async () => {
    const who = principalHeader({ tenant: 'pager', subject: 'bob' });
    expect(await statuses(`${gw.url}/v1/metrics?window=1m`, 5, { headers: who })).toEqual([200, 200, 200, 200, 200]);
    await flush();
    const first = await readLog('limit=2', auditor('pager'));
    expect(first.items.map((e) => e.seq)).toEqual([1, 2]);
    expect(first.items[1]!.prev_hash).toBe(first.items[0]!.hash);
    const second = await readLog(`limit=2&cursor=${first.next_cursor}`, auditor('pager'));
    expect(second.items.map((e) => e.seq)).toEqual([3, 4]);
    expect(second.items[0]!.prev_hash).toBe(first.items[1]!.hash);
    const byPrincipal = await readLog('principal=bob&limit=100', auditor('pager'));
    expect(byPrincipal.items).toHaveLength(5);
    expect(byPrincipal.next_cursor).toBeNull();
    const future = await readLog(`from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, auditor('pager'));
    expect(future.items).toEqual([]);
    expect((await verifyChains(gw.app.weir.deps.audit.store, 'pager')).broken).toBeUndefined();
  });

  it("refuses another tenant's log without the admin role, and a bad cursor", async () => {
    expect((await fetch(`${gw.url}/v1/audit?tenant=acme`, { headers: auditor('pager') })).status).toBe(403);
    expect((await fetch(`${gw.url}/v1/audit?tenant=acme`, { headers: auditor('pager', { roles: ['admin'] }) })).status).toBe(200);
    expect((await fetch(`${gw.url}/v1/audit?cursor=bogus`, { headers: auditor('pager') })).status).toBe(400);
  });
});

describe('append-only', () => {
  it("the application's connection can neither change nor remove audit rows", async () => {
    await flush();
    const db = gw.stores.metadata;
    const count = async () => (await db.query<{ n: string }>(`SELECT count(*) AS n FROM audit_events WHERE tenant = $1`, ['acme'])).rows[0]!.n;
    const before = await count();
    expect(Number(before)).toBeGreaterThan(0);
    await expect(db.query(`UPDATE audit_events SET status = 200 WHERE tenant = $1`, ['acme'])).rejects.toThrow(/append-only: UPDATE/);
    await expect(db.query(`DELETE FROM audit_events WHERE tenant = $1`, ['acme'])).rejects.toThrow(/append-only: DELETE/);
    await expect(db.query(`TRUNCATE audit_events`)).rejects.toThrow(/append-only: TRUNCATE/);
    expect(await count()).toBe(before);
  });

  it.skipIf(testStoreMode() !== 'real')('a role that is not the owner gets no UPDATE or DELETE privilege, even with the trigger off (PostgreSQL)', async () => {
    const role = `weir_t_auditapp_${Math.random().toString(36).slice(2, 8)}`;
    const db = gw.stores.metadata;
    await db.query(`CREATE ROLE ${role} NOLOGIN`);
    try {
      await db.query(`GRANT USAGE ON SCHEMA ${gw.config.database.schema} TO ${role}; GRANT SELECT, INSERT ON audit_events TO ${role}`);
      const attempt = (sql: string) =>
        db.transaction(async (tx) => {
          await tx.query(`ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change`);
          await tx.query(`SET LOCAL ROLE ${role}`);
          await tx.query(sql);
        });
      await expect(attempt(`UPDATE audit_events SET status = 200`)).rejects.toThrow(/permission denied/);
      await expect(attempt(`DELETE FROM audit_events`)).rejects.toThrow(/permission denied/);
    } finally {
      await db.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });
});

describe('buffer overflow', () => {
  it('drop mode drops what does not fit and counts it', async () => {
    const dropping = await startGateway('audit_drop', {
      env: { AUDIT_OVERFLOW: 'drop', AUDIT_BUFFER_SIZE: '2', AUDIT_FLUSH_MS: '600000', AUDIT_BATCH_SIZE: '1000' },
      stores: gw.stores,
      overrides: { plugins: pluginsWithTestPrincipal() },
    });
    try {
      const who = principalHeader({ tenant: 'dropper', subject: 'x' });
      expect(await statuses(`${dropping.url}/v1/metrics`, 5, { headers: who })).toEqual([200, 200, 200, 200, 200]);
      const { audit, metrics } = dropping.app.weir.deps;
      expect(audit.writer.depth).toBe(2);
      expect((await metrics.audit.dropped.get()).values[0]!.value).toBe(3);
    } finally {
      await dropping.close();
    }
    const rows = await gw.stores.metadata.query<{ n: string }>(`SELECT count(*) AS n FROM audit_events WHERE tenant = 'dropper'`, []);
    expect(rows.rows[0]!.n).toBe('2');
  });

  it('block mode holds new requests back while the buffer is full, then answers 503', async () => {
    const blocking = await startGateway('audit_block', {
      env: { AUDIT_OVERFLOW: 'block', AUDIT_BUFFER_SIZE: '2', AUDIT_FLUSH_MS: '600000', AUDIT_BATCH_SIZE: '1000', AUDIT_BLOCK_TIMEOUT_MS: '300' },
      stores: gw.stores,
      overrides: { plugins: pluginsWithTestPrincipal() },
    });
    try {
      const who = principalHeader({ tenant: 'blocker', subject: 'x' });
      expect(await statuses(`${blocking.url}/v1/metrics`, 2, { headers: who })).toEqual([200, 200]);
      const started = Date.now();
      const refused = await fetch(`${blocking.url}/v1/metrics`, { headers: who });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      // A flush frees the slots; a waiting request then goes through.
      const waiting = fetch(`${blocking.url}/v1/metrics`, { headers: who });
      await new Promise((r) => setTimeout(r, 50));
      await blocking.app.weir.deps.audit.writer.flush();
      expect((await waiting).status).toBe(200);
    } finally {
      await blocking.close();
    }
    const rows = await gw.stores.metadata.query<{ n: string }>(`SELECT count(*) AS n FROM audit_events WHERE tenant = 'blocker'`, []);
    expect(rows.rows[0]!.n).toBe('3');
  });
});
