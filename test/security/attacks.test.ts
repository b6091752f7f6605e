import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { operations, type OperationInfo } from '../../generated/registry.js';
import { newApiKey } from '../../src/identity/api-key-format.js';
import { createAdminKey } from '../../src/identity/bootstrap.js';
import type { Identity } from '../../src/identity/index.js';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { AUDIENCE, claims, HMAC_SECRET, jwksServer, keyPair, sign, unsecured, type KeyPair } from './idp.js';

/**
 * A hostile client against the auth and authz plugins: forged, expired and misdirected tokens,
 * broken and dead API keys, and other tenants' resources. Every refusal must be the right status,
 * a problem+json document, and must not contain the credential, in the response or in any log line.
 */
const ISS = { rsa: 'https://idp-rsa.test', jwks: 'https://idp-jwks.test', hmac: 'https://idp-hmac.test', eddsa: 'https://idp-eddsa.test' };

let gw: TestGateway;
let identity: Identity;
let rsa: KeyPair;
let ec: KeyPair;
let ed: KeyPair;
let jwks: Awaited<ReturnType<typeof jwksServer>>;
const logLines: string[] = [];
const secretsSent: string[] = [];
let acmeAdmin: string;
let globexKeyId: string;

// Resources of another tenant, standing in for the capabilities that will register real resolvers.
const GLOBEX = {
  dataset: 'ds_GlobexData0001',
  website: '123e4567-e89b-12d3-a456-426614174000',
  export: 'ex_GlobexExport001',
  'ingest-job': 'job_GlobexJob00001',
  upload: 'up_GlobexUpload001',
};
const globexOwned = (id: string) => async (asked: string) => (asked === id ? { tenant: 'globex' } : undefined);

beforeAll(async () => {
  rsa = await keyPair('RS256', 'rsa-1');
  ec = await keyPair('ES256', 'ec-1');
  ed = await keyPair('EdDSA', 'ed-1');
  jwks = await jwksServer([ec.publicJwk]);
  const logStream = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  gw = await startGateway('attacks', {
    env: {
      JWT_CLOCK_SKEW_S: '5',
      JWT_ISSUERS: JSON.stringify([
        { issuer: ISS.rsa, audience: AUDIENCE, algorithms: ['RS256'], keys: [{ pem: rsa.publicPem, kid: rsa.kid }] },
        { issuer: ISS.jwks, audience: AUDIENCE, algorithms: ['ES256'], jwksUrl: jwks.url, jwksCooldownMs: 300 },
        { issuer: ISS.hmac, audience: [AUDIENCE], algorithms: ['HS256'], secret: HMAC_SECRET },
        { issuer: ISS.eddsa, audience: AUDIENCE, algorithms: ['EdDSA'], keys: [ed.publicJwk] },
      ]),
    },
    overrides: {
      logger: pino({ level: 'trace' }, logStream),
      resourceResolvers: Object.fromEntries(Object.entries(GLOBEX).map(([type, id]) => [type, globexOwned(id)])),
    },
  });
  identity = gw.app.weir.deps.identity;
  acmeAdmin = (await createAdminKey(identity, 'acme')).secret;
  globexKeyId = (await createAdminKey(identity, 'globex')).record.keyId;
});
afterAll(async () => {
  await gw?.close();
  await jwks?.close();
});

/** The parts of a credential that must never show: the whole, a JWT's segments, an API key's secret. */
function fragments(secret: string): string[] {
  const parts = secret.startsWith('weir_') ? [secret.split('_')[3] ?? ''] : secret.split('.');
  return [secret, ...parts].filter((p) => p.length >= 12);
}

async function expectRefused(res: Response, status: number, sent: string): Promise<Record<string, any>> {
  secretsSent.push(sent);
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const headers = [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
  for (const f of fragments(sent)) {
    expect(text).not.toContain(f);
    expect(headers).not.toContain(f);
  }
  if (status === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="weir"/);
  return JSON.parse(text) as Record<string, any>;
}

const withBearer = (token: string, path = '/v1/api-keys') => fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
const withKey = (key: string, path = '/v1/api-keys') => fetch(`${gw.url}${path}`, { headers: { 'X-API-Key': key } });

describe('bearer tokens', () => {
  it('accepts a valid token from each configured issuer (the control for every attack below)', async () => {
    const hmac = new TextEncoder().encode(HMAC_SECRET);
    for (const token of [
      await sign(rsa, claims({ iss: ISS.rsa })),
      await sign(ec, claims({ iss: ISS.jwks })),
      await sign(hmac, claims({ iss: ISS.hmac })),
      await sign(ed, claims({ iss: ISS.eddsa })),
    ]) {
      expect((await withBearer(token)).status).toBe(200);
    }
  });

  const cases: Array<[string, () => Promise<string>, RegExp]> = [
    ['alg: none', async () => unsecured(claims({ iss: ISS.rsa })), /algorithm|well-formed/],
    ['alg: none with a signature', async () => `${unsecured(claims({ iss: ISS.rsa }))}c2lnbmF0dXJl`, /algorithm|well-formed/],
    ['HS256 signed with the issuer\'s RSA public key', async () => sign(new TextEncoder().encode(rsa.publicPem), claims({ iss: ISS.rsa }), { kid: rsa.kid }), /algorithm/],
    ['HS256 signed with the ES256 issuer\'s public JWK', async () => sign(new TextEncoder().encode(JSON.stringify(ec.publicJwk)), claims({ iss: ISS.jwks }), { kid: ec.kid }), /algorithm/],
    ['RS256 token claiming the ES256 issuer', async () => sign(rsa, claims({ iss: ISS.jwks })), /algorithm/],
    ['expired', async () => sign(rsa, claims({ iss: ISS.rsa, exp: Math.floor(Date.now() / 1000) - 60 })), /expired/],
    ['not yet valid', async () => sign(rsa, claims({ iss: ISS.rsa, nbf: Math.floor(Date.now() / 1000) + 600 })), /not valid yet/],
    ['from an issuer nobody configured', async () => sign(rsa, claims({ iss: 'https://evil.example' })), /issuer this gateway trusts/],
    ['without an issuer', async () => sign(rsa, claims()), /issuer this gateway trusts/],
    ['for another audience', async () => sign(rsa, claims({ iss: ISS.rsa, aud: 'another-api' })), /aud/],
    ['without exp', async () => sign(rsa, { ...claims({ iss: ISS.rsa }), exp: undefined }), /required claim/],
    ['with an unknown kid', async () => sign(ec, claims({ iss: ISS.jwks }), { kid: 'ec-unknown' }), /kid/],
    ['signed by another key under the right kid', async () => sign(await keyPair('RS256', rsa.kid), claims({ iss: ISS.rsa })), /signature/],
    ['with a tampered payload', async () => {
      const [h, , s] = (await sign(rsa, claims({ iss: ISS.rsa, roles: ['viewer'] }))).split('.');
      return `${h}.${Buffer.from(JSON.stringify(claims({ iss: ISS.rsa, roles: ['admin'] }))).toString('base64url')}.${s}`;
    }, /signature/],
    ['HS256 with the wrong secret', async () => sign(new TextEncoder().encode('another-secret-that-is-32-bytes-long!!'), claims({ iss: ISS.hmac })), /signature/],
    ['from the gateway\'s own issuer, signed by an outsider', async () => sign(await keyPair('EdDSA', 'weir-forged'), claims({ iss: 'urn:weir:gateway' })), /kid|signature/],
    ['without a tenant', async () => sign(rsa, { ...claims({ iss: ISS.rsa }), tenant: undefined }), /tenant/],
    ['garbage', async () => 'not-a-jwt', /well-formed/],
    ['three garbage segments', async () => 'aGVsbG8.d29ybGQ.IQ', /well-formed/],
    ['longer than any real token', async () => `${'a'.repeat(9_000)}.b.c`, /well-formed/],
  ];

  it.each(cases)('refuses a token %s: 401, problem+json, nothing echoed', async (_name, make, detail) => {
    const token = await make();
    const body = await expectRefused(await withBearer(token), 401, token);
    expect(body.detail).toMatch(detail);
    expect(body.type).toBe('https://weir.dev/problems/invalid-credentials');
  });

  it('refuses an empty or misspelt Authorization header', async () => {
    await expectRefused(await fetch(`${gw.url}/v1/api-keys`, { headers: { authorization: 'Bearer ' } }), 401, 'Bearer');
    const basic = await fetch(`${gw.url}/v1/api-keys`, { headers: { authorization: 'Basic YWxpY2U6c2VjcmV0' } });
    expect((await expectRefused(basic, 401, 'YWxpY2U6c2VjcmV0')).detail).toMatch(/No credentials/);
  });

  it('refetches a JWKS on an unknown kid, at most once per cool-down, and then accepts a new key', async () => {
    expect((await withBearer(await sign(ec, claims({ iss: ISS.jwks })))).status).toBe(200);
    await new Promise((r) => setTimeout(r, 350));
    const before = jwks.fetches();
    for (let i = 0; i < 5; i++) expect((await withBearer(await sign(ec, claims({ iss: ISS.jwks, jti: `x${i}` }), { kid: 'ec-unknown' }))).status).toBe(401);
    expect(jwks.fetches() - before).toBe(1);
    const rotated = await keyPair('ES256', 'ec-2');
    jwks.keys.push(rotated.publicJwk);
    await new Promise((r) => setTimeout(r, 350));
    expect((await withBearer(await sign(rotated, claims({ iss: ISS.jwks })))).status).toBe(200);
    expect(jwks.fetches() - before).toBe(2);
  });
});

describe('API keys', () => {
  it('refuses malformed keys without looking them up', async () => {
    const lookups = vi.spyOn(identity.apiKeys, 'get');
    const valid = (await identity.apiKeys.create({ tenant: 'acme', name: 'victim', roles: ['admin'], scopes: [], expiresAt: null, createdBy: 'test' })).secret;
    const malformed = [
      'hello',
      valid.slice(0, -1),
      `${valid.slice(0, -1)}${valid.endsWith('a') ? 'b' : 'a'}`,
      valid.replace(/_([0-9A-Za-z])/, (_m, c: string) => `_${c === 'x' ? 'y' : 'x'}`),
      valid.replace('weir_live_', 'weir_test_'),
      newApiKey('test').key,
      `${valid} ${valid}`,
    ];
    for (const key of malformed) {
      const body = await expectRefused(await withKey(key), 401, key);
      expect(body.detail).toMatch(/malformed/);
    }
    expect(lookups).not.toHaveBeenCalled();
    lookups.mockRestore();
  });

  it('refuses unknown, wrong-secret, revoked and expired keys', async () => {
    const unknown = newApiKey('live').key;
    expect((await expectRefused(await withKey(unknown), 401, unknown)).detail).toBe('The API key is not valid.');

    const real = (await identity.apiKeys.create({ tenant: 'acme', name: 'real', roles: ['admin'], scopes: [], expiresAt: null, createdBy: 'test' })).record;
    const impostor = newApiKey('live', real.keyId.slice(4)).key;
    expect((await expectRefused(await withKey(impostor), 401, impostor)).detail).toBe('The API key is not valid.');

    const revoked = await identity.apiKeys.create({ tenant: 'acme', name: 'revoked', roles: ['admin'], scopes: [], expiresAt: null, createdBy: 'test' });
    expect((await withKey(revoked.secret)).status).toBe(200);
    await identity.apiKeys.revoke('acme', revoked.record.keyId);
    expect((await expectRefused(await withKey(revoked.secret), 401, revoked.secret)).detail).toBe('The API key has been revoked.');

    const expired = await identity.apiKeys.create({ tenant: 'acme', name: 'expired', roles: ['admin'], scopes: [], expiresAt: new Date(Date.now() - 1000), createdBy: 'test' });
    expect((await expectRefused(await withKey(expired.secret), 401, expired.secret)).detail).toBe('The API key has expired.');
  });

  it('never lets an API key satisfy MFA', async () => {
    const res = await fetch(`${gw.url}/v1/audit`, { headers: { 'X-API-Key': acmeAdmin } });
    expect((await expectRefused(res, 401, acmeAdmin)).type).toBe('https://weir.dev/problems/mfa-required');
  });
});

describe('tenants', () => {
  const resourceOps = (Object.values(operations) as OperationInfo[]).filter((op) => op.authz?.id);
  const idFor = (type: string) => (type === 'api-key' ? globexKeyId : GLOBEX[type as keyof typeof GLOBEX]);
  const missingFor = (type: string) => (type === 'api-key' ? 'key_Zz9Zz9Zz' : `${idFor(type)!.slice(0, -4)}Zzzz`);

  it('covers every resource-bearing operation of the spec', () => {
    expect(resourceOps.length).toBeGreaterThanOrEqual(25);
    for (const op of resourceOps) expect(idFor(op.authz!.resource), op.operationId).toBeDefined();
  });

  it.each(resourceOps.map((op) => [op.operationId, op] as const))("%s: another tenant's resource answers 404, exactly like a missing one", async (_id, op) => {
    const url = (id: string) => `${gw.url}${op.path.replace(`{${op.authz!.id}}`, id)}`;
    const headers: Record<string, string> = { 'X-API-Key': acmeAdmin };
    if (op.requireMfa) {
      headers.authorization = `Bearer ${await sign(rsa, claims({ iss: ISS.rsa, amr: ['pwd', 'otp'] }))}`;
      delete headers['X-API-Key'];
    }
    const foreign = await fetch(url(idFor(op.authz!.resource)!), { method: op.method.toUpperCase(), headers });
    const missing = await fetch(url(missingFor(op.authz!.resource)), { method: op.method.toUpperCase(), headers });
    expect([foreign.status, missing.status]).toEqual([404, 404]);
    if (op.method !== 'head') {
      const strip = (b: any) => ({ ...b, instance: undefined });
      expect(strip(await foreign.json())).toEqual(strip(await missing.json()));
    }
  });

  it('a tenant claim cannot be widened: a token for acme does not reach globex resources', async () => {
    const token = await sign(rsa, claims({ iss: ISS.rsa, tenant: 'acme', roles: ['admin'] }));
    const res = await fetch(`${gw.url}/v1/api-keys/${globexKeyId}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(404);
  });
});

describe('logs', () => {
  it('record each refusal, and no line holds a credential that was sent', async () => {
    const refusals = logLines.filter((l) => l.includes('"auth: refused"'));
    expect(refusals.length).toBeGreaterThanOrEqual(30);
    expect(refusals.some((l) => l.includes('"reason":"bearer:expired"'))).toBe(true);
    expect(refusals.some((l) => l.includes('"keyPrefix":"weir_live_'))).toBe(true);
    for (const secret of [...secretsSent, acmeAdmin]) {
      for (const f of fragments(secret)) expect(logLines.filter((l) => l.includes(f))).toEqual([]);
    }
  });
});
