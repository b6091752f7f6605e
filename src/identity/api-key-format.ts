import { crc32 } from 'node:zlib';
import { randomBase62, toBase62 } from './random.js';

/**
 * API keys look like `weir_live_Ab3dE5fG_<32 base62 secret>_<6 base62 checksum>` (the spec's
 * ApiKeyCreated.secret): a prefix secret scanners can match, the environment, the public id used
 * for the lookup, the secret, and a CRC32 of everything before the last `_`, so a mistyped or
 * truncated key is refused without touching the database.
 */
export type ApiKeyEnv = 'live' | 'test';

export interface ParsedApiKey {
  env: ApiKeyEnv;
  publicId: string;
  /** `key_<public id>`: the record's primary key. */
  keyId: string;
  /** `weir_<env>_<public id>`: safe to show and log. */
  prefix: string;
}

const FORMAT = /^weir_(live|test)_([0-9A-Za-z]{8})_[0-9A-Za-z]{32}_([0-9A-Za-z]{6})$/;
const MAX_LENGTH = 64;

const checksum = (body: string): string => toBase62(crc32(body), 6);

export function newApiKey(env: ApiKeyEnv, publicId = randomBase62(8)): { key: string; parsed: ParsedApiKey } {
  const body = `weir_${env}_${publicId}_${randomBase62(32)}`;
  return { key: `${body}_${checksum(body)}`, parsed: describe(env, publicId) };
}

/** The key's parts, or undefined when it is not a well-formed key with a valid checksum. */
export function parseApiKey(raw: string): ParsedApiKey | undefined {
  if (raw.length > MAX_LENGTH) return undefined;
  const m = FORMAT.exec(raw);
  if (!m) return undefined;
  if (checksum(raw.slice(0, raw.lastIndexOf('_'))) !== m[3]) return undefined;
  return describe(m[1] as ApiKeyEnv, m[2]!);
}

export function keyIdOf(publicId: string): string {
  return `key_${publicId}`;
}

function describe(env: ApiKeyEnv, publicId: string): ParsedApiKey {
  return { env, publicId, keyId: keyIdOf(publicId), prefix: `weir_${env}_${publicId}` };
}
