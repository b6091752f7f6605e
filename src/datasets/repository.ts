import { keysetPage } from '../list-cursor.js';
import type { Queryable } from '../stores/index.js';
import type { ColumnDef, PartitionBy, SchemaShape } from './schema.js';
import type { SchemaDiff } from './schema-diff.js';

export interface DatasetRecord extends SchemaShape {
  id: string;
  tenant: string;
  name: string;
  description: string | null;
  retention_days: number | null;
  version: number;
  table_generation: number;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
  purge_after: Date | null;
}

export interface VersionRecord extends SchemaShape {
  dataset_id: string;
  version: number;
  breaking: boolean;
  diff: SchemaDiff;
  created_at: Date;
  created_by: string;
}

type Row = Record<string, unknown>;
const asDate = (v: unknown): Date => (v instanceof Date ? v : new Date(String(v)));
const asJson = <T>(v: unknown): T => (typeof v === 'string' ? (JSON.parse(v) as T) : (v as T));

function toDataset(r: Row): DatasetRecord {
  return {
    id: String(r.id),
    tenant: String(r.tenant),
    name: String(r.name),
    description: (r.description as string | null) ?? null,
    columns: asJson<ColumnDef[]>(r.columns),
    time_column: (r.time_column as string | null) ?? null,
    sort_key: (r.sort_key as string[]) ?? [],
    partition_by: r.partition_by as PartitionBy,
    retention_days: r.retention_days === null ? null : Number(r.retention_days),
    version: Number(r.version),
    table_generation: Number(r.table_generation ?? 1),
    created_by: String(r.created_by),
    created_at: asDate(r.created_at),
    updated_at: asDate(r.updated_at),
    deleted_at: r.deleted_at ? asDate(r.deleted_at) : null,
    purge_after: r.purge_after ? asDate(r.purge_after) : null,
  };
}

function toVersion(r: Row): VersionRecord {
  return {
    dataset_id: String(r.dataset_id),
    version: Number(r.version),
    breaking: Boolean(r.breaking),
    columns: asJson<ColumnDef[]>(r.columns),
    time_column: (r.time_column as string | null) ?? null,
    sort_key: (r.sort_key as string[]) ?? [],
    partition_by: r.partition_by as PartitionBy,
    diff: asJson<SchemaDiff>(r.diff),
    created_at: asDate(r.created_at),
    created_by: String(r.created_by),
  };
}

/** SQL for datasets and their versions; every value is a parameter. */
export const datasetsRepo = {
  async insert(db: Queryable, d: Omit<DatasetRecord, 'created_at' | 'updated_at' | 'deleted_at' | 'purge_after' | 'table_generation'>): Promise<DatasetRecord> {
    const res = await db.query<Row>(
      `INSERT INTO datasets (id, tenant, name, description, columns, time_column, sort_key, partition_by, retention_days, version, created_by)
       VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::text[], $8, $9, $10, $11) RETURNING *`,
      [d.id, d.tenant, d.name, d.description, JSON.stringify(d.columns), d.time_column, d.sort_key, d.partition_by, d.retention_days, d.version, d.created_by],
    );
    return toDataset(res.rows[0]!);
  },

  async update(db: Queryable, d: DatasetRecord): Promise<DatasetRecord> {
    const res = await db.query<Row>(
      `UPDATE datasets SET name = $2, description = $3, columns = $4::jsonb, time_column = $5, sort_key = $6::text[],
         partition_by = $7, retention_days = $8, version = $9, table_generation = $10, updated_at = now()
       WHERE id = $1 RETURNING *`,
      [d.id, d.name, d.description, JSON.stringify(d.columns), d.time_column, d.sort_key, d.partition_by, d.retention_days, d.version, d.table_generation],
    );
    return toDataset(res.rows[0]!);
  },

  async insertVersion(db: Queryable, v: Omit<VersionRecord, 'created_at'>): Promise<VersionRecord> {
    const res = await db.query<Row>(
      `INSERT INTO dataset_versions (dataset_id, version, breaking, columns, time_column, sort_key, partition_by, diff, created_by)
       VALUES ($1, $2, $3, $4::jsonb, $5, $6::text[], $7, $8::jsonb, $9) RETURNING *`,
      [v.dataset_id, v.version, v.breaking, JSON.stringify(v.columns), v.time_column, v.sort_key, v.partition_by, JSON.stringify(v.diff), v.created_by],
    );
    return toVersion(res.rows[0]!);
  },

  async find(db: Queryable, id: string, lock = false): Promise<DatasetRecord | undefined> {
    const res = await db.query<Row>(`SELECT * FROM datasets WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
    return res.rows[0] ? toDataset(res.rows[0]) : undefined;
  },

  /** The tenant's datasets, newest first, a page at a time. */
  async list(
    db: Queryable,
    tenant: string,
    opts: { cursor?: string; limit: number; q?: string; includeDeleted: boolean },
  ): Promise<{ items: DatasetRecord[]; next_cursor: string | null }> {
    const where = ['tenant = $1'];
    const params: unknown[] = [tenant];
    if (!opts.includeDeleted) where.push('deleted_at IS NULL');
    if (opts.q) {
      params.push(`%${opts.q.replace(/[\\%_]/g, (m) => `\\${m}`)}%`);
      where.push(`name ILIKE $${params.length}`);
    }
    const page = await keysetPage<Row>(db, { select: '*', from: 'datasets', where: where.join(' AND '), params, order: 'desc' }, opts);
    return { items: page.items.map(toDataset), next_cursor: page.next_cursor };
  },

  async versions(db: Queryable, id: string, opts: { limit: number; before?: number }): Promise<VersionRecord[]> {
    const res = await db.query<Row>(
      `SELECT * FROM dataset_versions WHERE dataset_id = $1 AND ($2::int IS NULL OR version < $2::int) ORDER BY version DESC LIMIT $3`,
      [id, opts.before ?? null, opts.limit],
    );
    return res.rows.map(toVersion);
  },

  async latestVersion(db: Queryable, id: string): Promise<VersionRecord | undefined> {
    return (await this.versions(db, id, { limit: 1 }))[0];
  },

  async softDelete(db: Queryable, id: string, purgeAfter: Date): Promise<DatasetRecord> {
    const res = await db.query<Row>(
      `UPDATE datasets SET deleted_at = COALESCE(deleted_at, now()), purge_after = LEAST(COALESCE(purge_after, $2::timestamptz), $2::timestamptz), updated_at = now()
       WHERE id = $1 RETURNING *`,
      [id, purgeAfter.toISOString()],
    );
    return toDataset(res.rows[0]!);
  },

  async purgeDue(db: Queryable, limit: number): Promise<string[]> {
    const res = await db.query<{ id: string }>(
      `SELECT id FROM datasets WHERE purge_after IS NOT NULL AND purge_after <= now() ORDER BY purge_after LIMIT $1`,
      [limit],
    );
    return res.rows.map((r) => r.id);
  },

  /** Removes the dataset's metadata for good (versions cascade), with its quarantine and grants. */
  async purge(db: Queryable, id: string): Promise<void> {
    await db.query('DELETE FROM ingest_quarantine WHERE dataset_id = $1', [id]);
    await db.query('DELETE FROM ingest_idempotency WHERE dataset_id = $1', [id]);
    // access_grants belongs to authorization; it may not exist in every deployment yet.
    const grants = await db.query<{ t: string | null }>(`SELECT to_regclass('access_grants')::text AS t`);
    if (grants.rows[0]?.t) await db.query(`DELETE FROM access_grants WHERE resource_type = 'dataset' AND resource_id = $1`, [id]);
    await db.query('DELETE FROM datasets WHERE id = $1', [id]);
  },
};
