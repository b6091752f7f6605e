import { request } from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openWarehouse, type Warehouse } from '../../src/stores/warehouse.js';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { asTenant, pluginsWithTestPrincipal } from '../helpers/test-principal.js';

/**
 * A query whose client goes away is stopped in the warehouse, not just forgotten by the gateway.
 * The dataset's table is swapped for a view over a trillion generated rows, so any aggregate over
 * it runs for minutes; a second connection to the same embedded engine watches system.processes.
 * (chDB lists a killed query there until its connection runs the next one.)
 */
let gw: TestGateway;
let control: Warehouse;
let slow: string;
let small: string;

const call = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: asTenant('acme', body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: (await res.json()) as any };
};

const running = async () =>
  (
    await (
      await control.client.query({
        query: "SELECT query FROM system.processes WHERE startsWith(Settings['log_comment'], 'weir-q:')",
        format: 'JSONEachRow',
      })
    ).json<{ query: string }>()
  ).map((r) => r.query);

async function until(ms: number, check: () => Promise<boolean>): Promise<boolean> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

beforeAll(async () => {
  gw = await startGateway('query_cancel', {
    env: { QUERY_MAX_EXECUTION_S: '120', QUERY_CACHE_TTL_MS: '0' },
    overrides: { plugins: pluginsWithTestPrincipal() },
  });
  const columns = [
    { name: 'event_time', type: 'timestamp', nullable: false },
    { name: 'region', type: 'string', nullable: false },
    { name: 'n', type: 'int', nullable: false },
  ];
  const a = await call('POST', '/v1/datasets', { name: 'endless', columns });
  const b = await call('POST', '/v1/datasets', { name: 'small', columns });
  expect([a.status, b.status]).toEqual([201, 201]);
  [slow, small] = [a.body.id, b.body.id];
  expect((await call('POST', `/v1/datasets/${small}/ingest`, [{ event_time: '2026-01-08T10:00:00Z', region: 'eu', n: 1 }])).status).toBe(200);

  const wh = gw.stores.warehouse;
  const table = `\`${wh.database}\`.\`${slow}\``;
  await wh.client.command({ query: `DROP TABLE ${table}` });
  await wh.client.command({
    query: `CREATE VIEW ${table} AS SELECT toDateTime64(number, 3, 'UTC') AS event_time, toString(number % 7) AS region, toInt64(number) AS n,
      now64(3) AS _ingested_at, '' AS _request_id FROM numbers(1000000000000)`,
  });
  // A second connection to the same engine: the gateway's runs one query at a time.
  control = await openWarehouse({ dataDir: gw.config.dataDir, database: wh.database, logger: pino({ level: 'silent' }) });
}, 60_000);

afterAll(async () => {
  // Don't leave a query running for its two minutes if the test failed.
  await control?.client.command({ query: "KILL QUERY WHERE startsWith(Settings['log_comment'], 'weir-q:') ASYNC" }).catch(() => {});
  await control?.close();
  await gw?.close();
}, 60_000);

describe('a query whose client disconnects', () => {
  it('is stopped in the warehouse, and the gateway answers the next query at once', async () => {
    expect(await running()).toEqual([]);
    let answered = false;
    const body = JSON.stringify({ metrics: [{ fn: 'sum', column: 'n' }] });
    const req = request(`${gw.url}/v1/datasets/${slow}/query`, {
      method: 'POST',
      headers: asTenant('acme', { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
    });
    req.on('response', () => (answered = true));
    req.on('error', () => {});
    req.end(body);

    // The query reaches the engine and keeps running...
    expect(await until(10_000, async () => (await running()).length === 1)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect((await running())[0]).toContain(slow);

    // ...until the client goes away: then it is killed, long before its 120 s limit. The embedded
    // engine runs one query at a time per connection, so the next query through the gateway is
    // answered at once only if the cancelled one really stopped.
    req.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    const next = await call('POST', `/v1/datasets/${small}/query`, { metrics: [{ fn: 'count' }] });
    expect(next.status).toBe(200);
    expect(next.body.rows).toEqual([{ count: 1 }]);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(answered).toBe(false);
    expect(await running()).toEqual([]);
  }, 30_000);

  it('a query that finishes is not killed', async () => {
    const res = await call('POST', `/v1/datasets/${small}/query`, { select: ['region', 'n'] });
    expect(res.status).toBe(200);
    expect(res.body.rows).toEqual([{ region: 'eu', n: 1 }]);
  });
});
