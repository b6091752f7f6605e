import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Queryable } from './metadata.js';

export interface Migration { id: number; name: string; file: string; sql: string; checksum: string }

interface MigrationTarget { transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> }

const FILE_RE = /^(\d{4})_([A-Za-z0-9_-]+)\.sql$/;

// Lock key is per schema so isolated schemas in one database don't wait on each other.
const LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext('weir_migrations:' || current_schema()))`;

/** src/stores/migrations when running from src (tsx); tsc does not copy .sql, so dist falls back to the sibling src folder. */
export function defaultMigrationsDir(): string {
  const candidates = [
    new URL('./migrations/', import.meta.url),
    new URL('../../../src/stores/migrations/', import.meta.url), // from dist/src/stores/
  ].map((u) => fileURLToPath(u));
  const found = candidates.find((dir) => existsSync(dir));
  if (!found) throw new Error(`Migrations folder not found (looked in ${candidates.join(', ')})`);
  return found;
}

export async function loadMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const out: Migration[] = [];
  for (const file of files) {
    const m = FILE_RE.exec(file);
    if (!m) throw new Error(`Bad migration file name ${file} in ${dir}: expected NNNN_name.sql`);
    const id = Number(m[1]);
    const dup = out.find((x) => x.id === id);
    if (dup) throw new Error(`Duplicate migration id ${id}: ${dup.file} and ${file}`);
    // Normalise line endings so a checkout with CRLF doesn't look like an edited migration.
    const sql = (await readFile(path.join(dir, file), 'utf8')).replace(/\r\n/g, '\n');
    out.push({ id, name: m[2]!, file, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return out;
}

interface AppliedRow { id: number; name: string; checksum: string }

function verify(m: Migration, row: AppliedRow, dir: string): void {
  if (row.checksum !== m.checksum) {
    throw new Error(
      `Migration ${m.file} was changed after it was applied (checksum mismatch in ${path.join(dir, m.file)}). ` +
        'Applied migrations must not be edited: revert the file and add a new migration instead.',
    );
  }
}

/** Applies pending migrations, one transaction each. Returns the files applied by this call. */
export async function runMigrations(db: MigrationTarget, opts: { dir?: string; logger: Logger }): Promise<string[]> {
  const dir = opts.dir ?? defaultMigrationsDir();
  const migrations = await loadMigrations(dir);

  const applied = await db.transaction(async (tx) => {
    await tx.query(LOCK_SQL);
    await tx.query(`CREATE TABLE IF NOT EXISTS weir_migrations (
      id int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    return (await tx.query<AppliedRow>('SELECT id, name, checksum FROM weir_migrations ORDER BY id')).rows;
  });
  const byId = new Map(applied.map((r) => [Number(r.id), r]));
  for (const m of migrations) {
    const row = byId.get(m.id);
    if (row) verify(m, row, dir);
  }
  const known = new Set(migrations.map((m) => m.id));
  for (const r of applied) {
    if (!known.has(Number(r.id))) opts.logger.warn({ id: r.id, name: r.name }, 'metadata: applied migration has no file');
  }

  const done: string[] = [];
  for (const m of migrations.filter((x) => !byId.has(x.id))) {
    const ran = await db.transaction(async (tx) => {
      await tx.query(LOCK_SQL);
      // Another process may have applied it while we waited for the lock.
      const again = await tx.query<AppliedRow>('SELECT id, name, checksum FROM weir_migrations WHERE id = $1', [m.id]);
      if (again.rows[0]) {
        verify(m, again.rows[0], dir);
        return false;
      }
      await tx.query(m.sql);
      await tx.query('INSERT INTO weir_migrations (id, name, checksum, applied_at) VALUES ($1, $2, $3, now())', [
        m.id,
        m.name,
        m.checksum,
      ]);
      return true;
    });
    if (ran) {
      opts.logger.info({ migration: m.file }, 'metadata: applied migration');
      done.push(m.file);
    }
  }
  return done;
}
