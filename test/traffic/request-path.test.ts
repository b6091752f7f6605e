import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/app.js';

// The request path's shortcuts (one layer per operation, the exact-path dispatcher, validation
// skipped when there is nothing to validate, compression only when asked for) change nothing a
// client can see: these requests are answered as they were through Express's own routing.
let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway('request_path', {
    env: { RATE_LIMIT_POLICIES: JSON.stringify({ probe: { burst: 1000, rate: 100 } }) },
  });
});
afterAll(async () => {
  await gw?.close();
});

describe('the request path', () => {
  it('answers a parameterless operation with every plugin applied: request id, security and rate-limit headers, audit, metrics', async () => {
    const res = await fetch(`${gw.url}/healthz`, { headers: { 'x-request-id': 'path-test-0001' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok' });
    expect(res.headers.get('x-request-id')).toBe('path-test-0001');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('ratelimit-policy')).toBe('"probe";q=1000;w=10');
    expect(res.headers.get('ratelimit')).toMatch(/^"probe";r=\d+;t=\d+$/);
    expect(res.headers.get('vary')).toMatch(/Accept-Encoding/i);

    await gw.app.weir.deps.audit.writer.flush();
    const [event] = await gw.app.weir.deps.audit.store.list({ tenant: '_anonymous', limit: 100 }).then((es) => es.filter((e) => e.request_id === 'path-test-0001'));
    expect(event).toMatchObject({ operation_id: 'getHealth', status: 200, outcome: 'success', resource_ids: {}, captured: {} });
    const metrics = await gw.app.weir.deps.metrics.registry.metrics();
    expect(metrics).toMatch(/^weir_http_requests_total\{operation_id="getHealth",status_class="2xx",tenant="_anonymous"\} [1-9]/m);
    expect(metrics).toMatch(/^weir_rate_limit_decisions_total\{policy="probe",decision="allowed",source="(local|shared)"\} [1-9]/m);
  });

  it('still validates the query of an operation that declares no parameters', async () => {
    const res = await fetch(`${gw.url}/healthz?verbose=1`);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 400, errors: [expect.objectContaining({ in: 'query' })] });
  });

  it('routes what the exact-path lookup does not take (other case, trailing slash, HEAD, wrong method) as Express does', async () => {
    expect((await fetch(`${gw.url}/HEALTHZ`)).status).toBe(200);
    expect((await fetch(`${gw.url}/healthz/`)).status).toBe(200);
    const head = await fetch(`${gw.url}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('ratelimit-policy')).toBe('"probe";q=1000;w=10');
    const post = await fetch(`${gw.url}/healthz`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(`${gw.url}/no/such/path`)).status).toBe(404);
  });

  it('compresses for clients that accept it, and not for others', async () => {
    const plain = await fetch(`${gw.url}/openapi.json`, { headers: { 'accept-encoding': 'identity' } });
    expect(plain.headers.get('content-encoding')).toBeNull();
    const spec = await plain.json();
    const { request } = await import('node:http');
    const body = await new Promise<{ encoding?: string; data: Buffer }>((resolve, reject) => {
      request(`${gw.url}/openapi.json`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ encoding: res.headers['content-encoding'], data: Buffer.concat(chunks) }));
      })
        .on('error', reject)
        .end();
    });
    expect(body.encoding).toBe('gzip');
    expect(JSON.parse(gunzipSync(body.data).toString())).toEqual(spec);
  });
});
