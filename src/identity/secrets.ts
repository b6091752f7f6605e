import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { Queryable } from '../stores/index.js';

/** HMAC-SHA256 of a credential under the server's pepper, hex: what Weir stores instead of secrets. */
export function hashSecret(pepper: Buffer, secret: string): string {
  return createHmac('sha256', pepper).update(secret, 'utf8').digest('hex');
}

/** Constant-time comparison of two hex digests (a length mismatch is simply unequal). */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

const PEPPER_KEY = 'auth.api_key_pepper';

/**
 * The pepper keyed into every credential hash. Configured (API_KEY_PEPPER) in production, so that
 * a copy of the database alone cannot test guesses; otherwise made once and kept in the metadata
 * store, where every gateway process sharing the store finds the same one.
 */
export async function loadPepper(db: Queryable, configured: string | undefined, logger: Logger, production: boolean): Promise<Buffer> {
  if (configured) return Buffer.from(configured, 'utf8');
  await db.query(`INSERT INTO weir_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, [
    PEPPER_KEY,
    randomBytes(32).toString('base64url'),
  ]);
  const { rows } = await db.query<{ value: string }>(`SELECT value FROM weir_meta WHERE key = $1`, [PEPPER_KEY]);
  if (production) logger.warn('API_KEY_PEPPER is not set: the credential pepper is kept in the metadata store beside the hashes');
  return Buffer.from(rows[0]!.value, 'utf8');
}
