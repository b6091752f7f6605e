/** A dataset's schema as Weir stores it: the spec's Column, with its defaults filled in. */
export type ScalarType = 'string' | 'int' | 'float' | 'bool' | 'timestamp' | 'date' | 'json';
export type ColumnType = ScalarType | 'array' | 'map';
export type PartitionBy = 'none' | 'day' | 'month';

export interface ColumnDef {
  name: string;
  type: ColumnType;
  items?: ScalarType;
  values?: ScalarType;
  nullable: boolean;
  default?: unknown;
  description?: string;
  max_length?: number;
}

/** What a schema version fixes: the columns and how the warehouse lays the rows out. */
export interface SchemaShape {
  columns: ColumnDef[];
  time_column: string | null;
  sort_key: string[];
  partition_by: PartitionBy;
}

/** The spec's ColumnName pattern; every identifier that reaches SQL has passed it. */
export const COLUMN_NAME_RE = /^[a-z_][a-z0-9_]{0,62}$/;
/** The spec's dataset id pattern (also the warehouse table name). */
export const DATASET_ID_RE = /^ds_[0-9A-Za-z]{8,40}$/;
/** Column names Weir keeps for itself in every warehouse table. */
export const HIDDEN_COLUMNS = ['_ingested_at', '_request_id'] as const;

/** A column as a client sent it (nullable defaults to true; renamed_from only on update). */
export interface ColumnInput {
  name: string;
  type: ColumnType;
  items?: ScalarType;
  values?: ScalarType;
  nullable?: boolean;
  default?: unknown;
  description?: string;
  max_length?: number;
  renamed_from?: string;
}

export function normaliseColumn(input: ColumnInput): ColumnDef {
  const col: ColumnDef = { name: input.name, type: input.type, nullable: input.nullable ?? true };
  if (input.items !== undefined) col.items = input.items;
  if (input.values !== undefined) col.values = input.values;
  if (input.default !== undefined) col.default = input.default;
  if (input.description !== undefined) col.description = input.description;
  if (input.max_length !== undefined) col.max_length = input.max_length;
  return col;
}

/** The column's type as text for messages: `array<string>`, `map<int>`, `float`. */
export function typeLabel(col: Pick<ColumnDef, 'type' | 'items' | 'values'>): string {
  if (col.type === 'array') return `array<${col.items}>`;
  if (col.type === 'map') return `map<${col.values}>`;
  return col.type;
}
