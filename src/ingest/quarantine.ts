import type { Queryable } from '../stores/index.js';

export interface QuarantinedRow { line: number; column?: string; reason: string; raw: string }

/** Rows kept "as sent" up to this many characters (the reason says when one was cut). */
const MAX_RAW = 64 * 1024;

/** Writes quarantined rows to PostgreSQL (ingest_quarantine), one statement per batch. */
export async function writeQuarantine(db: Queryable, datasetId: string, requestId: string, rows: QuarantinedRow[]): Promise<void> {
  if (!rows.length) return;
  await db.query(
    `INSERT INTO ingest_quarantine (dataset_id, request_id, line, column_name, reason, raw)
     SELECT $1, $2, t.line, t.col, t.reason, t.raw FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[]) AS t(line, col, reason, raw)`,
    [
      datasetId,
      requestId,
      rows.map((r) => r.line),
      rows.map((r) => r.column ?? null),
      rows.map((r) => (r.raw.length > MAX_RAW ? `${r.reason} (row cut to ${MAX_RAW} characters)` : r.reason)),
      // PostgreSQL text can't hold NUL.
      rows.map((r) => r.raw.slice(0, MAX_RAW).replace(/\u0000/g, '\\u0000')),
    ],
  );
}

export async function deleteQuarantine(db: Queryable, requestId: string): Promise<void> {
  await db.query('DELETE FROM ingest_quarantine WHERE request_id = $1', [requestId]);
}
