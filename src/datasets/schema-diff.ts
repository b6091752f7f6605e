import { typeLabel, type ColumnDef, type ColumnInput, type SchemaShape } from './schema.js';

export interface ColumnChange { name: string; from: ColumnDef; to: ColumnDef }
export interface SchemaDiff {
  added: ColumnDef[];
  widened: ColumnChange[];
  changed: ColumnChange[];
  removed: ColumnDef[];
  renamed: { from: string; to: string }[];
}
export type BreakingKind =
  | 'column_removed' | 'column_renamed' | 'type_changed' | 'made_non_nullable'
  | 'non_nullable_added' | 'time_column_changed' | 'sort_key_changed' | 'partition_by_changed';
export interface BreakingChange { kind: BreakingKind; column: string | null; detail: string }

export interface SchemaComparison {
  diff: SchemaDiff;
  breaking: BreakingChange[];
  /** Whether anything about the schema changed (a new version is due). */
  changed: boolean;
  /** New column name → its name in the old schema, for renamed columns. */
  renames: Map<string, string>;
}

/** For version 1: every column is added. */
export function initialDiff(columns: ColumnDef[]): SchemaDiff {
  return { added: columns, widened: [], changed: [], removed: [], renamed: [] };
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
// jsonb hands keys back in its own order, so columns are compared field by field.
const FIELDS = ['type', 'items', 'values', 'nullable', 'default', 'description', 'max_length'] as const;
const sameColumn = (a: ColumnDef, b: ColumnDef) => FIELDS.every((f) => sameJson(a[f], b[f]));

/** int → float and date → timestamp keep every value; so do the same changes inside arrays and maps. */
function widensType(from: ColumnDef, to: ColumnDef): boolean {
  const scalar = (a?: string, b?: string) => a === b || (a === 'int' && b === 'float') || (a === 'date' && b === 'timestamp');
  if (from.type !== to.type) return scalar(from.type, to.type);
  if (from.type === 'array') return scalar(from.items, to.items);
  if (from.type === 'map') return scalar(from.values, to.values);
  return true;
}

/**
 * Compares the current schema with the requested one (DatasetUpdate's rules). Columns match by
 * name, or by `renamed_from`.
 */
export function compareSchemas(current: SchemaShape, next: SchemaShape, inputs: ColumnInput[]): SchemaComparison {
  const diff: SchemaDiff = { added: [], widened: [], changed: [], removed: [], renamed: [] };
  const breaking: BreakingChange[] = [];
  const oldByName = new Map(current.columns.map((c) => [c.name, c]));
  const renames = new Map<string, string>();
  const matchedOld = new Set<string>();
  next.columns.forEach((col, i) => {
    const renamedFrom = inputs[i]?.renamed_from;
    const sourceName = renamedFrom && renamedFrom !== col.name ? renamedFrom : col.name;
    const old = oldByName.get(sourceName);
    if (!old) {
      diff.added.push(col);
      if (!col.nullable && col.default === undefined) {
        breaking.push({ kind: 'non_nullable_added', column: col.name, detail: `Column "${col.name}" would be added as non-nullable without a default, so existing rows have no value for it.` });
      }
      return;
    }
    matchedOld.add(sourceName);
    if (sourceName !== col.name) {
      renames.set(col.name, sourceName);
      diff.renamed.push({ from: sourceName, to: col.name });
      breaking.push({ kind: 'column_renamed', column: sourceName, detail: `Column "${sourceName}" would be renamed to "${col.name}", which breaks readers and writers that use the old name.` });
    }
    if (sameColumn(old, col)) return;
    const change = { name: col.name, from: old, to: col };
    const problems: BreakingChange[] = [];
    if (!widensType(old, col)) {
      problems.push({ kind: 'type_changed', column: col.name, detail: `Column "${col.name}" would change from ${typeLabel(old)} to ${typeLabel(col)}, which does not keep every value.` });
    }
    if (old.nullable && !col.nullable) {
      problems.push({ kind: 'made_non_nullable', column: col.name, detail: `Column "${col.name}" would become non-nullable; existing rows may hold null.` });
    }
    if (old.max_length === undefined ? col.max_length !== undefined : col.max_length !== undefined && col.max_length < old.max_length) {
      problems.push({ kind: 'type_changed', column: col.name, detail: `Column "${col.name}" would get a smaller max_length, which narrows it.` });
    }
    if (problems.length) {
      breaking.push(...problems);
      diff.changed.push(change);
    } else diff.widened.push(change);
  });
  for (const old of current.columns) {
    if (!matchedOld.has(old.name)) {
      diff.removed.push(old);
      breaking.push({ kind: 'column_removed', column: old.name, detail: `Column "${old.name}" would be removed, and its data with it.` });
    }
  }
  if (current.time_column !== next.time_column) {
    breaking.push({ kind: 'time_column_changed', column: null, detail: `The time column would change from ${current.time_column ?? 'none'} to ${next.time_column ?? 'none'}.` });
  }
  if (!sameJson(current.sort_key, next.sort_key)) {
    breaking.push({ kind: 'sort_key_changed', column: null, detail: `The sort key would change from [${current.sort_key.join(', ')}] to [${next.sort_key.join(', ')}].` });
  }
  if (current.partition_by !== next.partition_by) {
    breaking.push({ kind: 'partition_by_changed', column: null, detail: `Partitioning would change from ${current.partition_by} to ${next.partition_by}.` });
  }
  const changed =
    breaking.length > 0 || diff.added.length > 0 || diff.widened.length > 0 || diff.changed.length > 0 || diff.removed.length > 0 ||
    !sameJson(current.columns.map((c) => c.name), next.columns.map((c) => c.name));
  return { diff, breaking, changed, renames };
}
