import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { cancellable } from '../query/cancel.js';
import type { Warehouse } from '../stores/index.js';

export type ExportFormat = 'csv' | 'ndjson' | 'parquet';
export type ExportCompression = 'none' | 'gzip';

const clickhouseFormat: Record<ExportFormat, string> = { csv: 'CSVWithNames', ndjson: 'JSONEachRow', parquet: 'Parquet' };

export function exportFileName(id: string, format: ExportFormat, compression: ExportCompression): string {
  return `${id}.${format}${compression === 'gzip' ? '.gz' : ''}`;
}

/**
 * Has ClickHouse write a query's result as a file, so memory doesn't grow with the export:
 * embedded chDB writes it itself (INTO OUTFILE); a ClickHouse server streams it over HTTP and the
 * gateway pipes the bytes to disk. Returns the file's size.
 */
export async function writeExportFile(
  warehouse: Warehouse,
  query: { sql: string; params: Record<string, unknown> },
  format: ExportFormat,
  compression: ExportCompression,
  path: string,
  signal?: AbortSignal,
): Promise<number> {
  // Tagged, so an abort (shutdown) stops the warehouse's work too, not just the wait for it.
  await cancellable(warehouse, signal, async (tag) => {
    if (warehouse.kind === 'chdb') {
      // The path is ours (DATA_DIR and a generated id), never the client's; quoted as a literal
      // because INTO OUTFILE takes no parameters.
      if (!/^[\w./-]+$/.test(path)) throw new Error(`unsafe export path ${path}`);
      const gzip = compression === 'gzip' ? " COMPRESSION 'gzip'" : '';
      await warehouse.client.command({
        query: `${query.sql} INTO OUTFILE '${path}'${gzip} FORMAT ${clickhouseFormat[format]}`,
        query_params: query.params,
        clickhouse_settings: tag,
        abort_signal: signal,
      });
    } else {
      const result = await warehouse.client.exec({
        query: `${query.sql} FORMAT ${clickhouseFormat[format]}`,
        query_params: query.params,
        clickhouse_settings: tag,
        abort_signal: signal,
      });
      const body = result.stream as Readable;
      if (compression === 'gzip') await pipeline(body, createGzip(), createWriteStream(path));
      else await pipeline(body, createWriteStream(path));
    }
  });
  return (await stat(path)).size;
}
