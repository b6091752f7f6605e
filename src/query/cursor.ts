import { createHash } from 'node:crypto';

/** Opaque page cursors: the offset of the next page, bound to the query they came from. */
export function queryFingerprint(normalised: unknown): string {
  return createHash('sha256').update(JSON.stringify(normalised)).digest('base64url').slice(0, 16);
}

export function encodeCursor(offset: number, fingerprint: string): string {
  return Buffer.from(JSON.stringify({ o: offset, f: fingerprint })).toString('base64url');
}

/** The offset a cursor points at, or undefined when it is malformed or from another query. */
export function decodeCursor(cursor: string, fingerprint: string): number | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { o?: unknown; f?: unknown };
    if (parsed.f !== fingerprint || typeof parsed.o !== 'number' || !Number.isSafeInteger(parsed.o) || parsed.o < 0) return undefined;
    return parsed.o;
  } catch {
    return undefined;
  }
}
