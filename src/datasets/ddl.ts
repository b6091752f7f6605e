import { clickhouseType, quoteIdent } from './clickhouse-types.js';
import type { ColumnDef, SchemaShape } from './schema.js';

export interface TableLayout extends SchemaShape {
  retention_days: number | null;
}

/**
 * CREATE TABLE for a dataset's rows. Every identifier is validated and quoted; nothing the client
 * sent is spliced in otherwise (defaults are applied by the row validator, not by the table).
 */
export function createTableSql(table: string, layout: TableLayout): string {
  const cols = layout.columns.map((c) => `${quoteIdent(c.name)} ${clickhouseType(c)}`);
  cols.push("`_ingested_at` DateTime64(3, 'UTC') DEFAULT now64(3)", "`_request_id` String DEFAULT ''");
  const orderBy = layout.sort_key.length ? `(${layout.sort_key.map(quoteIdent).join(', ')})` : 'tuple()';
  const time = layout.time_column ? quoteIdent(layout.time_column) : undefined;
  const parts = [`CREATE TABLE IF NOT EXISTS ${quoteIdent(table)} (${cols.join(', ')})`, 'ENGINE = MergeTree', `ORDER BY ${orderBy}`];
  if (time && layout.partition_by === 'day') parts.push(`PARTITION BY toYYYYMMDD(${time})`);
  if (time && layout.partition_by === 'month') parts.push(`PARTITION BY toYYYYMM(${time})`);
  if (time && layout.retention_days) parts.push(`TTL toDateTime(${time}) + INTERVAL ${Math.trunc(layout.retention_days)} DAY`);
  // Nullable sort-key columns (allowed by the spec) need this.
  parts.push('SETTINGS allow_nullable_key = 1');
  return parts.join(' ');
}

export function addColumnSql(table: string, col: ColumnDef): string {
  return `ALTER TABLE ${quoteIdent(table)} ADD COLUMN IF NOT EXISTS ${quoteIdent(col.name)} ${clickhouseType(col)}`;
}

export function modifyColumnSql(table: string, col: ColumnDef): string {
  return `ALTER TABLE ${quoteIdent(table)} MODIFY COLUMN ${quoteIdent(col.name)} ${clickhouseType(col)}`;
}

export function retentionSql(table: string, timeColumn: string | null, days: number | null): string | undefined {
  if (!timeColumn) return undefined;
  if (days === null) return `ALTER TABLE ${quoteIdent(table)} REMOVE TTL`;
  return `ALTER TABLE ${quoteIdent(table)} MODIFY TTL toDateTime(${quoteIdent(timeColumn)}) + INTERVAL ${Math.trunc(days)} DAY`;
}

/**
 * For a rebuild (a breaking change): the SELECT list that reads the old table into the new
 * layout. Renamed columns read their old name; columns with no source are left to their defaults.
 */
export function copySelectList(next: ColumnDef[], sourceOf: Map<string, string>, oldNames: Set<string>): { into: string; select: string } {
  const into: string[] = [];
  const select: string[] = [];
  for (const col of next) {
    const source = sourceOf.get(col.name) ?? col.name;
    if (!oldNames.has(source)) continue;
    into.push(quoteIdent(col.name));
    // accurateCastOrNull keeps a row whose value no longer fits instead of failing the rebuild.
    const scalar = col.type !== 'array' && col.type !== 'map';
    // A type name of our own making (it holds quotes: DateTime64(3, 'UTC')), as a string literal.
    const target = clickhouseType({ ...col, nullable: false }).replace(/\\/g, '\\\\').replace(/'/g, "\\'");
    const cast = !scalar
      ? `CAST(${quoteIdent(source)}, '${target}')`
      : col.nullable
        ? `accurateCastOrNull(${quoteIdent(source)}, '${target}')`
        : `accurateCastOrDefault(assumeNotNull(${quoteIdent(source)}), '${target}')`;
    select.push(cast);
  }
  into.push('`_ingested_at`', '`_request_id`');
  select.push('`_ingested_at`', '`_request_id`');
  return { into: into.join(', '), select: select.join(', ') };
}
