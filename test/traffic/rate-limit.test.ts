import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { testStoreMode } from '../helpers/store-env.js';
import { pluginsWithTestPrincipal, principalHeader } from '../helpers/test-principal.js';
import { statuses } from './helpers.js';

// probe: 3 at once, then one every 2 s; default: 2 at once; one tenant gets more on default.
const env = {
  RATE_LIMIT_POLICIES: JSON.stringify({ probe: { burst: 3, rate: 0.5 }, default: { burst: 2, rate: 0.5 } }),
  RATE_LIMIT_OVERRIDES: JSON.stringify({ 'tenant:big': { default: { burst: 5, rate: 0.5 } } }),
};

let gw: TestGateway;
let proxied: TestGateway;
beforeAll(async () => {
  gw = await startGateway('rate_limit', { env, overrides: { plugins: pluginsWithTestPrincipal() } });
  proxied = await startGateway('rate_limit_proxy', { env: { ...env, TRUST_PROXY: '127.0.0.1' }, stores: gw.stores, overrides: { plugins: pluginsWithTestPrincipal() } });
});
afterAll(async () => {
  await proxied?.close();
  await gw?.close();
});

const unique = () => `u${Math.random().toString(36).slice(2, 10)}`;

describe('rate limits', () => {
  it('sends RateLimit-Policy and RateLimit (draft-11 structured fields), then 429 problem+json with Retry-After and the policy', async () => {
    const who = principalHeader({ tenant: 't1', subject: unique() });
    const seen = [];
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${gw.url}/v1/metrics`, { headers: who });
      await res.arrayBuffer();
      seen.push([res.status, res.headers.get('ratelimit-policy'), res.headers.get('ratelimit')]);
    }
    expect(seen).toEqual([
      [200, '"default";q=2;w=4', '"default";r=1;t=2'],
      [200, '"default";q=2;w=4', '"default";r=0;t=4'],
    ]);
    const limited = await fetch(`${gw.url}/v1/metrics`, { headers: who });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(limited.headers.get('retry-after')).toBe('2');
    expect(limited.headers.get('ratelimit')).toBe('"default";r=0;t=4');
    const body = (await limited.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 429, policy: 'default', operationId: 'getUsageMetrics', type: 'https://weir.dev/problems/rate-limited' });
    expect(body.detail).toMatch(/burst of 2 and 0.5 requests per second; retry in 2 s/);
  });

  it('keys authenticated callers by principal, each with its own bucket, and applies tenant overrides', async () => {
    const a = principalHeader({ tenant: 't1', subject: unique() });
    const b = principalHeader({ tenant: 't1', subject: unique() });
    expect(await statuses(`${gw.url}/v1/metrics`, 3, { headers: a })).toEqual([200, 200, 429]);
    expect(await statuses(`${gw.url}/v1/metrics`, 3, { headers: b })).toEqual([200, 200, 429]);
    const big = principalHeader({ tenant: 'big', subject: unique() });
    expect(await statuses(`${gw.url}/v1/metrics`, 6, { headers: big })).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it('keys API-key callers by the key, whichever subject it belongs to', async () => {
    const credentialId = unique();
    const one = principalHeader({ tenant: 't1', subject: unique(), authMethod: 'api_key', credentialId });
    const two = principalHeader({ tenant: 't1', subject: unique(), authMethod: 'api_key', credentialId });
    expect(await statuses(`${gw.url}/v1/metrics`, 2, { headers: one })).toEqual([200, 200]);
    expect(await statuses(`${gw.url}/v1/metrics`, 1, { headers: two })).toEqual([429]);
  });

  it('keys anonymous callers by socket address: X-Forwarded-For from an untrusted peer changes nothing', async () => {
    const results = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${gw.url}/healthz`, { headers: { 'x-forwarded-for': `198.51.100.${i + 1}` } });
      results.push(res.status);
    }
    expect(results).toEqual([200, 200, 200, 429]);
  });

  it('believes X-Forwarded-For from a trusted proxy (TRUST_PROXY): each client gets its own bucket', async () => {
    const client = (n: number) => ({ headers: { 'x-forwarded-for': `203.0.113.${n}, 127.0.0.1` } });
    expect(await statuses(`${proxied.url}/readyz`, 4, client(7))).toEqual([200, 200, 200, 429]);
    expect(await statuses(`${proxied.url}/readyz`, 1, client(8))).toEqual([200]);
  });

  it.skipIf(testStoreMode() !== 'real')('keeps the bucket in Redis (real stores): one key per policy and caller', async () => {
    const subject = unique();
    await statuses(`${gw.url}/v1/metrics`, 1, { headers: principalHeader({ tenant: 't1', subject }) });
    const tat = await gw.stores.shared.redis!.get(`rl:default:sub:t1:${subject}`);
    expect(Number(tat)).toBeGreaterThan(Date.now() * 1000);
    expect(await gw.stores.shared.redis!.pttl(`rl:default:sub:t1:${subject}`)).toBeGreaterThan(1000);
  });
});
