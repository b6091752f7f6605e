import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminKey } from '../../src/identity/bootstrap.js';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { testStoreMode } from '../helpers/store-env.js';
import { AUDIENCE, claims, HMAC_SECRET, sign } from './idp.js';
import { spawnServer, type ServerProcess } from '../helpers/server-process.js';

/**
 * A grant made through POST /v1/datasets/{id}/access on one gateway takes effect on another that
 * shares the stores, within seconds (Casbin watcher over the shared-state pub/sub); so does an API
 * key revocation. With real stores the second gateway is its own process on the same PostgreSQL
 * and Redis; with embedded stores (one process by nature) it is a second app sharing the stores.
 */
const real = testStoreMode() === 'real';
const ISSUER = 'https://idp.grants.test';
const DATASET = 'ds_SharedDataset0001';
const OWNERS: { dataset: Record<string, string> } = { dataset: { [DATASET]: 'acme', ds_GlobexDataset001: 'globex' } };
const env = {
  JWT_ISSUERS: JSON.stringify([{ issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], secret: HMAC_SECRET }]),
  // Longer than the test waits: only the pushed change can make the second gateway see it in time.
  AUTH_CACHE_TTL_MS: '60000',
  AUTHZ_RELOAD_MS: '600000',
};
const resourceResolvers = { dataset: async (id: string) => (OWNERS.dataset[id] ? { tenant: OWNERS.dataset[id]! } : undefined) };

let a: TestGateway;
let b: { url: string; close(): Promise<unknown> };
let bProcess: ServerProcess | undefined;
let alice: string;
let bob: string;

const token = (sub: string, extra: Record<string, unknown> = {}) => sign(new TextEncoder().encode(HMAC_SECRET), claims({ iss: ISSUER, sub, roles: [], ...extra }));
const accessUrl = (base: string, id = DATASET) => `${base}/v1/datasets/${id}/access`;
const getAccess = (base: string, bearer: string, id = DATASET) => fetch(accessUrl(base, id), { headers: { authorization: `Bearer ${bearer}` } });
const postAccess = (base: string, bearer: string, body: unknown) =>
  fetch(accessUrl(base), { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** Polls until `check` holds; answers how long it took. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

beforeAll(async () => {
  a = await startGateway('grants_a', { env, overrides: { resourceResolvers } });
  if (real) {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'weir-grants-b-'));
    bProcess = await spawnServer('test/security/fixtures/serve-with-resources.ts', {
      ...env,
      DATABASE_URL: a.config.database.url!,
      DATABASE_SCHEMA: a.config.database.schema,
      REDIS_URL: a.config.redis.url!,
      REDIS_KEY_PREFIX: a.config.redis.keyPrefix,
      CLICKHOUSE_DATABASE: a.config.clickhouse.database,
      DATA_DIR: dataDir,
      WEIR_FIXTURE_RESOURCES: JSON.stringify(OWNERS),
    });
    b = { url: bProcess.url, close: async () => (await bProcess!.stop(), rmSync(dataDir, { recursive: true, force: true })) };
  } else {
    b = await startGateway('grants_b', { env, stores: a.stores, overrides: { resourceResolvers } });
  }
  alice = await token('alice', { roles: ['admin'], amr: ['pwd', 'otp'] });
  bob = await token('bob');
}, 120_000);
afterAll(async () => {
  await b?.close();
  await a?.close();
});

describe(`grants across gateways (${real ? 'a second process on the real PostgreSQL and Redis' : 'a second app on the shared embedded stores'})`, () => {
  it('a grant made on one gateway lets its grantee in on the other within seconds, and a revoke shuts them out again', async () => {
    expect((await getAccess(b.url, bob)).status).toBe(403);
    const granted = await postAccess(a.url, alice, { grant: [{ principal: { type: 'subject', id: 'bob' }, actions: ['admin'] }] });
    expect(granted.status, await granted.clone().text()).toBe(200);
    expect(((await granted.json()) as any).grants).toEqual([
      expect.objectContaining({ principal: { type: 'subject', id: 'bob' }, actions: ['admin'], created_by: 'alice', id: expect.stringMatching(/^gr_/) }),
    ]);
    expect((await getAccess(a.url, bob)).status).toBe(200);
    const took = await within(5_000, async () => (await getAccess(b.url, bob)).status === 200);
    expect(took).toBeLessThan(5_000);
    const seenOnB = (await (await getAccess(b.url, bob)).json()) as any;
    expect(seenOnB.grants.map((g: any) => g.principal.id)).toEqual(['bob']);

    const revoked = await postAccess(a.url, alice, { revoke: [{ principal: { type: 'subject', id: 'bob' } }] });
    expect(revoked.status).toBe(200);
    expect(((await revoked.json()) as any).grants).toEqual([]);
    await within(5_000, async () => (await getAccess(b.url, bob)).status === 403);
  }, 30_000);

  it('a revoked API key stops working on the other gateway within seconds, though its cache would keep it for a minute', async () => {
    const { secret, record } = await createAdminKey(a.app.weir.deps.identity, 'acme');
    const onB = () => fetch(`${b.url}/v1/api-keys`, { headers: { 'X-API-Key': secret } });
    expect((await onB()).status).toBe(200);
    const res = await fetch(`${a.url}/v1/api-keys/${record.keyId}`, { method: 'DELETE', headers: { authorization: `Bearer ${alice}` } });
    expect(res.status).toBe(204);
    await within(5_000, async () => (await onB()).status === 401);
  }, 30_000);

  it('grants are per tenant: an admin of another tenant sees the dataset as missing on both gateways', async () => {
    const outsider = await token('mallory', { tenant: 'globex', roles: ['admin'], amr: ['otp'] });
    for (const base of [a.url, b.url]) {
      expect((await getAccess(base, outsider)).status).toBe(404);
      expect((await postAccess(base, outsider, { grant: [{ principal: { type: 'subject', id: 'mallory' }, actions: ['admin'] }] })).status).toBe(404);
    }
  });

  it('a grant lapses at its expires_at', async () => {
    const carol = await token('carol');
    const expiresAt = new Date(Date.now() + 2_000).toISOString();
    const res = await postAccess(a.url, alice, { grant: [{ principal: { type: 'subject', id: 'carol' }, actions: ['admin'], expires_at: expiresAt }] });
    expect(res.status).toBe(200);
    expect((await getAccess(a.url, carol)).status).toBe(200);
    await new Promise((r) => setTimeout(r, Date.parse(expiresAt) - Date.now() + 1_200));
    expect((await getAccess(a.url, carol)).status).toBe(403);
  });

  it('checks row and field rules when they are granted', async () => {
    const bad = await postAccess(a.url, alice, {
      grant: [
        { principal: { type: 'role', id: 'analyst' }, actions: ['query'], row_rule: 'region == principal.region &&' },
        { principal: { type: 'role', id: 'viewer' }, actions: ['read'], field_rules: { masks: [{ column: 'a', mask: 'hash' }, { column: 'a', mask: 'null' }] } },
      ],
    });
    expect(bad.status).toBe(400);
    const problem = (await bad.json()) as any;
    expect(problem.errors.map((e: any) => e.pointer)).toEqual(['#/grant/0/row_rule', '#/grant/1/field_rules']);
    const good = await postAccess(a.url, alice, {
      grant: [{ principal: { type: 'role', id: 'analyst' }, actions: ['read', 'query'], row_rule: "region == principal.region && amount < 1000", field_rules: { deny: ['ip'], masks: [{ column: 'email', mask: 'hash' }] } }],
    });
    expect(good.status).toBe(200);
    const rules = a.app.weir.deps.access.authorizer;
    expect(rules.rulesOfType('p2')).toContainEqual(['role:analyst', 'acme', `dataset:${DATASET}`, 'region == principal.region && amount < 1000']);
    const fields = rules.rulesOfType('p3').find(([sub, dom, obj]) => sub === 'role:analyst' && dom === 'acme' && obj === `dataset:${DATASET}`);
    expect(JSON.parse(fields![3]!)).toEqual({ deny: ['ip'], masks: [{ column: 'email', mask: 'hash' }] });
  });
});
