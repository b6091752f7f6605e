import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { testStoreMode } from '../helpers/store-env.js';
import { TEST_PRINCIPAL, pluginsWithTestPrincipal, principalHeader } from '../helpers/test-principal.js';
import { statuses } from './helpers.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway('metrics', {
    env: { RATE_LIMIT_POLICIES: JSON.stringify({ default: { burst: 1000, rate: 100 }, query: { burst: 1, rate: 0.01 } }) },
    overrides: { plugins: pluginsWithTestPrincipal() },
  });
});
afterAll(async () => {
  await gw?.close();
});

const scrape = async () => {
  const res = await fetch(`${gw.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
};
const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('GET /metrics', () => {
  it('counts requests by operation, status class and tenant, with durations, refusals and store health', async () => {
    const acme = principalHeader({ tenant: 'acme', subject: 'ada' });
    const dataset = await statuses(`${gw.url}/v1/datasets/ds_01J9ZK3M5X8Q2V7N4B`, 3, { headers: acme });
    const datasetClass = `${Math.floor(dataset[0]! / 100)}xx`;
    await statuses(`${gw.url}/v1/metrics`, 2, { headers: { [TEST_PRINCIPAL]: 'invalid' } });
    const query = { method: 'POST', headers: { ...acme, 'content-type': 'application/json' }, body: '{}' };
    await statuses(`${gw.url}/v1/datasets/ds_01J9ZK3M5X8Q2V7N4B/query`, 2, query);

    const text = await scrape();
    expect(value(text, `weir_http_requests_total{operation_id="getDataset",status_class="${datasetClass}",tenant="acme"}`)).toBe(3);
    expect(value(text, 'weir_http_request_duration_seconds_count{operation_id="getDataset"}')).toBe(3);
    expect(value(text, 'weir_http_requests_in_flight{operation_id="getPrometheusMetrics"}')).toBe(1);
    expect(value(text, 'weir_auth_failures_total{reason="invalid-credentials"}')).toBe(2);
    expect(value(text, 'weir_rate_limit_decisions_total{policy="query",decision="limited",source="' + (testStoreMode() === 'real' ? 'shared' : 'local') + '"}')).toBe(1);
    expect(value(text, 'weir_audit_buffer_depth')).toBeGreaterThanOrEqual(0);
    expect(value(text, 'weir_store_check_seconds{store="metadata",kind="' + (testStoreMode() === 'real' ? 'postgres' : 'pglite') + '"}')).toBeGreaterThanOrEqual(0);
    expect(value(text, `weir_store_up{store="metadata",kind="${testStoreMode() === 'real' ? 'postgres' : 'pglite'}"}`)).toBe(1);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    // Bounded labels: no raw path or resource id ever becomes a label value.
    expect(text).not.toContain('ds_01J9ZK3M5X8Q2V7N4B');
    expect(text).not.toContain('/v1/');
  });
});

describe('GET /v1/metrics', () => {
  it("summarises the caller's tenant over the window: requests, error rate, latency percentiles, per operation", async () => {
    const who = principalHeader({ tenant: 'usage', subject: 'u' });
    await statuses(`${gw.url}/v1/datasets/ds_01J9ZK3M5X8Q2V7N4B`, 4, { headers: who });
    await statuses(`${gw.url}/v1/audit`, 2, { headers: who });
    const res = await fetch(`${gw.url}/v1/metrics?window=1m`, { headers: who });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.tenants).toHaveLength(1);
    const t = body.tenants[0];
    expect(t).toMatchObject({ tenant: 'usage', requests: 6, errors: 4 });
    expect(t.error_rate).toBeCloseTo(4 / 6, 3);
    expect(t.latency_ms.p50).toBeGreaterThan(0);
    expect(t.latency_ms.p99).toBeGreaterThanOrEqual(t.latency_ms.p50);
    expect(t.by_operation.map((o: any) => [o.operation_id, o.requests])).toEqual([
      ['getDataset', 4],
      ['listAuditEvents', 2],
    ]);
    expect(body.health).toMatchObject({ stores: { metadata: { status: 'up' } }, rate_limit_fallbacks: 0 });
    expect(Date.parse(body.window.to) - Date.parse(body.window.from)).toBe(60_000);
  });

  it('shows every tenant to an admin', async () => {
    const res = await fetch(`${gw.url}/v1/metrics`, { headers: principalHeader({ tenant: 'ops', subject: 'root', roles: ['admin'] }) });
    const tenants = ((await res.json()) as any).tenants.map((t: any) => t.tenant);
    expect(tenants).toEqual(expect.arrayContaining(['acme', 'usage', '_anonymous']));
  });
});
