import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { StoreConfig } from '../../src/stores/index.js';

export type TestStoreMode = 'embedded' | 'real';

export function testStoreMode(): TestStoreMode {
  const mode = process.env.WEIR_TEST_STORES ?? 'embedded';
  if (mode !== 'embedded' && mode !== 'real') throw new Error(`WEIR_TEST_STORES must be 'embedded' or 'real', got ${mode}`);
  return mode;
}

export const testDatabaseUrl = (): string => process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const testRedisUrl = (): string => process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Isolated store config for one test file: its own Postgres schema, Redis key prefix and ClickHouse
 * database, so files can run in parallel against one server. The warehouse is always chDB here;
 * chDB binds one data directory per process, so use one config's dataDir per test file.
 */
export function testStoreConfig(name: string): StoreConfig {
  const id = randomBytes(4).toString('hex');
  const safe = name.toLowerCase().replace(/[^a-z0-9_]+/g, '_').slice(0, 30);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `weir-${safe}-`));
  const real = testStoreMode() === 'real';
  return {
    databaseUrl: real ? testDatabaseUrl() : undefined,
    databaseSchema: `weir_t_${safe}_${id}`,
    clickhouseDatabase: `weir_t_${id}`,
    redisUrl: real ? testRedisUrl() : undefined,
    redisKeyPrefix: `weir:t:${safe}:${id}:`,
    dataDir,
  };
}

/** afterAll cleanup: drops the test schema in real mode (embedded data lives in the temp dataDir). */
export async function dropTestSchema(cfg: StoreConfig): Promise<void> {
  if (!cfg.databaseUrl) return;
  if (!/^[a-z_][a-z0-9_]*$/.test(cfg.databaseSchema)) throw new Error(`refusing to drop schema ${cfg.databaseSchema}`);
  const client = new pg.Client({ connectionString: cfg.databaseUrl });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${cfg.databaseSchema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** afterAll cleanup: drops the schema (real mode) and removes the temp dataDir (PGlite files are ~40 MB). */
export async function cleanupTestStores(cfg: StoreConfig): Promise<void> {
  await dropTestSchema(cfg);
  await rm(cfg.dataDir, { recursive: true, force: true });
}
