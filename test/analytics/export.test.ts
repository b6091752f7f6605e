import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileHitExport } from '../../src/analytics/hit-export.js';
import { HITS_TABLE } from '../../src/analytics/warehouse-tables.js';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { asTenant, pluginsWithTestPrincipal } from '../helpers/test-principal.js';

let gw: TestGateway;
let site: { website_id: string; timezone: string };
let otherSite: { website_id: string };

const post = (path: string, body: unknown, tenant = 'exp') =>
  fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...asTenant(tenant) }, body: JSON.stringify(body) });

beforeAll(async () => {
  gw = await startGateway('analytics_export', { overrides: { plugins: pluginsWithTestPrincipal({ without: ['rate-limit'] }) } });
  site = (await (await post('/v1/websites', { domain: 'exp.example', name: 'Exp', timezone: 'America/New_York' })).json()) as typeof site;
  otherSite = (await (await post('/v1/websites', { domain: 'other.example', name: 'Other' }, 'other')).json()) as typeof otherSite;
  // New York is UTC-5 in January: 2026-01-02 local runs from 05:00Z on the 2nd to 05:00Z on the 3rd.
  const hit = (time: string, page: string, extra: Record<string, unknown> = {}) => ({
    website_id: site.website_id, time, hit_type: 'pageview', client_id: 'c1', session_id: randomUUID(), page, hostname: 'exp.example', country: 'US', device_type: 'desktop', ...extra,
  });
  await gw.stores.warehouse.client.insert({
    table: HITS_TABLE,
    format: 'JSONEachRow',
    values: [
      hit('2026-01-02 04:59:59.000', '/before'), // 2026-01-01 23:59:59 local: outside
      hit('2026-01-02 05:00:00.000', '/first'),
      hit('2026-01-02 12:00:00.000', '/mobile', { device_type: 'mobile' }),
      hit('2026-01-03 04:59:59.999', '/last', { hit_type: 'event', event_category: 'video', event_action: 'play', event_value: 3 }),
      hit('2026-01-03 05:00:00.000', '/after'), // 2026-01-03 local: outside
      { ...hit('2026-01-02 12:00:00.000', '/other-site'), website_id: otherSite.website_id },
    ],
  });
});
afterAll(async () => {
  await gw?.close();
});

/** Polls the download until the export has finished; returns the file's text. */
async function download(exportId: string, tenant = 'exp'): Promise<{ status: number; text: string; headers: Headers }> {
  for (const started = Date.now(); Date.now() - started < 20_000; ) {
    const res = await fetch(`${gw.url}/v1/exports/${exportId}/download`, { headers: asTenant(tenant) });
    if (res.status !== 409) return { status: res.status, text: await res.text(), headers: res.headers };
    await res.arrayBuffer();
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('export did not finish in 20 s');
}

const range = { start_date: '2026-01-02', end_date: '2026-01-02' };

describe('POST /v1/websites/{websiteId}/export', () => {
  it('answers 202 at once and exports the hits of the local-time date range as NDJSON, oldest first', async () => {
    const res = await post(`/v1/websites/${site.website_id}/export`, { date_range: range, format: 'ndjson', fields: ['timestamp', 'page', 'hit_type', 'event_value'] });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { export_id: string; status: string; estimated_completion: string };
    expect(body).toMatchObject({ export_id: expect.stringMatching(/^exp_/), status: 'processing' });
    expect(res.headers.get('location')).toBe(`/v1/exports/${body.export_id}`);
    const file = await download(body.export_id);
    expect(file.status).toBe(200);
    const rows = file.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows).toEqual([
      { timestamp: '2026-01-02 00:00:00.000', page: '/first', hit_type: 'pageview', event_value: null },
      { timestamp: '2026-01-02 07:00:00.000', page: '/mobile', hit_type: 'pageview', event_value: null },
      { timestamp: '2026-01-02 23:59:59.999', page: '/last', hit_type: 'event', event_value: 3 },
    ]);
    const job = await gw.stores.metadata.query<{ source_type: string; source_id: string; rows: string; status: string }>('SELECT source_type, source_id, rows, status FROM export_jobs WHERE id = $1', [body.export_id]);
    expect(job.rows[0]).toMatchObject({ source_type: 'website', source_id: site.website_id, status: 'succeeded' });
    expect(Number(job.rows[0]!.rows)).toBe(3);
  });

  it('applies filters and writes CSV with the chosen fields as its header', async () => {
    const res = await post(`/v1/websites/${site.website_id}/export`, {
      date_range: range,
      format: 'csv',
      fields: ['page', 'device_type', 'country'],
      filters: [{ dimension: 'device_type', operator: 'not_equals', value: 'mobile' }, { dimension: 'page', operator: 'in', values: ['/first', '/last', '/before'] }],
    });
    expect(res.status).toBe(202);
    const file = await download(((await res.json()) as { export_id: string }).export_id);
    expect(file.text.trim().split('\n')).toEqual(['"page","device_type","country"', '"/first","desktop","US"', '"/last","desktop","US"']);
  });

  it('exports every field when none are named, and Parquet files', async () => {
    const res = await post(`/v1/websites/${site.website_id}/export`, { date_range: range, format: 'parquet' });
    expect(res.status).toBe(202);
    const file = await download(((await res.json()) as { export_id: string }).export_id);
    expect(file.status).toBe(200);
    expect(file.text.startsWith('PAR1')).toBe(true);
  });

  it('is 404 for another tenant\'s or an unknown website, and 400 for a reversed or too long date range', async () => {
    expect((await post(`/v1/websites/${otherSite.website_id}/export`, { date_range: range, format: 'csv' })).status).toBe(404);
    expect((await post(`/v1/websites/${randomUUID()}/export`, { date_range: range, format: 'csv' })).status).toBe(404);
    const reversed = await post(`/v1/websites/${site.website_id}/export`, { date_range: { start_date: '2026-01-03', end_date: '2026-01-02' }, format: 'csv' });
    expect(reversed.status).toBe(400);
    const long = await post(`/v1/websites/${site.website_id}/export`, { date_range: { start_date: '2024-01-01', end_date: '2026-01-02' }, format: 'csv' });
    expect(long.status).toBe(400);
    expect(((await long.json()) as { detail: string }).detail).toMatch(/1 year/);
    expect((await post(`/v1/websites/${site.website_id}/export`, { date_range: range, format: 'xlsx' })).status).toBe(400);
  });

  it('compiles client values as typed parameters, never as SQL text', () => {
    const q = compileHitExport({ date_range: range, format: 'csv', fields: ['page'], filters: [{ dimension: 'page', operator: 'equals', value: "'; DROP TABLE x; --" }] }, { id: site.website_id, timezone: 'Europe/Paris' });
    expect(q.sql).not.toContain('DROP');
    expect(q.params).toMatchObject({ f0: "'; DROP TABLE x; --", tz: 'Europe/Paris', from: '2026-01-02 00:00:00', to: '2026-01-03 00:00:00' });
  });

  it('GET /v1/exports/{exportId} reports a website export with website_id and dataset_id null', async () => {
    const created = (await (await post(`/v1/websites/${site.website_id}/export`, { date_range: range, format: 'csv' })).json()) as { export_id: string };
    await download(created.export_id);
    const res = await fetch(`${gw.url}/v1/exports/${created.export_id}`, { headers: asTenant('exp') });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ export_id: created.export_id, website_id: site.website_id, dataset_id: null, status: 'succeeded', rows: 3 });
    expect((await fetch(`${gw.url}/v1/exports/${created.export_id}`, { headers: asTenant('other') })).status).toBe(404);
  });
});
