import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { openStores, type StoreConfig } from '../../src/stores/index.js';
import { startServerProcess, TEST_SERVER_ENTRY, type ServerProcess } from '../helpers/server-process.js';
import { cleanupTestStores, testStoreConfig } from '../helpers/store-env.js';
import { asTenant } from '../helpers/test-principal.js';

const PRODUCERS = 6;
const ROWS_PER_BATCH = 2000;
const MAX_BATCHES = 200;

let stores: StoreConfig;
const processes: ServerProcess[] = [];
afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null) await p.stop('SIGKILL');
  if (stores) await cleanupTestStores(stores);
});

const batchBody = (producer: number, batch: number) =>
  Array.from({ length: ROWS_PER_BATCH }, (_, i) => JSON.stringify({ id: producer * 1_000_000 + batch * 10_000 + i, t: '2026-01-09T00:00:00Z' })).join('\n') + '\n';

async function send(url: string, ds: string, producer: number, batch: number): Promise<Response> {
  return fetch(`${url}/v1/datasets/${ds}/ingest`, {
    method: 'POST',
    headers: asTenant('acme', { 'content-type': 'application/x-ndjson', 'idempotency-key': `crash-p${producer}-b${batch}` }),
    body: batchBody(producer, batch),
  });
}

describe('ingest survives SIGKILL', () => {
  it('keeps every acknowledged row, and retries with the same Idempotency-Key add no duplicates', async () => {
    stores = testStoreConfig('ingest-crash');
    const first = await startServerProcess('ingest-crash', {}, { entry: TEST_SERVER_ENTRY, stores });
    processes.push(first);
    const created = await fetch(`${first.url}/v1/datasets`, {
      method: 'POST',
      headers: asTenant('acme', { 'content-type': 'application/json' }),
      body: JSON.stringify({ name: 'crash', columns: [{ name: 'id', type: 'int', nullable: false }, { name: 't', type: 'timestamp', nullable: false }], sort_key: ['id'] }),
    });
    expect(created.status).toBe(201);
    const ds = ((await created.json()) as { id: string }).id;

    const acked = new Set<string>();
    const sent: Array<[number, number]> = [];
    let killed = false;
    const producers = Array.from({ length: PRODUCERS }, async (_, p) => {
      for (let b = 0; b < MAX_BATCHES && !killed; b++) {
        sent.push([p, b]);
        try {
          const res = await send(first.url, ds, p, b);
          if (res.status === 200 && ((await res.json()) as { accepted: number }).accepted === ROWS_PER_BATCH) acked.add(`${p}:${b}`);
        } catch {
          return; // the server is gone
        }
      }
    });
    // Kill once a fair amount is acknowledged, in the middle of concurrent requests.
    for (let i = 0; i < 600 && acked.size < PRODUCERS * 3; i++) await new Promise((r) => setTimeout(r, 50));
    killed = true;
    await first.stop('SIGKILL');
    await Promise.all(producers);
    expect(acked.size).toBeGreaterThan(0);

    const second = await startServerProcess('ingest-crash', {}, { entry: TEST_SERVER_ENTRY, stores });
    processes.push(second);
    // Retry everything that was sent (acknowledged or not) with its key until it is answered.
    for (const [p, b] of sent) {
      for (let attempt = 0; ; attempt++) {
        const res = await send(second.url, ds, p, b);
        if (res.status === 200) {
          const body = (await res.json()) as { accepted: number; idempotent_replay: boolean };
          expect(body.accepted).toBe(ROWS_PER_BATCH);
          if (acked.has(`${p}:${b}`)) expect(body.idempotent_replay).toBe(true);
          break;
        }
        expect([409, 503]).toContain(res.status);
        expect(attempt).toBeLessThan(60);
        await new Promise((r) => setTimeout(r, 1000 * Number(res.headers.get('retry-after') ?? 1)));
      }
    }
    await second.stop('SIGTERM');

    const opened = await openStores(stores, pino({ level: 'silent' }));
    try {
      const rs = await opened.warehouse.client.query({ query: `SELECT count() AS c, uniqExact(id) AS u FROM \`${ds}\``, format: 'JSONEachRow' });
      const { c, u } = (await rs.json<{ c: string; u: string }>())[0]!;
      expect(Number(u)).toBe(sent.length * ROWS_PER_BATCH);
      expect(Number(c)).toBe(sent.length * ROWS_PER_BATCH);
    } finally {
      await opened.close();
    }
  }, 240_000);
});
