import type { ParamBag } from './params.js';
import type { AccessView, ColumnType, ElementType, Mask, QueryableColumn, QueryableDataset } from './types.js';

/** ClickHouse types for the logical column types, for typed parameters and casts. */
export function clickhouseType(type: ColumnType | ElementType, element?: ElementType): string {
  switch (type) {
    case 'string':
    case 'json':
      return 'String';
    case 'int':
      return 'Int64';
    case 'float':
      return 'Float64';
    case 'bool':
      return 'Bool';
    case 'timestamp':
      return "DateTime64(3, 'UTC')";
    case 'date':
      return 'Date32';
    case 'array':
      return `Array(${clickhouseType(element ?? 'string')})`;
    case 'map':
      return `Map(String, ${clickhouseType(element ?? 'string')})`;
  }
}

export const quoteIdent = (name: string) => `\`${name}\``;

/** A column as the caller may see it: its SQL expression (masked or plain) and its logical type. */
export interface VisibleColumn {
  name: string;
  sql: string;
  type: ColumnType;
  element?: ElementType;
}

const truncate: Record<Extract<Mask, { mask: 'truncate_time' }>['unit'], string> = {
  minute: 'toStartOfMinute',
  hour: 'toStartOfHour',
  day: 'toStartOfDay',
  week: 'toMonday',
  month: 'toStartOfMonth',
  year: 'toStartOfYear',
};

/** Applies a mask; undefined when the mask doesn't fit the column's type. */
function maskedSql(col: QueryableColumn, mask: Mask, params: ParamBag, salt: string): { sql: string; type: ColumnType } | undefined {
  const raw = quoteIdent(col.name);
  switch (mask.mask) {
    case 'null':
      if (col.type === 'array' || col.type === 'map') return { sql: `CAST(${col.type === 'array' ? '[]' : 'map()'}, '${clickhouseType(col.type, col.element)}')`, type: col.type };
      return { sql: `CAST(NULL, 'Nullable(${clickhouseType(col.type)})')`, type: col.type };
    case 'hash':
      return { sql: `lower(hex(SHA256(concat(${params.add(salt, 'String')}, toString(${raw})))))`, type: 'string' };
    case 'last_n': {
      const s = `toString(${raw})`;
      return {
        sql: `if(isNull(${raw}), NULL, concat(repeat('*', toUInt64(greatest(toInt64(lengthUTF8(${s})) - ${mask.n}, 0))), rightUTF8(${s}, ${mask.n})))`,
        type: 'string',
      };
    }
    case 'round':
      if (col.type !== 'int' && col.type !== 'float') return undefined;
      return { sql: `round(${raw}, ${mask.precision})`, type: col.type };
    case 'truncate_time':
      if (col.type === 'timestamp') return { sql: `toDateTime64(${truncate[mask.unit]}(${raw}), 3, 'UTC')`, type: 'timestamp' };
      if (col.type === 'date') return { sql: `toDate32(${truncate[mask.unit]}(${raw}))`, type: 'date' };
      return undefined;
  }
}

/**
 * The columns a caller may use, by name. A hidden column is simply absent, so using it reads
 * exactly like using a column that doesn't exist.
 */
export function visibleColumns(dataset: QueryableDataset, view: AccessView, params: ParamBag): Map<string, VisibleColumn> {
  const out = new Map<string, VisibleColumn>();
  for (const col of dataset.columns) {
    if (!view.columns.has(col.name)) continue;
    const mask = view.columns.get(col.name);
    if (!mask) {
      out.set(col.name, { name: col.name, sql: quoteIdent(col.name), type: col.type, element: col.element });
      continue;
    }
    const masked = maskedSql(col, mask, params, view.hashSalt ?? '');
    // A mask that doesn't fit the type hides the column rather than showing it raw.
    if (masked) out.set(col.name, { name: col.name, sql: masked.sql, type: masked.type, element: col.element });
  }
  return out;
}
