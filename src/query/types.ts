import type { components } from '../../generated/types.js';

type Schemas = components['schemas'];

/**
 * The query body, flattened: the generated type is a union (rows | aggregates) that the validator
 * has already enforced, and the compiler reports the same rule itself with a pointer.
 */
export interface QueryRequest {
  select?: string[];
  metrics?: { fn: Schemas['QueryMetric']['fn']; column?: string; p?: number; as?: string }[];
  dimensions?: Schemas['QueryDimension'][];
  filters?: Schemas['FilterExpression'];
  date_range?: Schemas['DateRange'];
  order_by?: Schemas['OrderBy'][];
  limit?: number;
  cursor?: string;
}
export type FilterExpression = components['schemas']['FilterExpression'];
export type ColumnType = components['schemas']['ColumnType'];
export type ElementType = components['schemas']['ColumnElementType'];

/** A column as the compiler needs it: its name and logical type. */
export interface QueryableColumn {
  name: string;
  type: ColumnType;
  nullable: boolean;
  /** For arrays: the item type; for maps: the value type. */
  element?: ElementType;
}

/** The dataset a query runs over. `table` is already a validated, quoted `db`.`table`. */
export interface QueryableDataset {
  table: string;
  timeColumn?: string;
  sortKey?: string[];
  columns: QueryableColumn[];
}

export type Mask =
  | { mask: 'null' }
  | { mask: 'hash' }
  | { mask: 'last_n'; n: number }
  | { mask: 'round'; precision: number }
  | { mask: 'truncate_time'; unit: 'minute' | 'hour' | 'day' | 'week' | 'month' | 'year' };

/**
 * What one caller may see of a dataset: the visible columns (absent = hidden, indistinguishable
 * from a column that doesn't exist), each plain or through a mask, and a row predicate already
 * compiled to SQL with its own parameters (from row-level rules; absent = all rows).
 */
export interface AccessView {
  columns: Map<string, Mask | null>;
  rowFilter?: { sql: string; params: Record<string, unknown> };
  /** Salt for the hash mask, per tenant, so hashes can't be joined across tenants. */
  hashSalt?: string;
}

export interface CompiledQuery {
  /** The page: rows of the query, with LIMIT/OFFSET. */
  sql: string;
  /** The number of rows of the whole result, for `total_rows`. */
  countSql: string;
  params: Record<string, unknown>;
  columns: { name: string; type: ColumnType }[];
  limit: number;
  offset: number;
  /** Identifies the query (not the page) so a cursor can't be replayed against another one. */
  fingerprint: string;
}

// Compile-time check: the generated body type fits QueryRequest, so handlers can pass it on.
type Fits<A extends B, B> = A;
export type CheckedQueryRequest = Fits<Schemas['QueryRequest'], QueryRequest>;
