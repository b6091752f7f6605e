import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { asTenant, principalHeader, pluginsWithTestPrincipal } from '../helpers/test-principal.js';
import { createDataset, eventsDataset, warehouseRows } from '../ingest/helpers.js';
import { b64, tusUpload, waitForJob } from './helpers.js';

let gw: TestGateway;
let ds: string;
beforeAll(async () => {
  gw = await startGateway('uploads', { overrides: { plugins: pluginsWithTestPrincipal() } });
  ds = await createDataset(gw, 'acme', eventsDataset('uploaded'));
});
afterAll(async () => {
  await gw?.close();
});

const acme = asTenant('acme');
const count = async (dataset: string, where = '1') =>
  (await warehouseRows<{ c: string; u: string }>(gw, `SELECT count() AS c, uniqExact(n) AS u FROM \`${dataset}\` WHERE ${where}`))[0]!;
const rawCreate = (metadata: string, headers: Record<string, string> = acme) =>
  fetch(`${gw.url}/v1/uploads`, { method: 'POST', headers: { ...headers, 'tus-resumable': '1.0.0', 'upload-length': '10', 'upload-metadata': metadata } });

describe('tus uploads', () => {
  it('answers tus discovery with its extensions', async () => {
    const res = await fetch(`${gw.url}/v1/uploads`, { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.get('tus-version')).toBe('1.0.0');
    expect(res.headers.get('tus-extension')).toContain('creation-with-upload');
    expect(res.headers.get('tus-extension')).toContain('termination');
    expect(res.headers.get('tus-extension')).toContain('expiration');
    expect(res.headers.get('tus-max-size')).toBe(String(1024 ** 3));
  });

  it('ingests an NDJSON upload: every row exactly once, bad rows quarantined', async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ event_time: '2026-01-08T10:30:00Z', region: 'eu', n: i, amount: i / 2 }));
    rows.splice(100, 0, JSON.stringify({ event_time: '2026-01-08T10:30:00Z', n: 'not a number' }));
    const file = Buffer.from(rows.join('\n') + '\n');
    const { done } = tusUpload(gw.url, file, { metadata: { dataset_id: ds, format: 'ndjson', filename: 'rows.ndjson' }, headers: acme, chunkSize: 64 * 1024 });
    const { url, jobId } = await done;
    expect(url).toMatch(/\/v1\/uploads\/up_[0-9A-Z]{26}$/);
    expect(jobId).toMatch(/^job_/);
    const job = await waitForJob(gw.url, jobId!, acme);
    expect(job).toMatchObject({ state: 'succeeded', rows_done: 5000, rows_quarantined: 1, bytes_done: file.length, bytes_total: file.length });
    expect(job.errors).toEqual([{ line: 101, column: 'n', detail: expect.stringContaining('expected int') }]);
    const c = await count(ds, `_request_id LIKE '${jobId}#%'`);
    expect(Number(c.c)).toBe(5000);
    expect(Number(c.u)).toBe(5000);

    // The finished upload's offset still answers, with its job; it can't be terminated any more.
    const head = await fetch(url, { method: 'HEAD', headers: { ...acme, 'tus-resumable': '1.0.0' } });
    expect(head.status).toBe(200);
    expect(head.headers.get('upload-offset')).toBe(String(file.length));
    expect(head.headers.get('weir-ingest-job-id')).toBe(jobId);
    const del = await fetch(url, { method: 'DELETE', headers: { ...acme, 'tus-resumable': '1.0.0' } });
    expect(del.status).toBe(409);
    expect(del.headers.get('content-type')).toContain('application/problem+json');
    expect(await del.json()).toMatchObject({ type: 'https://weir.dev/problems/conflict', status: 409, instance: expect.stringMatching(/^urn:weir:request:/) });
  });

  it("answers tus's own errors as problem+json with the status tus clients expect", async () => {
    const created = await fetch(`${gw.url}/v1/uploads`, { method: 'POST', headers: { ...acme, 'tus-resumable': '1.0.0', 'upload-length': '10', 'upload-metadata': `dataset_id ${b64(ds)},format ${b64('ndjson')}` } });
    expect(created.status).toBe(201);
    const url = new URL(created.headers.get('location')!, gw.url).href;
    const patch = (offset: string, body: string, contentType = 'application/offset+octet-stream') =>
      fetch(url, { method: 'PATCH', headers: { ...acme, 'tus-resumable': '1.0.0', 'upload-offset': offset, 'content-type': contentType }, body });

    const wrongOffset = await patch('4', 'abc');
    expect(wrongOffset.status).toBe(409);
    expect(wrongOffset.headers.get('content-type')).toContain('application/problem+json');
    expect(await wrongOffset.json()).toMatchObject({ type: 'https://weir.dev/problems/upload-offset-mismatch', status: 409, detail: expect.stringContaining('HEAD') });

    const tooLong = await patch('0', 'x'.repeat(11));
    expect(tooLong.status).toBe(413);
    expect(await tooLong.json()).toMatchObject({ type: 'https://weir.dev/problems/payload-too-large', status: 413 });

    // Nothing was accepted by the refused requests: the upload still starts at 0.
    const head = await fetch(url, { method: 'HEAD', headers: { ...acme, 'tus-resumable': '1.0.0' } });
    expect(head.headers.get('upload-offset')).toBe('0');
  });

  it('ingests a gzip CSV upload with a header row', async () => {
    const ds2 = await createDataset(gw, 'acme', eventsDataset('uploaded_csv'));
    const lines = ['event_time,region,n,amount,tags'];
    for (let i = 0; i < 3000; i++) lines.push(`2026-01-08T10:30:00Z,"r,${i % 7}",${i},${i}.5,"[""a"",""b""]"`);
    lines.push('2026-01-08T10:30:00Z,eu,oops,1,[]');
    const file = gzipSync(Buffer.from(lines.join('\r\n') + '\r\n'));
    const { done } = tusUpload(gw.url, file, { metadata: { dataset_id: ds2, format: 'csv', gzip: 'true' }, headers: acme });
    const { jobId } = await done;
    const job = await waitForJob(gw.url, jobId!, acme);
    expect(job).toMatchObject({ state: 'succeeded', rows_done: 3000, rows_quarantined: 1, bytes_done: file.length });
    expect(job.errors[0]).toMatchObject({ line: 3002, column: 'n' });
    const c = await count(ds2);
    expect(Number(c.c)).toBe(3000);
    expect(Number(c.u)).toBe(3000);
    const sample = await warehouseRows<{ region: string; tags: string[] }>(gw, `SELECT region, tags FROM \`${ds2}\` WHERE n = 8`);
    expect(sample).toEqual([{ region: 'r,1', tags: ['a', 'b'] }]);
  });

  it('refuses bad metadata with 400 problem+json', async () => {
    for (const metadata of [`dataset_id ${b64(ds)},format ${b64('xml')}`, `format ${b64('ndjson')}`, `dataset_id ${b64(ds)}`, `dataset_id ${b64(ds)},format ${b64('csv')},gzip ${b64('maybe')}`]) {
      const res = await rawCreate(metadata);
      expect(res.status, metadata).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.headers.get('tus-resumable')).toBe('1.0.0');
    }
  });

  it("answers 404 for another tenant's dataset, upload and job", async () => {
    const res = await rawCreate(`dataset_id ${b64(ds)},format ${b64('ndjson')}`, asTenant('globex'));
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');

    const file = Buffer.from(JSON.stringify({ event_time: '2026-01-08T10:30:00Z', n: 1_000_000 }) + '\n');
    const { url, jobId } = await tusUpload(gw.url, file, { metadata: { dataset_id: ds, format: 'ndjson' }, headers: acme }).done;
    await waitForJob(gw.url, jobId!, acme);
    expect((await fetch(`${gw.url}/v1/ingest-jobs/${jobId}`, { headers: asTenant('globex') })).status).toBe(404);
    const head = await fetch(url, { method: 'HEAD', headers: { ...asTenant('globex'), 'tus-resumable': '1.0.0' } });
    expect(head.status).toBe(404);
    const patch = await fetch(url, { method: 'PATCH', headers: { ...asTenant('globex'), 'tus-resumable': '1.0.0', 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, body: 'x' });
    expect(patch.status).toBe(404);
    // Same tenant, neither its creator nor an admin: 404 too.
    const other = principalHeader({ tenant: 'acme', subject: 'user:someone-else', roles: ['ingest-writer'] });
    expect((await fetch(`${gw.url}/v1/ingest-jobs/${jobId}`, { headers: other })).status).toBe(404);
    expect((await fetch(`${gw.url}/v1/ingest-jobs/job_01J9ZM1Q3S5U7W9Y1A`, { headers: acme })).status).toBe(404);
  });

  it('terminates an unfinished upload', async () => {
    const created = await rawCreate(`dataset_id ${b64(ds)},format ${b64('ndjson')}`);
    expect(created.status).toBe(201);
    const location = created.headers.get('location')!;
    expect(location).toMatch(/^\/v1\/uploads\/up_/);
    const del = await fetch(`${gw.url}${location}`, { method: 'DELETE', headers: { ...acme, 'tus-resumable': '1.0.0' } });
    expect(del.status).toBe(204);
    const head = await fetch(`${gw.url}${location}`, { method: 'HEAD', headers: { ...acme, 'tus-resumable': '1.0.0' } });
    expect([404, 410]).toContain(head.status);
  });
});
