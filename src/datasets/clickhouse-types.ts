import type { ColumnDef, ScalarType } from './schema.js';

const SCALAR: Record<ScalarType, string> = {
  string: 'String',
  int: 'Int64',
  float: 'Float64',
  bool: 'Bool',
  timestamp: "DateTime64(3, 'UTC')",
  date: 'Date32',
  // Stored as the JSON text: ClickHouse's JSON type reorders and retypes values, and the row
  // "as sent" is what a reader expects back.
  json: 'String',
};

/** The ClickHouse type of a column (see the README's type table). */
export function clickhouseType(col: Pick<ColumnDef, 'type' | 'items' | 'values' | 'nullable'>): string {
  let base: string;
  if (col.type === 'array') base = `Array(${SCALAR[col.items ?? 'string']})`;
  else if (col.type === 'map') base = `Map(String, ${SCALAR[col.values ?? 'string']})`;
  else base = SCALAR[col.type];
  // Arrays and maps can't be Nullable in ClickHouse; a missing one is stored empty.
  return col.nullable && col.type !== 'array' && col.type !== 'map' ? `Nullable(${base})` : base;
}

/** Backtick-quotes an identifier that has already matched COLUMN_NAME_RE or DATASET_ID_RE. */
export function quoteIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`refusing to quote identifier ${JSON.stringify(name)}`);
  return `\`${name}\``;
}
