import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { asTenant, pluginsWithTestPrincipal } from '../helpers/test-principal.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway('datasets', { overrides: { plugins: pluginsWithTestPrincipal() } });
});
afterAll(async () => {
  await gw?.close();
});

const json = (tenant: string) => asTenant(tenant, { 'content-type': 'application/json' });
const call = async (method: string, path: string, tenant: string | undefined, body?: unknown) => {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: tenant ? json(tenant) : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as any) : undefined };
};

const checkout = {
  name: 'checkout_events',
  description: 'One row per checkout step.',
  columns: [
    { name: 'event_time', type: 'timestamp', nullable: false },
    { name: 'region', type: 'string', nullable: false, default: 'unknown', max_length: 64 },
    { name: 'amount', type: 'int' },
    { name: 'user_id', type: 'string', max_length: 128 },
    { name: 'tags', type: 'array', items: 'string' },
    { name: 'attrs', type: 'map', values: 'string' },
  ],
  time_column: 'event_time',
  sort_key: ['region', 'event_time'],
  partition_by: 'day',
  retention_days: 395,
};

const warehouseTables = async () =>
  (await (await gw.stores.warehouse.client.query({ query: 'SELECT name FROM system.tables WHERE database = currentDatabase()', format: 'JSONEachRow' })).json<{ name: string }>()).map((t) => t.name);

describe('datasets', () => {
  let id: string;

  it('refuses an anonymous caller with 401', async () => {
    const res = await call('POST', '/v1/datasets', undefined, checkout);
    expect(res.status).toBe(401);
  });

  it('creates a dataset with its warehouse table and version 1', async () => {
    const res = await call('POST', '/v1/datasets', 'acme', checkout);
    expect(res.status).toBe(201);
    id = res.body.id;
    expect(id).toMatch(/^ds_/);
    expect(res.headers.get('location')).toBe(`/v1/datasets/${id}`);
    expect(res.body).toMatchObject({ tenant: 'acme', name: 'checkout_events', version: 1, deleted_at: null, partition_by: 'day' });
    expect(res.body.columns[2]).toEqual({ name: 'amount', type: 'int', nullable: true });
    expect(await warehouseTables()).toContain(id);
    const ddl = await (await gw.stores.warehouse.client.query({ query: `SHOW CREATE TABLE \`${id}\``, format: 'TabSeparatedRaw' })).text();
    expect(ddl).toMatch(/`event_time` DateTime64\(3, 'UTC'\)/);
    expect(ddl).toMatch(/`tags` Array\(String\)/);
    expect(ddl).toMatch(/`attrs` Map\(String, String\)/);
    expect(ddl).toMatch(/PARTITION BY toYYYYMMDD\(event_time\)/);
    expect(ddl).toMatch(/TTL toDateTime\(event_time\) \+ toIntervalDay\(395\)/);
  });

  it('refuses a taken name with 409 and leaves no table behind', async () => {
    const before = (await warehouseTables()).length;
    const res = await call('POST', '/v1/datasets', 'acme', checkout);
    expect(res.status).toBe(409);
    expect((await warehouseTables()).length).toBe(before);
  });

  it('refuses an inconsistent definition with 400 and where it is wrong', async () => {
    const res = await call('POST', '/v1/datasets', 'acme', { ...checkout, name: 'bad', time_column: 'region', sort_key: ['nope'] });
    expect(res.status).toBe(400);
    const pointers = res.body.errors.map((e: any) => e.pointer);
    expect(pointers).toEqual(expect.arrayContaining(['#/time_column', '#/sort_key/0']));
    const badDefault = await call('POST', '/v1/datasets', 'acme', { name: 'bad2', columns: [{ name: 'n', type: 'int', default: 'x' }] });
    expect(badDefault.status).toBe(400);
    expect(badDefault.body.errors[0].pointer).toBe('#/columns/0/default');
  });

  it('hides a dataset from other tenants (404) and lists only the tenant\'s own', async () => {
    expect((await call('GET', `/v1/datasets/${id}`, 'globex')).status).toBe(404);
    expect((await call('GET', `/v1/datasets/${id}`, 'acme')).body.id).toBe(id);
    const mine = await call('GET', '/v1/datasets', 'acme');
    expect(mine.body.items.map((d: any) => d.id)).toEqual([id]);
    expect((await call('GET', '/v1/datasets', 'globex')).body.items).toEqual([]);
  });

  it('pages the list with a cursor and filters by name', async () => {
    for (const n of ['page_a', 'page_b', 'page_c']) {
      expect((await call('POST', '/v1/datasets', 'paging', { name: n, columns: [{ name: 'x', type: 'string' }] })).status).toBe(201);
    }
    const first = await call('GET', '/v1/datasets?limit=2', 'paging');
    expect(first.body.items.map((d: any) => d.name)).toEqual(['page_c', 'page_b']);
    const second = await call('GET', `/v1/datasets?limit=2&cursor=${first.body.next_cursor}`, 'paging');
    expect(second.body.items.map((d: any) => d.name)).toEqual(['page_a']);
    expect(second.body.next_cursor).toBeNull();
    expect((await call('GET', '/v1/datasets?q=_B', 'paging')).body.items.map((d: any) => d.name)).toEqual(['page_b']);
  });

  it('applies compatible changes in place and bumps the version', async () => {
    const columns = [
      ...checkout.columns.map((c) => (c.name === 'amount' ? { ...c, type: 'float' } : c)),
      { name: 'coupon', type: 'string' },
    ];
    const res = await call('PUT', `/v1/datasets/${id}`, 'acme', { ...checkout, columns });
    expect(res.status).toBe(200);
    expect(res.body.version_created).toBe(true);
    expect(res.body.dataset.version).toBe(2);
    expect(res.body.version.diff.added.map((c: any) => c.name)).toEqual(['coupon']);
    expect(res.body.version.diff.widened).toEqual([
      { name: 'amount', from: { name: 'amount', type: 'int', nullable: true }, to: { name: 'amount', type: 'float', nullable: true } },
    ]);
    const ddl = await (await gw.stores.warehouse.client.query({ query: `SHOW CREATE TABLE \`${id}\``, format: 'TabSeparatedRaw' })).text();
    expect(ddl).toMatch(/`amount` Nullable\(Float64\)/);
    expect(ddl).toMatch(/`coupon` Nullable\(String\)/);
    const same = await call('PUT', `/v1/datasets/${id}`, 'acme', { ...checkout, columns, description: 'new words' });
    expect(same.body.version_created).toBe(false);
    expect(same.body.dataset.version).toBe(2);
  });

  it('refuses breaking changes with 409 listing each, unless new_major_version', async () => {
    const columns = checkout.columns
      .filter((c) => c.name !== 'tags')
      .map((c) => (c.name === 'user_id' ? { ...c, name: 'customer_id', renamed_from: 'user_id' } : c.name === 'amount' ? { ...c, type: 'int' } : c));
    const refused = await call('PUT', `/v1/datasets/${id}`, 'acme', { ...checkout, columns: [...columns, { name: 'coupon', type: 'string' }] });
    expect(refused.status).toBe(409);
    expect(refused.body.type).toBe('https://weir.dev/problems/breaking-schema-change');
    expect(refused.body.breaking_changes.map((b: any) => b.kind).sort()).toEqual(['column_removed', 'column_renamed', 'type_changed']);

    const major = await call('PUT', `/v1/datasets/${id}`, 'acme', { ...checkout, columns: [...columns, { name: 'coupon', type: 'string' }], new_major_version: true });
    expect(major.status).toBe(200);
    expect(major.body.version).toMatchObject({ version: 3, breaking: true });
    expect(major.body.version.diff.renamed).toEqual([{ from: 'user_id', to: 'customer_id' }]);
    expect(major.body.dataset.columns.map((c: any) => c.name)).toEqual(['event_time', 'region', 'amount', 'customer_id', 'attrs', 'coupon']);
    const ddl = await (await gw.stores.warehouse.client.query({ query: `SHOW CREATE TABLE \`${id}\``, format: 'TabSeparatedRaw' })).text();
    expect(ddl).toMatch(/`customer_id` Nullable\(String\)/);
    expect(ddl).not.toMatch(/`tags`/);
  });

  it('lists versions newest first with their diffs', async () => {
    const res = await call('GET', `/v1/datasets/${id}/versions?limit=2`, 'acme');
    expect(res.status).toBe(200);
    expect(res.body.items.map((v: any) => v.version)).toEqual([3, 2]);
    const rest = await call('GET', `/v1/datasets/${id}/versions?cursor=${res.body.next_cursor}`, 'acme');
    expect(rest.body.items).toHaveLength(1);
    expect(rest.body.items[0].diff.added).toHaveLength(checkout.columns.length);
    expect(rest.body.items[0].created_by).toBe('user:test@acme');
  });

  it('soft-deletes (still readable, off the list, no updates), then purges on demand', async () => {
    const del = await call('DELETE', `/v1/datasets/${id}`, 'acme');
    expect(del.status).toBe(200);
    expect(del.body.deleted_at).not.toBeNull();
    expect(Date.parse(del.body.purge_after) - Date.parse(del.body.deleted_at)).toBeGreaterThan(29 * 86400_000);
    const again = await call('DELETE', `/v1/datasets/${id}`, 'acme');
    expect(again.body.deleted_at).toBe(del.body.deleted_at);
    expect((await call('GET', `/v1/datasets/${id}`, 'acme')).body.deleted_at).toBe(del.body.deleted_at);
    expect((await call('GET', '/v1/datasets', 'acme')).body.items).toEqual([]);
    expect((await call('GET', '/v1/datasets?include_deleted=true', 'acme')).body.items).toHaveLength(1);
    expect((await call('PUT', `/v1/datasets/${id}`, 'acme', checkout)).status).toBe(409);
    // The name is free again.
    const reuse = await call('POST', '/v1/datasets', 'acme', checkout);
    expect(reuse.status).toBe(201);

    const purge = await call('DELETE', `/v1/datasets/${id}?purge=true`, 'acme');
    expect(purge.status).toBe(202);
    for (let i = 0; i < 100 && (await call('GET', `/v1/datasets/${id}`, 'acme')).status !== 404; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await call('GET', `/v1/datasets/${id}`, 'acme')).status).toBe(404);
    expect(await warehouseTables()).not.toContain(id);
  });
});
