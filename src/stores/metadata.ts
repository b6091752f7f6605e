import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { PGlite, Results, Transaction } from '@electric-sql/pglite';
import type { Logger } from 'pino';
import { runMigrations } from './migrate.js';

export interface QueryResult<T> { rows: T[]; rowCount: number }

export interface Queryable {
  /** With params: one statement. Without params: may hold several statements; the last one's result is returned. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<T>>;
}

export interface MetadataStore extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** BEGIN/COMMIT, ROLLBACK when fn throws. Use only `tx` inside fn (on PGlite the store itself waits for the transaction). */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface MetadataOptions {
  databaseUrl?: string;
  dataDir: string;
  schema: string;
  poolMax?: number;
  logger: Logger;
  /** Override the migrations folder (tests). */
  migrationsDir?: string;
}

// Lowercase only: search_path and CREATE SCHEMA would otherwise disagree on case folding.
const SCHEMA_RE = /^[a-z_][a-z0-9_]{0,62}$/;

/** "embedded PGlite at ./data/pglite" or "PostgreSQL at host:port/db" (never the password). */
export function describeMetadata(opts: Pick<MetadataOptions, 'databaseUrl' | 'dataDir'>): string {
  if (!opts.databaseUrl) return `embedded PGlite at ${path.join(opts.dataDir, 'pglite')}`;
  try {
    const u = new URL(opts.databaseUrl);
    return `PostgreSQL at ${u.host}${u.pathname}`;
  } catch {
    return 'PostgreSQL (unparseable DATABASE_URL)';
  }
}

export async function openMetadataStore(opts: MetadataOptions): Promise<MetadataStore> {
  if (!SCHEMA_RE.test(opts.schema)) {
    throw new Error(
      `Invalid metadata schema name ${JSON.stringify(opts.schema)}: use lowercase letters, digits and underscores (max 63, not starting with a digit)`,
    );
  }
  const store = opts.databaseUrl ? await openPostgres(opts, opts.databaseUrl) : await openPglite(opts);
  try {
    await store.transaction(async (tx) => {
      // CREATE SCHEMA IF NOT EXISTS can race between processes; serialise it.
      await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`weir_schema:${opts.schema}`]);
      await tx.query(`CREATE SCHEMA IF NOT EXISTS "${opts.schema}"`);
    });
    await runMigrations(store, { dir: opts.migrationsDir, logger: opts.logger });
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}

function pgResult<T>(res: pg.QueryResult | pg.QueryResult[]): QueryResult<T> {
  // pg returns an array for a multi-statement simple query.
  const last = Array.isArray(res) ? res[res.length - 1] : res;
  if (!last) return { rows: [], rowCount: 0 };
  return { rows: last.rows as T[], rowCount: last.rowCount ?? last.rows.length };
}

async function openPostgres(opts: MetadataOptions, url: string): Promise<MetadataStore> {
  const log = opts.logger;
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolMax ?? 10,
    connectionTimeoutMillis: 5000,
    options: `-c search_path=${opts.schema}`,
  });
  pool.on('error', (err) => log.error({ err }, 'metadata: idle PostgreSQL connection failed'));

  try {
    await pool.query('SELECT 1');
  } catch (err) {
    await pool.end().catch(() => {});
    throw new Error(`Could not connect to ${describeMetadata(opts)}: ${(err as Error).message}`, { cause: err });
  }

  const wrap = (c: pg.Pool | pg.PoolClient): Queryable => ({
    query: async <T>(sql: string, params?: unknown[]) => pgResult<T>(await c.query(sql, params)),
  });
  let closed: Promise<void> | undefined;
  return {
    kind: 'postgres',
    query: wrap(pool).query,
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let result: T;
      try {
        await client.query('BEGIN');
        result = await fn(wrap(client));
        await client.query('COMMIT');
      } catch (err) {
        try {
          await client.query('ROLLBACK');
          client.release();
        } catch (rollbackErr) {
          client.release(rollbackErr as Error); // destroy the connection instead of reusing it
        }
        throw err;
      }
      client.release();
      return result;
    },
    async ping() {
      await pool.query('SELECT 1');
    },
    close() {
      closed ??= pool.end();
      return closed;
    },
  };
}

async function openPglite(opts: MetadataOptions): Promise<MetadataStore> {
  const dir = path.resolve(opts.dataDir, 'pglite');
  await mkdir(dir, { recursive: true });
  // Loaded lazily so PostgreSQL deployments never load the WASM build.
  const { PGlite: PGliteCtor, types } = await import('@electric-sql/pglite');
  // int8 as string, like node-postgres, so the same code sees the same types on both backends.
  const db: PGlite = await PGliteCtor.create(dir, { parsers: { [types.INT8]: (v: string) => v } });
  await db.exec(`SET search_path TO "${opts.schema}"`);

  const wrap = (c: PGlite | Transaction): Queryable => ({
    async query<T>(sql: string, params?: unknown[]): Promise<QueryResult<T>> {
      let res: Results<T> | undefined;
      if (params && params.length > 0) res = await c.query<T>(sql, params);
      else res = (await c.exec(sql)).at(-1) as Results<T> | undefined;
      if (!res) return { rows: [], rowCount: 0 };
      return { rows: res.rows, rowCount: res.rowCount ?? res.affectedRows ?? res.rows.length };
    },
  });
  let closed: Promise<void> | undefined;
  return {
    kind: 'pglite',
    // PGlite runs every query and transaction under one exclusive lock, so transactions
    // never interleave and plain queries wait for a running transaction.
    query: wrap(db).query,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    async ping() {
      await db.query('SELECT 1');
    },
    close() {
      closed ??= db.close();
      return closed;
    },
  };
}
