import { readdir } from 'node:fs/promises';
import path from 'node:path';

/**
 * Waits until a gateway's hit journal is empty: every acknowledged hit has been shipped into the
 * warehouse (a segment file is removed only after its insert returned, views included).
 */
export async function journalShipped(dataDir: string, timeoutMs = 60_000): Promise<void> {
  const root = path.join(dataDir, 'analytics-journal');
  for (const started = Date.now(); ; await new Promise((r) => setTimeout(r, 20))) {
    const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.wal'));
    if (!files.length) return;
    if (Date.now() - started > timeoutMs) throw new Error(`the hit journal still holds ${files.join(', ')} after ${timeoutMs} ms`);
  }
}
