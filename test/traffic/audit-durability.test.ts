import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { openMetadataStore, type MetadataStore } from '../../src/stores/metadata.js';
import { repoRoot, startServerProcess } from '../helpers/server-process.js';
import { cleanupTestStores, testStoreConfig } from '../helpers/store-env.js';

const stores = testStoreConfig('audit_durability');
const env: Record<string, string> = {
  DATA_DIR: stores.dataDir,
  DATABASE_SCHEMA: stores.databaseSchema,
  ...(stores.databaseUrl && { DATABASE_URL: stores.databaseUrl }),
  RATE_LIMIT_POLICIES: JSON.stringify({ probe: { burst: 1000, rate: 100 } }),
  AUDIT_FLUSH_MS: '600000', // nothing is written before shutdown
  AUDIT_BATCH_SIZE: '1000',
};
const REQUESTS = 25;

afterAll(async () => {
  await cleanupTestStores(stores);
});

/** `npm run weir -- audit verify`, against the same database the server used. */
function verifyCli(): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli.ts'), 'audit', 'verify'], {
    cwd: repoRoot,
    env: { ...process.env, ...env, LOG_LEVEL: 'silent' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

async function withMetadata<T>(fn: (db: MetadataStore) => Promise<T>): Promise<T> {
  const db = await openMetadataStore({ databaseUrl: stores.databaseUrl, dataDir: stores.dataDir, schema: stores.databaseSchema, logger: pino({ level: 'silent' }) });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

describe('audit log durability and tamper evidence', () => {
  it('a clean shutdown writes every buffered record; verify passes, then names the first record edited behind the app', { timeout: 120_000 }, async () => {
    const server = await startServerProcess('audit_durability', env);
    for (let i = 0; i < REQUESTS; i++) await (await fetch(`${server.url}/${i % 2 ? 'healthz' : 'readyz'}`)).arrayBuffer();
    expect(await server.stop('SIGTERM')).toBe(0);

    const count = await withMetadata(async (db) => (await db.query<{ n: string }>('SELECT count(*) AS n FROM audit_events', [])).rows[0]!.n);
    expect(Number(count)).toBe(REQUESTS);

    const intact = verifyCli();
    expect(intact.out).toContain(`audit chain intact: ${REQUESTS} events in 1 tenant chain(s)`);
    expect(intact.code).toBe(0);

    // As a superuser would: bypass the append-only trigger for one transaction and change a record.
    const edited = await withMetadata(async (db) => {
      await expect(db.query(`UPDATE audit_events SET status = 200 WHERE seq = 7`, [])).rejects.toThrow(/append-only/);
      return db.transaction(async (tx) => {
        await tx.query(`SET LOCAL session_replication_role = replica`);
        await tx.query(`UPDATE audit_events SET client_ip = '10.9.8.7' WHERE seq = 7`);
        return (await tx.query<{ id: string }>(`SELECT id FROM audit_events WHERE seq = 7`)).rows[0]!.id;
      });
    });
    const broken = verifyCli();
    expect(broken.code).toBe(1);
    expect(broken.out).toContain(`first broken record: tenant=_anonymous seq=7 id=${edited}`);
    expect(broken.out).toMatch(/the record was altered/);
  });
});
