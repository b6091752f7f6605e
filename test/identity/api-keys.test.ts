import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import spec from '../../generated/openapi.json' with { type: 'json' };
import { newApiKey } from '../../src/identity/api-key-format.js';
import { bootstrapIfEmpty, createAdminKey } from '../../src/identity/bootstrap.js';
import type { Identity } from '../../src/identity/index.js';
import { startGateway, type TestGateway } from '../helpers/app.js';

let gw: TestGateway;
let identity: Identity;
let admin: { 'X-API-Key': string };
let otherAdmin: { 'X-API-Key': string };

beforeAll(async () => {
  gw = await startGateway('api_keys');
  identity = gw.app.weir.deps.identity;
  admin = { 'X-API-Key': (await createAdminKey(identity, 'acme')).secret };
  otherAdmin = { 'X-API-Key': (await createAdminKey(identity, 'globex')).secret };
});
afterAll(async () => {
  await gw?.close();
});

const call = (method: string, path: string, headers: Record<string, string>, body?: unknown) =>
  fetch(`${gw.url}${path}`, {
    method,
    headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const createKey = async (headers: Record<string, string>, body: Record<string, unknown>) => {
  const res = await call('POST', '/v1/api-keys', headers, body);
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as Record<string, any>;
};
const status = async (headers: Record<string, string>) => (await call('GET', '/v1/api-keys', headers)).status;

describe('bootstrap', () => {
  it('makes the first admin key once per store, and never again once credentials exist', async () => {
    // startGateway's boot already bootstrapped this store; a second attempt does nothing.
    await expect(bootstrapIfEmpty(identity, gw.stores.metadata, gw.app.weir.deps.logger)).resolves.toBeUndefined();
    const keys = (await (await call('GET', '/v1/api-keys?limit=1000', otherAdmin)).json()) as any;
    expect(keys.items.map((k: any) => k.tenant)).toEqual(['globex']);
  });
});

describe('POST /v1/api-keys', () => {
  it('answers the secret once, in the spec format, with no-store; lists never show it', async () => {
    const res = await call('POST', '/v1/api-keys', admin, { name: 'nightly ingest', roles: ['ingest-writer'], scopes: ['datasets:write'], ttl_days: 90 });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const created = (await res.json()) as any;
    expect(created.secret).toMatch(/^weir_live_[0-9A-Za-z]{8}_[0-9A-Za-z]{32}_[0-9A-Za-z]{6}$/);
    expect(created).toMatchObject({ name: 'nightly ingest', tenant: 'acme', roles: ['ingest-writer'], revoked: false, last_used_at: null });
    expect(created.secret.startsWith(`${created.prefix}_`)).toBe(true);
    expect(Date.parse(created.expires_at) - Date.parse(created.created_at)).toBe(90 * 86_400_000);
    const list = await (await call('GET', '/v1/api-keys', admin)).text();
    expect(list).toContain(created.key_id);
    expect(list).not.toContain(created.secret.split('_')[3]);
    expect(list).not.toMatch(/secret|hash/);
    const { rows } = await gw.stores.metadata.query<{ secret_hash: string }>('SELECT secret_hash FROM api_keys WHERE key_id = $1', [created.key_id]);
    expect(rows[0]!.secret_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0]!.secret_hash).not.toContain(created.secret.split('_')[3]);
  });

  it("refuses roles and scopes the caller doesn't hold (403), and a past expiry (400)", async () => {
    const analyst = await createKey(admin, { name: 'analyst', roles: ['analyst'], scopes: ['datasets:read'] });
    // The analyst may not create keys at all; an admin holds analyst through role inheritance.
    expect((await call('POST', '/v1/api-keys', { 'X-API-Key': analyst.secret }, { name: 'x' })).status).toBe(403);
    const limited = await createKey(admin, { name: 'limited admin', roles: ['admin'], scopes: ['datasets:read'] });
    const up = { 'X-API-Key': limited.secret };
    expect((await call('POST', '/v1/api-keys', up, { name: 'x', roles: ['analyst'], scopes: ['datasets:read'] })).status).toBe(201);
    const badScope = await call('POST', '/v1/api-keys', up, { name: 'x', scopes: ['datasets:write'] });
    expect(badScope.status).toBe(403);
    expect(((await badScope.json()) as any).detail).toContain('datasets:write');
    expect((await call('POST', '/v1/api-keys', up, { name: 'x', roles: ['platform-root'] })).status).toBe(403);
    expect((await call('POST', '/v1/api-keys', admin, { name: 'x', expires_at: '2001-01-01T00:00:00Z' })).status).toBe(400);
    expect((await call('POST', '/v1/api-keys', admin, { name: 'x', expires_at: '2999-01-01T00:00:00Z', ttl_days: 3 })).status).toBe(400);
  });
});

describe('GET /v1/api-keys', () => {
  it("pages through the caller's tenant only, newest first", async () => {
    const made = [];
    for (let i = 0; i < 3; i++) made.push((await createKey(otherAdmin, { name: `page ${i}` })).key_id);
    const seen: string[] = [];
    const created: number[] = [];
    let cursor: string | null = null;
    do {
      const page = (await (await call('GET', `/v1/api-keys?limit=2${cursor ? `&cursor=${cursor}` : ''}`, otherAdmin)).json()) as any;
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((k: any) => k.key_id));
      created.push(...page.items.map((k: any) => Date.parse(k.created_at)));
      expect(page.items.every((k: any) => k.tenant === 'globex')).toBe(true);
      cursor = page.next_cursor;
    } while (cursor);
    // Newest first (keys made in the same millisecond tie-break on their id).
    expect(new Set(seen.slice(0, 3))).toEqual(new Set(made));
    expect(created).toEqual([...created].sort((a, b) => b - a));
    expect(new Set(seen).size).toBe(seen.length);
    expect((await call('GET', '/v1/api-keys?cursor=not-a-cursor', otherAdmin)).status).toBe(400);
  });

  it('shows last_used_at once the batched write has run, not on every request', async () => {
    const key = await createKey(admin, { name: 'used', roles: ['admin'] });
    expect(await status({ 'X-API-Key': key.secret })).toBe(200);
    const lastUsed = async () => ((await (await call('GET', '/v1/api-keys?limit=1000', admin)).json()) as any).items.find((k: any) => k.key_id === key.key_id).last_used_at;
    expect(await lastUsed()).toBeNull();
    await identity.apiKeys.flushLastUsed();
    expect(Date.now() - Date.parse(await lastUsed())).toBeLessThan(60_000);
  });
});

describe('the per-request check', () => {
  it('refuses a forged secret for a key id whose real key was just accepted and cached', async () => {
    const key = await createKey(otherAdmin, { name: 'cached', roles: ['admin'] });
    expect(await status({ 'X-API-Key': key.secret })).toBe(200);
    const publicId = (key.secret as string).split('_')[2]!;
    const forged = newApiKey('live', publicId).key;
    expect(forged).not.toBe(key.secret);
    expect(await status({ 'X-API-Key': forged })).toBe(401);
    // and the forgery did not displace the real key's remembered check
    expect(await status({ 'X-API-Key': key.secret })).toBe(200);
    expect(await status({ 'X-API-Key': forged })).toBe(401);
  });
});

describe('DELETE /v1/api-keys/{keyId} and rotation', () => {
  it('revokes at once; revoking again is a no-op; another tenant gets the same 404 as a missing key', async () => {
    const key = await createKey(admin, { name: 'to revoke', roles: ['analyst'] });
    const headers = { 'X-API-Key': key.secret };
    expect(await status(headers)).toBe(403);
    const foreign = await call('DELETE', `/v1/api-keys/${key.key_id}`, otherAdmin);
    const missing = await call('DELETE', '/v1/api-keys/key_Zz9Zz9Zz', otherAdmin);
    expect([foreign.status, missing.status]).toEqual([404, 404]);
    const strip = (b: any) => ({ ...b, instance: undefined });
    expect(strip(await foreign.json())).toEqual(strip(await missing.json()));
    expect(await status(headers)).toBe(403);
    expect((await call('DELETE', `/v1/api-keys/${key.key_id}`, admin)).status).toBe(204);
    expect((await call('DELETE', `/v1/api-keys/${key.key_id}`, admin)).status).toBe(204);
    const refused = await call('GET', '/v1/api-keys', headers);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as any).detail).toBe('The API key has been revoked.');
    const listed = ((await (await call('GET', '/v1/api-keys?limit=1000', admin)).json()) as any).items.find((k: any) => k.key_id === key.key_id);
    expect(listed.revoked).toBe(true);
  });

  it('rotates: a new secret with the same grants; the old key works through its grace period only; a second rotation is 409', async () => {
    const old = await createKey(admin, { name: 'rotating', roles: ['admin'], scopes: ['datasets:read'], ttl_days: 10 });
    const res = await call('POST', `/v1/api-keys/${old.key_id}/rotate`, admin, { grace_seconds: 60 });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const fresh = (await res.json()) as any;
    expect(fresh).toMatchObject({ name: 'rotating', roles: ['admin'], scopes: ['datasets:read'], created_by: expect.stringMatching(/^key_/) });
    expect(fresh.key_id).not.toBe(old.key_id);
    expect(Date.parse(fresh.expires_at) - Date.parse(fresh.created_at)).toBe(10 * 86_400_000);
    expect(await status({ 'X-API-Key': fresh.secret })).toBe(200);
    expect(await status({ 'X-API-Key': old.secret })).toBe(200);
    expect((await call('POST', `/v1/api-keys/${old.key_id}/rotate`, admin, {})).status).toBe(409);

    const quick = await createKey(admin, { name: 'no grace', roles: ['admin'] });
    const rotated = await call('POST', `/v1/api-keys/${quick.key_id}/rotate`, admin, { grace_seconds: 0 });
    expect(rotated.status).toBe(201);
    expect(((await rotated.json()) as any).expires_at).toBeNull();
    expect(await status({ 'X-API-Key': quick.secret })).toBe(401);
  });

  it('a key manager may rotate itself (ABAC: the key is its own subject) but not a key somebody else made', async () => {
    const manager = await createKey(admin, { name: 'self rotating', roles: ['key-manager'] });
    const other = await createKey(admin, { name: 'not mine', roles: ['analyst'] });
    const headers = { 'X-API-Key': manager.secret };
    expect((await call('POST', `/v1/api-keys/${other.key_id}/rotate`, headers, {})).status).toBe(403);
    expect((await call('POST', `/v1/api-keys/${manager.key_id}/rotate`, headers, {})).status).toBe(201);
  });
});

describe('MFA', () => {
  it('an operation marked x-weir-require-mfa refuses an API key, whatever its roles', async () => {
    const mfaOps = Object.entries((spec as any).paths).flatMap(([p, item]: [string, any]) =>
      Object.entries(item).filter(([, op]: [string, any]) => op?.['x-weir-require-mfa']).map(([m]) => [m, p] as const),
    );
    expect(mfaOps.length).toBeGreaterThan(0);
    for (const [method, path] of mfaOps) {
      const res = await call(method.toUpperCase(), path.replace('{datasetId}', 'ds_01J9ZK3M5X8Q2V7N4B'), admin);
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="insufficient_user_authentication"');
      expect(((await res.json()) as any).type).toBe('https://weir.dev/problems/mfa-required');
    }
  });
});
