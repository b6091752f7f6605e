import type { Warehouse } from '../stores/index.js';
import { quoteIdent } from './clickhouse-types.js';
import { addColumnSql, copySelectList, createTableSql, modifyColumnSql, retentionSql, type TableLayout } from './ddl.js';
import type { ColumnDef } from './schema.js';
import type { ColumnChange } from './schema-diff.js';

/** The warehouse side of a dataset: its table's DDL. The table is named after the dataset id. */
export class WarehouseTables {
  constructor(private readonly warehouse: Warehouse) {}

  private async run(query: string): Promise<void> {
    await this.warehouse.client.command({ query, clickhouse_settings: { mutations_sync: '2', alter_sync: '2' } as never });
  }

  create(table: string, layout: TableLayout): Promise<void> {
    return this.run(createTableSql(table, layout));
  }

  drop(table: string): Promise<void> {
    return this.run(`DROP TABLE IF EXISTS ${quoteIdent(table)}`);
  }

  /** Compatible changes, in place: new columns added, widened ones modified, the TTL replaced. */
  async applyCompatible(
    table: string,
    change: { added: ColumnDef[]; widened: ColumnChange[]; retention?: { timeColumn: string | null; days: number | null } },
  ): Promise<void> {
    for (const col of change.added) await this.run(addColumnSql(table, col));
    for (const w of change.widened) {
      const typeChanged = w.from.type !== w.to.type || w.from.items !== w.to.items || w.from.values !== w.to.values || w.from.nullable !== w.to.nullable;
      if (typeChanged) await this.run(modifyColumnSql(table, w.to));
    }
    if (change.retention) {
      const sql = retentionSql(table, change.retention.timeColumn, change.retention.days);
      if (sql) await this.run(sql);
    }
  }

  /**
   * A breaking change: the rows are copied into a new table with the new layout. The caller
   * swaps it in with `swap` once the metadata is updated, and drops the old one.
   */
  async buildReplacement(table: string, next: TableLayout, renames: Map<string, string>, oldColumns: ColumnDef[]): Promise<string> {
    const staging = `${table}__next`;
    await this.drop(staging);
    await this.create(staging, next);
    const { into, select } = copySelectList(next.columns, renames, new Set(oldColumns.map((c) => c.name)));
    await this.run(`INSERT INTO ${quoteIdent(staging)} (${into}) SELECT ${select} FROM ${quoteIdent(table)}`);
    return staging;
  }

  async swap(table: string, staging: string): Promise<void> {
    const retired = `${table}__old`;
    await this.drop(retired);
    await this.run(`RENAME TABLE ${quoteIdent(table)} TO ${quoteIdent(retired)}, ${quoteIdent(staging)} TO ${quoteIdent(table)}`);
    await this.drop(retired);
  }

  /** Deletes the rows one request (or one chunk of an ingest job) wrote: the undo of an unfinished attempt. */
  async deleteByRequest(table: string, requestId: string): Promise<void> {
    await this.warehouse.client.command({
      query: `ALTER TABLE ${quoteIdent(table)} DELETE WHERE _request_id = {rid:String}`,
      query_params: { rid: requestId },
      clickhouse_settings: { mutations_sync: '2' },
    });
  }
}
