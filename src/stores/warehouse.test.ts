import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { cleanupTestStores, testStoreConfig } from '../../test/helpers/store-env.js';
import { openWarehouse, type Warehouse } from './warehouse.js';

const logger = pino({ level: 'silent' });
// chDB binds one data directory per process: this file uses one path (plus a last test that moves).
const cfg = testStoreConfig('warehouse');
const tempDirs: string[] = [];
const tempDir = (name: string): string => {
  const dir = mkdtempSync(path.join(os.tmpdir(), name));
  tempDirs.push(dir);
  return dir;
};
const opts = { dataDir: cfg.dataDir, database: cfg.clickhouseDatabase, logger };

describe('warehouse (chDB)', () => {
  let wh: Warehouse;
  afterAll(async () => {
    await wh?.close();
    await cleanupTestStores(cfg);
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });

  it('opens chDB, creates the database and pings', async () => {
    wh = await openWarehouse(opts);
    expect(wh.kind).toBe('chdb');
    expect(wh.database).toBe(cfg.clickhouseDatabase);
    await wh.ping();
    const rs = await wh.client.query({
      query: 'SELECT count() AS n FROM system.databases WHERE name = {db:String}',
      query_params: { db: cfg.clickhouseDatabase },
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([{ n: '1' }]);
  });

  it('round-trips rows through create table, insert and a parameterised select in its own database', async () => {
    const { client } = wh;
    await client.command({
      query: `CREATE TABLE events (id UInt64, route String, status UInt16, at DateTime64(3, 'UTC'))
              ENGINE = MergeTree ORDER BY id`,
    });
    await client.insert({
      table: 'events',
      format: 'JSONEachRow',
      values: [
        { id: 1, route: '/a', status: 200, at: '2024-05-01T10:00:00.250Z' },
        { id: 2, route: '/b', status: 500, at: '2024-05-01T10:00:01Z' },
        { id: 3, route: '/a', status: 404, at: '2024-05-01T10:00:02Z' },
      ],
    });
    const rs = await client.query({
      query: `SELECT id, status, toString(at) AS at FROM events WHERE route = {route:String} AND status >= {min:UInt16} ORDER BY id`,
      query_params: { route: '/a', min: 200 },
      format: 'JSONEachRow',
    });
    expect(await rs.json()).toEqual([
      { id: '1', status: 200, at: '2024-05-01 10:00:00.250' },
      { id: '3', status: 404, at: '2024-05-01 10:00:02.000' },
    ]);
    const where = await client.query({
      query: `SELECT database FROM system.tables WHERE name = 'events' AND database != 'system'`,
      format: 'JSONEachRow',
    });
    expect(await where.json()).toEqual([{ database: cfg.clickhouseDatabase }]);
  });

  it('allows a second warehouse on the same path and refuses a different one with a clear message', async () => {
    const second = await openWarehouse({ ...opts, database: `${cfg.clickhouseDatabase}_b` });
    const rs = await second.client.query({ query: `SELECT count() AS n FROM ${cfg.clickhouseDatabase}.events`, format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([{ n: '3' }]);
    await second.close();
    await wh.ping(); // closing the other one leaves this one working

    const other = tempDir('weir-other-');
    await expect(openWarehouse({ ...opts, dataDir: other })).rejects.toThrow(
      /chDB\) is already open at .*chdb in this process and can only bind one data directory per process/,
    );
    await wh.ping();
  });

  it('validates the database name before touching anything', async () => {
    await expect(openWarehouse({ ...opts, database: 'bad-name; DROP' })).rejects.toThrow(/Invalid ClickHouse database name/);
  });

  it('fails with a clear error naming the server (not the password) when ClickHouse is unreachable', async () => {
    const err = await openWarehouse({ ...opts, clickhouseUrl: 'http://weir:hunter2@127.0.0.1:1', requestTimeoutMs: 2000 }).catch(
      (e: Error) => e,
    );
    expect((err as Error).message).toMatch(/Could not connect to ClickHouse at 127\.0\.0\.1:1\//);
    expect((err as Error).message).not.toContain('hunter2');
  });

  it('closes idempotently, after which another data directory can be opened', async () => {
    await wh.close();
    await wh.close();
    const otherDir = tempDir('weir-moved-');
    const moved = await openWarehouse({ ...opts, dataDir: otherDir });
    try {
      await moved.ping();
      const rs = await moved.client.query({ query: 'SELECT currentDatabase() AS db', format: 'JSONEachRow' });
      expect(await rs.json()).toEqual([{ db: cfg.clickhouseDatabase }]);
    } finally {
      await moved.close();
    }
  });
});
