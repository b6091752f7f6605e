import { mkdtempSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { cleanupTestStores, testStoreConfig, testStoreMode } from '../../test/helpers/store-env.js';
import type { StoreConfig } from './index.js';
import { openMetadataStore, type MetadataStore } from './metadata.js';
import { defaultMigrationsDir, loadMigrations, runMigrations } from './migrate.js';

const logger = pino({ level: 'silent' });
const embedded = testStoreMode() === 'embedded';
const configs: StoreConfig[] = [];
const tempDirs: string[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freshConfig(): StoreConfig {
  const cfg = testStoreConfig('metadata');
  configs.push(cfg);
  return cfg;
}

function open(cfg: StoreConfig, migrationsDir?: string): Promise<MetadataStore> {
  return openMetadataStore({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, schema: cfg.databaseSchema, logger, migrationsDir });
}

function migrationsDir(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-migrations-'));
  tempDirs.push(dir);
  for (const [name, sql] of Object.entries(files)) writeFileSync(path.join(dir, name), sql);
  return dir;
}

afterAll(async () => {
  for (const cfg of configs) await cleanupTestStores(cfg);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('metadata store', () => {
  it('opens the expected backend and applies the built-in migrations in the configured schema', async () => {
    const cfg = freshConfig();
    const db = await open(cfg);
    try {
      expect(db.kind).toBe(embedded ? 'pglite' : 'postgres');
      const tables = await db.query<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name`,
        [cfg.databaseSchema],
      );
      expect(tables.rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(['weir_meta', 'weir_migrations']));
      const applied = await db.query<{ id: number; name: string }>('SELECT id, name FROM weir_migrations ORDER BY id');
      const files = await loadMigrations(defaultMigrationsDir());
      expect(files[0]).toMatchObject({ id: 1, name: 'init' });
      expect(applied.rows).toEqual(files.map((f) => ({ id: f.id, name: f.name })));
      await db.query(`INSERT INTO weir_meta (key, value) VALUES ($1, $2)`, ['k', 'v']);
      expect((await db.query('SELECT value FROM weir_meta WHERE key = $1', ['k'])).rows).toEqual([{ value: 'v' }]);
    } finally {
      await db.close();
    }
  });

  it('resolves the migrations folder next to the module', () => {
    expect(existsSync(path.join(defaultMigrationsDir(), '0001_init.sql'))).toBe(true);
  });

  it('applies each migration once, in order, and tracks it across re-opens', async () => {
    const cfg = freshConfig();
    // Not idempotent on purpose: a re-run would fail or duplicate the row.
    const dir = migrationsDir({
      '0002_fill.sql': `INSERT INTO things (n) VALUES (1);\nINSERT INTO things (n) VALUES (2);`,
      '0001_things.sql': `CREATE TABLE things (n int PRIMARY KEY);`,
    });
    const first = await open(cfg, dir);
    const before = await first.query<{ id: number; name: string; checksum: string; applied_at: Date }>(
      'SELECT id, name, checksum, applied_at FROM weir_migrations ORDER BY id',
    );
    expect(before.rows.map((r) => [r.id, r.name])).toEqual([[1, 'things'], [2, 'fill']]);
    expect(before.rows[0]!.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(await runMigrations(first, { dir, logger })).toEqual([]);
    await first.close();

    const again = await open(cfg, dir);
    try {
      const after = await again.query('SELECT id, name, checksum, applied_at FROM weir_migrations ORDER BY id');
      expect(after.rows).toEqual(before.rows);
      expect((await again.query('SELECT count(*) AS c FROM things')).rows).toEqual([{ c: '2' }]);

      writeFileSync(path.join(dir, '0003_more.sql'), 'INSERT INTO things (n) VALUES (3);');
      expect(await runMigrations(again, { dir, logger })).toEqual(['0003_more.sql']);
      expect((await again.query('SELECT count(*) AS c FROM things')).rows).toEqual([{ c: '3' }]);
    } finally {
      await again.close();
    }
  });

  it('fails boot naming the file when an applied migration was edited', async () => {
    const cfg = freshConfig();
    const dir = migrationsDir({ '0001_things.sql': 'CREATE TABLE things (n int);' });
    await (await open(cfg, dir)).close();
    writeFileSync(path.join(dir, '0001_things.sql'), 'CREATE TABLE things (n bigint);');
    await expect(open(cfg, dir)).rejects.toThrow(/0001_things\.sql was changed after it was applied/);
  });

  it('rejects badly named migration files and schema names', async () => {
    const cfg = freshConfig();
    const dir = migrationsDir({ '1_oops.sql': 'SELECT 1;' });
    await expect(open(cfg, dir)).rejects.toThrow(/Bad migration file name 1_oops\.sql/);
    await expect(openMetadataStore({ dataDir: cfg.dataDir, schema: 'Bad-Schema', logger })).rejects.toThrow(/Invalid metadata schema name/);
  });

  it('does not apply a failing migration partially and reports the error', async () => {
    const cfg = freshConfig();
    const dir = migrationsDir({ '0001_half.sql': 'CREATE TABLE half (n int);\nSELECT no_such_function();' });
    await expect(open(cfg, dir)).rejects.toThrow(/no_such_function/);
    const ok = migrationsDir({ '0001_half.sql': 'CREATE TABLE half (n int);' });
    const db = await open(cfg, ok); // the same migration can still run: nothing of the failed one was kept
    try {
      expect((await db.query('SELECT count(*) AS c FROM weir_migrations')).rows).toEqual([{ c: '1' }]);
    } finally {
      await db.close();
    }
  });

  describe('queries and transactions', () => {
    const cfg = freshConfig();
    let db: MetadataStore;

    it('opens', async () => {
      db = await open(cfg);
      await db.query('CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL); INSERT INTO counter VALUES (1, 0)');
      await db.ping();
    });

    it('commits on success and rolls back everything when the callback throws', async () => {
      const value = await db.transaction(async (tx) => {
        await tx.query(`INSERT INTO weir_meta (key, value) VALUES ('kept', '1')`);
        return 42;
      });
      expect(value).toBe(42);
      await expect(
        db.transaction(async (tx) => {
          await tx.query(`INSERT INTO weir_meta (key, value) VALUES ('gone', '1')`);
          await tx.query(`UPDATE counter SET n = 99`);
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      const rows = await db.query<{ key: string }>('SELECT key FROM weir_meta ORDER BY key');
      expect(rows.rows).toEqual([{ key: 'kept' }]);
      expect((await db.query('SELECT n FROM counter')).rows).toEqual([{ n: 0 }]);
      // the store is usable after a rollback
      expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    });

    it('reports rowCount and returns int8 as a string on both backends', async () => {
      const upd = await db.query('UPDATE counter SET n = n WHERE id = $1', [1]);
      expect(upd.rowCount).toBe(1);
      const sel = await db.query('SELECT count(*) AS c, 2::int AS i FROM counter');
      expect(sel).toEqual({ rows: [{ c: '1', i: 2 }], rowCount: 1 });
    });

    it.skipIf(!embedded)('serialises concurrent PGlite transactions (no interleaving, no lost updates)', async () => {
      const events: string[] = [];
      await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          db.transaction(async (tx) => {
            events.push(`start${i}`);
            const { rows } = await tx.query<{ n: number }>('SELECT n FROM counter WHERE id = 1');
            await sleep(10);
            await tx.query('UPDATE counter SET n = $1 WHERE id = 1', [rows[0]!.n + 1]);
            events.push(`end${i}`);
          }),
        ),
      );
      for (let i = 0; i < events.length; i += 2) {
        expect(events[i + 1]).toBe(events[i]!.replace('start', 'end'));
      }
      expect((await db.query('SELECT n FROM counter')).rows).toEqual([{ n: 5 }]);
    });

    it.skipIf(!embedded)('makes plain PGlite queries wait for a running transaction', async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const tx = db.transaction(async (t) => {
        await t.query(`INSERT INTO weir_meta (key, value) VALUES ('during', '1')`);
        await gate;
      });
      await sleep(20);
      const read = db.query('SELECT count(*) AS c FROM weir_meta WHERE key = $1', ['during']);
      let settled = false;
      void read.then(() => (settled = true));
      await sleep(50);
      expect(settled).toBe(false);
      release();
      await tx;
      expect((await read).rows).toEqual([{ c: '1' }]);
    });

    it('closes idempotently', async () => {
      await db.close();
      await db.close();
      await expect(db.ping()).rejects.toThrow();
    });
  });

  it.skipIf(embedded)('applies migrations once when two processes boot at the same time', async () => {
    const cfg = freshConfig();
    const dir = migrationsDir({
      '0001_t.sql': 'CREATE TABLE t (n int);',
      '0002_fill.sql': 'INSERT INTO t VALUES (1);',
    });
    const stores = await Promise.all([open(cfg, dir), open(cfg, dir), open(cfg, dir)]);
    try {
      expect((await stores[0]!.query('SELECT count(*) AS c FROM t')).rows).toEqual([{ c: '1' }]);
      expect((await stores[1]!.query('SELECT count(*) AS c FROM weir_migrations')).rows).toEqual([{ c: '2' }]);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it.skipIf(embedded)('fails with a clear error naming the server (not the password) when PostgreSQL is unreachable', async () => {
    const err = await openMetadataStore({
      databaseUrl: 'postgres://weir:hunter2@127.0.0.1:1/nope',
      dataDir: os.tmpdir(),
      schema: 'weir',
      logger,
    }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/Could not connect to PostgreSQL at 127\.0\.0\.1:1\/nope/);
    expect((err as Error).message).not.toContain('hunter2');
  });
});
