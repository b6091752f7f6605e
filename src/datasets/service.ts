import type { Logger } from 'pino';
import type { Principal } from '../gateway/request-types.js';
import { ProblemError, type ProblemDetail } from '../problem.js';
import type { Stores } from '../stores/index.js';
import { checkDefault, compileValidator, type RowValidator } from '../ingest/row-validator.js';
import { decodeCursor, encodeCursor } from '../list-cursor.js';
import { newId } from './ids.js';
import { KeyedMutex } from './locks.js';
import { datasetsRepo, type DatasetRecord, type VersionRecord } from './repository.js';
import { COLUMN_NAME_RE, HIDDEN_COLUMNS, normaliseColumn, type ColumnDef, type ColumnInput, type PartitionBy, type SchemaShape } from './schema.js';
import { compareSchemas, initialDiff } from './schema-diff.js';
import { WarehouseTables } from './warehouse-table.js';

export interface DatasetInput {
  name: string;
  description?: string | null;
  columns: ColumnInput[];
  time_column?: string | null;
  sort_key?: string[];
  partition_by?: PartitionBy;
  retention_days?: number | null;
}

/** What ingest needs of a dataset: where to write and how to check rows. */
export interface WritableDataset {
  record: DatasetRecord;
  validator: RowValidator;
  /** Changes when the table is rebuilt (a breaking change): rows checked before can't be written after. */
  generation: string;
}

export interface DatasetServiceOptions {
  /** How long a deleted dataset is kept before it is purged. */
  purgeGraceMs: number;
  /** How often the purge sweeper looks for datasets due; 0 turns it off. */
  purgeSweepMs: number;
}

const validation = (detail: string, errors: ProblemDetail[]) =>
  new ProblemError(400, { type: 'validation', title: 'Request validation failed', detail, errors });

/** Dataset metadata (PostgreSQL) and tables (ClickHouse), kept in step. */
export class DatasetService {
  readonly tables: WarehouseTables;
  /** Held while a dataset's table is written to or changed. */
  readonly tableLocks = new KeyedMutex();
  private readonly cache = new Map<string, { at: number; writable: WritableDataset }>();
  private sweeper?: NodeJS.Timeout;
  private purging = new Set<string>();

  constructor(
    private readonly stores: Stores,
    private readonly logger: Logger,
    private readonly options: DatasetServiceOptions,
  ) {
    this.tables = new WarehouseTables(stores.warehouse);
    if (options.purgeSweepMs > 0) {
      this.sweeper = setInterval(() => void this.purgeDue().catch((err: unknown) => logger.error({ err }, 'dataset purge sweep failed')), options.purgeSweepMs);
      this.sweeper.unref();
    }
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  async create(principal: Principal, input: DatasetInput): Promise<DatasetRecord> {
    const shape = checkShape(input);
    const id = newId('ds');
    const layout = { ...shape, retention_days: input.retention_days ?? null };
    let tableCreated = false;
    try {
      return await this.stores.metadata.transaction(async (tx) => {
        const record = await datasetsRepo.insert(tx, {
          id,
          tenant: principal.tenant,
          name: input.name,
          description: input.description ?? null,
          ...layout,
          version: 1,
          created_by: principal.subject,
        });
        await datasetsRepo.insertVersion(tx, { dataset_id: id, version: 1, breaking: false, ...shape, diff: initialDiff(shape.columns), created_by: principal.subject });
        // Last, so a refused name or a failed insert never leaves a table behind; if the table
        // can't be made, the transaction rolls back and no metadata is left either.
        await this.tables.create(id, layout);
        tableCreated = true;
        return record;
      });
    } catch (err) {
      if (tableCreated) await this.tables.drop(id).catch((dropErr: unknown) => this.logger.error({ err: dropErr, id }, 'could not drop the table of a dataset whose metadata failed'));
      if (isUniqueViolation(err)) throw new ProblemError(409, { detail: `The tenant already has a dataset named ${JSON.stringify(input.name)}.` });
      throw err;
    }
  }

  /** The tenant's dataset, or 404 (another tenant's dataset is as absent as a missing one). */
  async get(tenant: string, id: string): Promise<DatasetRecord> {
    const record = await datasetsRepo.find(this.stores.metadata, id);
    if (!record || record.tenant !== tenant) throw new ProblemError(404, { detail: `Dataset ${id} does not exist.` });
    return record;
  }

  async list(tenant: string, opts: { cursor?: string; limit: number; q?: string; includeDeleted: boolean }) {
    return datasetsRepo.list(this.stores.metadata, tenant, opts);
  }

  async versions(tenant: string, id: string, opts: { cursor?: string; limit: number }) {
    await this.get(tenant, id);
    const before = decodeCursor<{ v: number }>(opts.cursor, ['v'], 'query', ({ v }) => Number.isSafeInteger(v) && v > 0);
    const rows = await datasetsRepo.versions(this.stores.metadata, id, { limit: opts.limit + 1, before: before?.v });
    const page = rows.slice(0, opts.limit);
    const last = page[page.length - 1];
    return { items: page, next_cursor: rows.length > opts.limit && last ? encodeCursor({ v: last.version }) : null };
  }

  async update(
    principal: Principal,
    id: string,
    input: DatasetInput & { new_major_version?: boolean },
  ): Promise<{ dataset: DatasetRecord; version: VersionRecord; created: boolean }> {
    const shape = checkShape(input);
    return this.tableLocks.run(id, async () => {
      const current = await this.get(principal.tenant, id);
      if (current.deleted_at) throw deletedProblem(current);
      const cmp = compareSchemas(current, shape, input.columns);
      if (cmp.breaking.length && !input.new_major_version) {
        const n = cmp.breaking.length;
        throw new ProblemError(409, {
          type: 'breaking-schema-change',
          title: 'Breaking schema change',
          detail: `The update has ${n} breaking change${n === 1 ? '' : 's'}; send "new_major_version": true to make ${n === 1 ? 'it' : 'them'} in a new major version.`,
          extra: { breaking_changes: cmp.breaking },
        });
      }
      const retention = input.retention_days ?? null;
      const next: DatasetRecord = {
        ...current,
        name: input.name,
        description: input.description ?? null,
        ...shape,
        retention_days: retention,
        version: cmp.changed ? current.version + 1 : current.version,
        table_generation: cmp.breaking.length ? current.table_generation + 1 : current.table_generation,
      };
      const layout = { ...shape, retention_days: retention };
      let staging: string | undefined;
      if (cmp.breaking.length) staging = await this.tables.buildReplacement(id, layout, cmp.renames, current.columns);
      else {
        const retentionChanged = retention !== current.retention_days;
        await this.tables.applyCompatible(id, {
          added: cmp.diff.added,
          widened: cmp.diff.widened,
          retention: retentionChanged ? { timeColumn: shape.time_column, days: retention } : undefined,
        });
      }
      try {
        const result = await this.stores.metadata.transaction(async (tx) => {
          const dataset = await datasetsRepo.update(tx, next);
          const version = cmp.changed
            ? await datasetsRepo.insertVersion(tx, { dataset_id: id, version: next.version, breaking: cmp.breaking.length > 0, ...shape, diff: cmp.diff, created_by: principal.subject })
            : (await datasetsRepo.latestVersion(tx, id))!;
          if (staging) await this.tables.swap(id, staging);
          return { dataset, version, created: cmp.changed };
        });
        this.cache.delete(id);
        return result;
      } catch (err) {
        if (staging) await this.tables.drop(staging).catch(() => {});
        if (isUniqueViolation(err)) throw new ProblemError(409, { detail: `The tenant already has a dataset named ${JSON.stringify(input.name)}.` });
        throw err;
      }
    });
  }

  /** Soft delete (purge after the grace period), or purge now. Deleting twice answers as the first time. */
  async remove(principal: Principal, id: string, purgeNow: boolean): Promise<DatasetRecord> {
    await this.get(principal.tenant, id);
    const purgeAfter = new Date(Date.now() + (purgeNow ? 0 : this.options.purgeGraceMs));
    const record = await datasetsRepo.softDelete(this.stores.metadata, id, purgeAfter);
    this.cache.delete(id);
    if (purgeNow) void this.purge(id).catch((err: unknown) => this.logger.error({ err, id }, 'dataset purge failed; the sweeper retries'));
    return record;
  }

  /** Drops the table, then the metadata; safe to repeat after a failure half-way. */
  async purge(id: string): Promise<void> {
    if (this.purging.has(id)) return;
    this.purging.add(id);
    try {
      await this.tableLocks.run(id, async () => {
        await this.tables.drop(id);
        await this.tables.drop(`${id}__next`);
        await this.stores.metadata.transaction((tx) => datasetsRepo.purge(tx, id));
      });
      this.cache.delete(id);
      this.logger.info({ datasetId: id }, 'dataset purged');
    } finally {
      this.purging.delete(id);
    }
  }

  async purgeDue(): Promise<number> {
    const due = await datasetsRepo.purgeDue(this.stores.metadata, 100);
    for (const id of due) await this.purge(id);
    return due.length;
  }

  /** The owner tenant of a dataset (for the resolvers authorization uses), or undefined. */
  async tenantOf(id: string): Promise<string | undefined> {
    const hit = this.cache.get(id);
    if (hit) return hit.writable.record.tenant;
    return (await datasetsRepo.find(this.stores.metadata, id))?.tenant;
  }

  /** The dataset to ingest into: the tenant's, not deleted (409), with its compiled row check. */
  async writable(tenant: string, id: string): Promise<WritableDataset> {
    const hit = this.cache.get(id);
    // A short cache: other gateway processes' schema changes are seen within a second.
    if (hit && Date.now() - hit.at < 1000 && hit.writable.record.tenant === tenant) return hit.writable;
    const record = await this.get(tenant, id);
    if (record.deleted_at) throw deletedProblem(record);
    const writable: WritableDataset = {
      record,
      validator: compileValidator(record.columns),
      generation: `${record.id}:${record.table_generation}`,
    };
    this.cache.set(id, { at: Date.now(), writable });
    return writable;
  }
}

export function deletedProblem(record: DatasetRecord): ProblemError {
  return new ProblemError(409, {
    type: 'dataset-deleted',
    title: 'Dataset deleted',
    detail: `Dataset ${record.id} was deleted at ${record.deleted_at?.toISOString()} and is purged after ${record.purge_after?.toISOString()}.`,
  });
}

function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string })?.code === '23505';
}

/** The checks the spec's schema can't express: unique names, a usable time column, known sort-key columns, valid defaults. */
function checkShape(input: DatasetInput): SchemaShape {
  const errors: ProblemDetail[] = [];
  const columns: ColumnDef[] = input.columns.map(normaliseColumn);
  const seen = new Set<string>();
  columns.forEach((c, i) => {
    if (!COLUMN_NAME_RE.test(c.name)) errors.push({ in: 'body', pointer: `#/columns/${i}/name`, detail: 'not a valid column name' });
    if (seen.has(c.name)) errors.push({ in: 'body', pointer: `#/columns/${i}/name`, detail: `duplicate column name "${c.name}"` });
    if ((HIDDEN_COLUMNS as readonly string[]).includes(c.name)) errors.push({ in: 'body', pointer: `#/columns/${i}/name`, detail: `"${c.name}" is reserved` });
    seen.add(c.name);
    const bad = checkDefault(c);
    if (bad) errors.push({ in: 'body', pointer: `#/columns/${i}/default`, detail: `default does not fit the column: ${bad}` });
  });
  const time = input.time_column ?? null;
  const partition = input.partition_by ?? 'none';
  if (time !== null) {
    const col = columns.find((c) => c.name === time);
    if (!col) errors.push({ in: 'body', pointer: '#/time_column', detail: `no column named "${time}"` });
    else if (col.type !== 'timestamp' && col.type !== 'date') errors.push({ in: 'body', pointer: '#/time_column', detail: 'the time column must be a timestamp or date column' });
    else if (col.nullable) errors.push({ in: 'body', pointer: '#/time_column', detail: 'the time column must not be nullable' });
  } else if (partition !== 'none') errors.push({ in: 'body', pointer: '#/partition_by', detail: 'partitioning needs a time_column' });
  if (time === null && input.retention_days != null) errors.push({ in: 'body', pointer: '#/retention_days', detail: 'retention needs a time_column' });
  const sortKey = input.sort_key ?? [];
  sortKey.forEach((name, i) => {
    const col = columns.find((c) => c.name === name);
    if (!col) errors.push({ in: 'body', pointer: `#/sort_key/${i}`, detail: `no column named "${name}"` });
    else if (col.type === 'json' || col.type === 'map' || col.type === 'array') errors.push({ in: 'body', pointer: `#/sort_key/${i}`, detail: `a ${col.type} column cannot be in the sort key` });
  });
  if (new Set(sortKey).size !== sortKey.length) errors.push({ in: 'body', pointer: '#/sort_key', detail: 'a column appears twice in the sort key' });
  if (errors.length) throw validation(`The dataset definition is not valid: ${errors.map((e) => `${e.pointer} ${e.detail}`).slice(0, 3).join('; ')}.`, errors);
  return { columns, time_column: time, sort_key: sortKey, partition_by: partition };
}
