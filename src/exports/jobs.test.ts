import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTestStores, testStoreConfig } from '../../test/helpers/store-env.js';
import { compileQuery } from '../query/compile.js';
import type { AccessView, QueryableDataset } from '../query/types.js';
import { openStores, type Stores } from '../stores/index.js';
import { ExportJobs, type ExportJob } from './jobs.js';

const cfg = testStoreConfig('exports');
const logger = pino({ level: 'silent' });
let stores: Stores;
let jobs: ExportJobs;
const dataset: QueryableDataset = {
  table: '',
  timeColumn: 't',
  columns: [
    { name: 't', type: 'timestamp', nullable: false },
    { name: 'region', type: 'string', nullable: false },
    { name: 'amount', type: 'float', nullable: false },
    { name: 'secret', type: 'string', nullable: false },
  ],
};
const view: AccessView = { columns: new Map([['t', null], ['region', null], ['amount', { mask: 'round', precision: 0 }]]) };

beforeAll(async () => {
  stores = await openStores(cfg, logger);
  dataset.table = `\`${cfg.clickhouseDatabase}\`.\`sales\``;
  await stores.warehouse.client.command({ query: `CREATE TABLE ${dataset.table} (t DateTime64(3, 'UTC'), region String, amount Float64, secret String) ENGINE = MergeTree ORDER BY t` });
  await stores.warehouse.client.command({
    query: `INSERT INTO ${dataset.table} SELECT toDateTime64('2026-01-01 00:00:00', 3, 'UTC') + number, if(number % 3 = 0, 'eu', 'us'), number + 0.4, 'hidden' FROM numbers(3000)`,
  });
  jobs = new ExportJobs({ metadata: stores.metadata, warehouse: stores.warehouse, logger, dir: join(cfg.dataDir, 'exports'), ttlMs: 60_000, concurrency: 2, sweepIntervalMs: 50 });
  await jobs.start();
});
afterAll(async () => {
  await jobs?.close();
  await stores?.close();
  await cleanupTestStores(cfg);
});

async function settled(id: string): Promise<ExportJob> {
  for (let i = 0; i < 200; i++) {
    const job = await jobs.get(id);
    if (job && job.status !== 'queued' && job.status !== 'running') return job;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`export ${id} did not finish`);
}

function exportOf(format: 'csv' | 'ndjson' | 'parquet', compression: 'none' | 'gzip', body: Parameters<typeof compileQuery>[0]) {
  const q = compileQuery(body, dataset, view, { export: true });
  return jobs.create({ tenant: 't1', createdBy: 'u1', sourceType: 'dataset', sourceId: 'ds_x', format, compression, query: q });
}

describe('export jobs', () => {
  it('writes CSV with the caller’s columns and masks, counting rows and bytes', async () => {
    const created = await exportOf('csv', 'none', { filters: { column: 'region', op: 'equals', value: 'eu' }, order_by: [{ column: 't' }] });
    expect(created.status).toBe('queued');
    const job = await settled(created.id);
    expect(job).toMatchObject({ status: 'succeeded', rows: 1000, error: null });
    const text = await readFile(job.file_path!, 'utf8');
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('"t","region","amount"');
    expect(lines).toHaveLength(1001);
    expect(lines[1]).toBe('"2026-01-01 00:00:00.000","eu",0');
    expect(text).not.toContain('hidden');
    expect(job.bytes).toBe((await stat(job.file_path!)).size);
    expect(job.expires_at!.getTime()).toBeGreaterThan(Date.now());
  });

  it('writes gzip NDJSON and Parquet', async () => {
    const nd = await settled((await exportOf('ndjson', 'gzip', { select: ['region'], limit: 5 })).id);
    expect(nd.rows).toBe(5);
    const lines = gunzipSync(await readFile(nd.file_path!)).toString('utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l))).toEqual(Array(5).fill(expect.objectContaining({ region: expect.any(String) })));
    const pq = await settled((await exportOf('parquet', 'none', { metrics: [{ fn: 'count' }], dimensions: ['region'] })).id);
    expect(pq).toMatchObject({ status: 'succeeded', rows: 2 });
    expect((await readFile(pq.file_path!)).subarray(0, 4).toString()).toBe('PAR1');
  });

  it('reports a failure without the warehouse’s message', async () => {
    const created = await jobs.create({
      tenant: 't1', createdBy: 'u1', sourceType: 'dataset', sourceId: 'ds_x', format: 'csv', compression: 'none',
      query: { sql: `SELECT throwIf(1, 'boom secret detail') FROM ${dataset.table}`, countSql: 'SELECT 1 AS total', params: {} },
    });
    const job = await settled(created.id);
    expect(job.status).toBe('failed');
    expect(job.error).toMatch(/failed in the warehouse/);
    expect(job.error).not.toContain('boom');
  });

  it('runs again a job whose process died (lease expired), and expires finished files', async () => {
    const q = compileQuery({ select: ['region'], limit: 3 }, dataset, view, { export: true });
    const { rows } = await stores.metadata.query<{ id: string }>(
      `INSERT INTO export_jobs (id, tenant, created_by, source_type, source_id, format, compression, query_sql, count_sql, query_params, status, started_at, lease_until)
       VALUES ('exp_abandoned0001', 't1', 'u1', 'dataset', 'ds_x', 'csv', 'none', $1, $2, $3, 'running', now() - interval '1 hour', now() - interval '1 minute') RETURNING id`,
      [q.sql, q.countSql, JSON.stringify(q.params)],
    );
    await jobs.tick();
    const job = await settled(rows[0]!.id);
    expect(job).toMatchObject({ status: 'succeeded', rows: 3 });
    await stores.metadata.query(`UPDATE export_jobs SET expires_at = now() - interval '1 second' WHERE id = $1`, [job.id]);
    // A tick already under way (the sweep runs every 50 ms) may have passed its expiry step before
    // the UPDATE: tick until one starts after it.
    let expired = await jobs.get(job.id);
    for (let i = 0; i < 50 && expired!.status !== 'expired'; i++) {
      await jobs.tick();
      expired = await jobs.get(job.id);
    }
    expect(expired!.status).toBe('expired');
    // The sweep that marked it may still be removing the file: tick() hands back a sweep under way.
    await jobs.tick();
    await expect(stat(job.file_path!)).rejects.toThrow();
  });

  it('stops the warehouse query of a running export on close, and leaves the job queued for another process', async () => {
    // The shared instance stops claiming jobs; this one takes the slow job.
    await jobs.close();
    const own = new ExportJobs({ metadata: stores.metadata, warehouse: stores.warehouse, logger, dir: join(cfg.dataDir, 'exports'), ttlMs: 60_000, concurrency: 1, sweepIntervalMs: 50 });
    await own.start();
    const created = await own.create({
      tenant: 't1', createdBy: 'u1', sourceType: 'dataset', sourceId: 'ds_x', format: 'csv', compression: 'none',
      // Minutes of work in the warehouse for a one-line file.
      query: { sql: 'SELECT sum(number) AS s FROM numbers(1000000000000)', countSql: 'SELECT 1 AS total', params: {} },
    });
    for (let i = 0; i < 100 && (await own.get(created.id))?.status !== 'running'; i++) await new Promise((r) => setTimeout(r, 25));
    await new Promise((r) => setTimeout(r, 500));
    await own.close();
    // Embedded ClickHouse runs one query at a time per connection: this answers at once only if the export's query was stopped.
    const started = Date.now();
    await stores.warehouse.client.query({ query: 'SELECT 1', format: 'JSONEachRow' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await own.get(created.id))!.status).toBe('queued');
    await stores.metadata.query(`UPDATE export_jobs SET status = 'failed' WHERE id = $1`, [created.id]);
  }, 30_000);
});
