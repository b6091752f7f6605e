import type { components } from '../../generated/types.js';
import type { DatasetRecord, VersionRecord } from './repository.js';
import type { ColumnDef } from './schema.js';

type Schemas = components['schemas'];

/** A column as the API returns it (no write-only fields, `nullable` always present). */
export function presentColumn(c: ColumnDef): Schemas['Column'] {
  const out: Record<string, unknown> = { name: c.name, type: c.type };
  if (c.items !== undefined) out.items = c.items;
  if (c.values !== undefined) out.values = c.values;
  out.nullable = c.nullable;
  if (c.default !== undefined) out.default = c.default;
  if (c.description !== undefined) out.description = c.description;
  if (c.max_length !== undefined) out.max_length = c.max_length;
  return out as Schemas['Column'];
}

export function presentDataset(d: DatasetRecord): Schemas['Dataset'] {
  return {
    id: d.id,
    tenant: d.tenant,
    name: d.name,
    description: d.description,
    columns: d.columns.map(presentColumn),
    time_column: d.time_column,
    sort_key: d.sort_key,
    partition_by: d.partition_by,
    retention_days: d.retention_days,
    version: d.version,
    created_at: d.created_at.toISOString(),
    updated_at: d.updated_at.toISOString(),
    deleted_at: d.deleted_at?.toISOString() ?? null,
    purge_after: d.purge_after?.toISOString() ?? null,
  };
}

export function presentVersion(v: VersionRecord): Schemas['DatasetVersion'] {
  const change = (c: { name: string; from: ColumnDef; to: ColumnDef }) => ({ name: c.name, from: presentColumn(c.from), to: presentColumn(c.to) });
  return {
    dataset_id: v.dataset_id,
    version: v.version,
    breaking: v.breaking,
    columns: v.columns.map(presentColumn),
    time_column: v.time_column,
    sort_key: v.sort_key,
    partition_by: v.partition_by,
    diff: {
      added: v.diff.added.map(presentColumn),
      widened: v.diff.widened.map(change),
      changed: v.diff.changed.map(change),
      removed: v.diff.removed.map(presentColumn),
      renamed: v.diff.renamed,
    },
    created_at: v.created_at.toISOString(),
    created_by: v.created_by,
  };
}
