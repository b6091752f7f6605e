import type { TestGateway } from '../helpers/app.js';
import { asTenant } from '../helpers/test-principal.js';

/** A dataset for ingest tests: a timestamp, a defaulted string, numbers, an array and a map. */
export const eventsDataset = (name: string) => ({
  name,
  columns: [
    { name: 'event_time', type: 'timestamp', nullable: false },
    { name: 'region', type: 'string', nullable: false, default: 'unknown', max_length: 16 },
    { name: 'amount', type: 'float' },
    { name: 'n', type: 'int' },
    { name: 'tags', type: 'array', items: 'string' },
    { name: 'attrs', type: 'map', values: 'string' },
    { name: 'payload', type: 'json' },
  ],
  time_column: 'event_time',
  sort_key: ['region', 'event_time'],
});

export async function createDataset(gw: TestGateway, tenant: string, body: unknown): Promise<string> {
  const res = await fetch(`${gw.url}/v1/datasets`, { method: 'POST', headers: asTenant(tenant, { 'content-type': 'application/json' }), body: JSON.stringify(body) });
  if (res.status !== 201) throw new Error(`create dataset: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

export async function warehouseRows<T = Record<string, unknown>>(gw: TestGateway, sql: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await gw.stores.warehouse.client.query({ query: sql, format: 'JSONEachRow', query_params: params });
  return rs.json<T>();
}
