import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { keysetPage } from '../list-cursor.js';
import type { MetadataStore, Queryable, SharedState } from '../stores/index.js';
import { newApiKey, parseApiKey, type ApiKeyEnv } from './api-key-format.js';
import { freezePrincipal, toAttributes, type Principal } from './principal.js';
import { digestsEqual, hashSecret } from './secrets.js';

export interface ApiKeyRecord {
  keyId: string;
  env: ApiKeyEnv;
  tenant: string;
  name: string;
  secretHash: string;
  roles: string[];
  scopes: string[];
  attributes: Principal['attributes'];
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  rotatedTo: string | null;
  createdBy: string;
}

export interface NewApiKey {
  tenant: string;
  name: string;
  roles: string[];
  scopes: string[];
  attributes?: Principal['attributes'];
  expiresAt: Date | null;
  createdBy: string;
  createdAt?: Date;
}

export type ApiKeyFailure = 'malformed' | 'invalid' | 'revoked' | 'expired';
export type ApiKeyResult = { ok: true; principal: Principal; record: ApiKeyRecord } | { ok: false; reason: ApiKeyFailure; prefix?: string };

export interface ApiKeyPage {
  items: ApiKeyRecord[];
  nextCursor: string | null;
}

export class RotationConflict extends Error {}

/** Published with a key id whenever a key changes, so every process drops its cached copy. */
export const API_KEY_CHANNEL = 'auth:api-keys';
const CACHE_MAX = 10_000;
const COLUMNS = `key_id, env, tenant, name, secret_hash, roles, scopes, attributes, created_at, expires_at, last_used_at, revoked_at, rotated_to, created_by`;

interface Row {
  key_id: string;
  env: ApiKeyEnv;
  tenant: string;
  name: string;
  secret_hash: string;
  roles: string[];
  scopes: string[];
  attributes: unknown;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
  rotated_to: string | null;
  created_by: string;
}

const toRecord = (r: Row): ApiKeyRecord => ({
  keyId: r.key_id,
  env: r.env,
  tenant: r.tenant,
  name: r.name,
  secretHash: r.secret_hash,
  roles: [...r.roles],
  scopes: [...r.scopes],
  attributes: toAttributes(r.attributes),
  createdAt: new Date(r.created_at),
  expiresAt: r.expires_at && new Date(r.expires_at),
  lastUsedAt: r.last_used_at && new Date(r.last_used_at),
  revokedAt: r.revoked_at && new Date(r.revoked_at),
  rotatedTo: r.rotated_to,
  createdBy: r.created_by,
});

export function apiKeyPrefix(record: Pick<ApiKeyRecord, 'env' | 'keyId'>): string {
  return `weir_${record.env}_${record.keyId.slice('key_'.length)}`;
}

export interface ApiKeyStoreOptions {
  metadata: MetadataStore;
  shared: SharedState;
  pepper: Buffer;
  env: ApiKeyEnv;
  /** How long a looked-up key is trusted before it is read again (revocation is also pushed). */
  cacheTtlMs: number;
  logger: Logger;
  /** How often last-used times are written (the spec promises at most once a minute). */
  lastUsedFlushMs?: number;
}

/**
 * API keys: creation (the secret leaves only once), listing, revocation, rotation, and the
 * per-request check, which reads a brief in-process cache and never writes: last-used times are
 * collected and written in one statement per interval.
 */
export class ApiKeyStore {
  readonly #o: ApiKeyStoreOptions;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #lastUsed = new Map<string, number>();
  #timer?: NodeJS.Timeout;
  #unsubscribe?: () => Promise<void>;

  constructor(options: ApiKeyStoreOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    this.#unsubscribe = await this.#o.shared.subscribe(API_KEY_CHANNEL, (keyId) => this.#cache.delete(keyId));
    this.#timer = setInterval(() => void this.flushLastUsed(), this.#o.lastUsedFlushMs ?? 60_000);
    this.#timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flushLastUsed();
    await this.#unsubscribe?.().catch(() => {});
  }

  /** Checks a presented key. Malformed keys (format, environment, checksum) are refused without a lookup. */
  async authenticate(raw: string, now = Date.now()): Promise<ApiKeyResult> {
    const parsed = parseApiKey(raw);
    if (!parsed || parsed.env !== this.#o.env) return { ok: false, reason: 'malformed' };
    const entry = await this.#lookup(parsed.keyId);
    const record = entry.record;
    if (!record || !secretMatches(entry, record, this.#o.pepper, raw)) return { ok: false, reason: 'invalid', prefix: parsed.prefix };
    if (record.revokedAt) return { ok: false, reason: 'revoked', prefix: parsed.prefix };
    if (record.expiresAt && record.expiresAt.getTime() <= now) return { ok: false, reason: 'expired', prefix: parsed.prefix };
    this.#lastUsed.set(record.keyId, now);
    // One principal per cached key: requests share it (nothing downstream changes a principal).
    entry.principal ??= freezePrincipal({
      subject: record.keyId,
      tenant: record.tenant,
      roles: record.roles,
      scopes: record.scopes,
      attributes: { ...record.attributes, created_by: record.createdBy },
      authMethod: 'api_key',
      mfa: false,
      credentialId: record.keyId,
    });
    return { ok: true, record, principal: entry.principal };
  }

  async create(input: NewApiKey): Promise<{ record: ApiKeyRecord; secret: string }> {
    const created = await this.#insert(input, this.#o.metadata);
    await this.#changed(created.record.keyId);
    return created;
  }

  async #insert(input: NewApiKey, db: Queryable): Promise<{ record: ApiKeyRecord; secret: string }> {
    for (let attempt = 0; ; attempt++) {
      const { key, parsed } = newApiKey(this.#o.env);
      const { rows } = await db.query<Row>(
        `INSERT INTO api_keys (key_id, env, tenant, name, secret_hash, roles, scopes, attributes, created_at, expires_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (key_id) DO NOTHING RETURNING ${COLUMNS}`,
        [
          parsed.keyId,
          this.#o.env,
          input.tenant,
          input.name,
          hashSecret(this.#o.pepper, key),
          input.roles,
          input.scopes,
          JSON.stringify(input.attributes ?? {}),
          input.createdAt ?? new Date(),
          input.expiresAt,
          input.createdBy,
        ],
      );
      // 62^8 public ids: a collision is rare enough to simply draw again.
      if (rows[0]) return { record: toRecord(rows[0]), secret: key };
      if (attempt >= 3) throw new Error('could not allocate an API key id');
    }
  }

  async get(keyId: string): Promise<ApiKeyRecord | undefined> {
    const { rows } = await this.#o.metadata.query<Row>(`SELECT ${COLUMNS} FROM api_keys WHERE key_id = $1`, [keyId]);
    return rows[0] && toRecord(rows[0]);
  }

  async count(): Promise<number> {
    const { rows } = await this.#o.metadata.query<{ n: string }>(`SELECT count(*) AS n FROM api_keys`);
    return Number(rows[0]?.n ?? 0);
  }

  /** The tenant's keys, newest first, `limit` at a time. */
  async list(tenant: string, limit: number, cursor?: string): Promise<ApiKeyPage> {
    const page = await keysetPage<Row>(this.#o.metadata, { select: COLUMNS, from: 'api_keys', where: 'tenant = $1', params: [tenant], order: 'desc', id: 'key_id' }, { cursor, limit });
    return { items: page.items.map(toRecord), nextCursor: page.next_cursor };
  }

  /** Revokes a key of the tenant; revoking a revoked key changes nothing. False when there is no such key. */
  async revoke(tenant: string, keyId: string): Promise<boolean> {
    const { rowCount } = await this.#o.metadata.query(
      `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE key_id = $1 AND tenant = $2`,
      [keyId, tenant],
    );
    if (rowCount) await this.#changed(keyId);
    return rowCount > 0;
  }

  /**
   * Replaces a key with a new one of the same name, roles, scopes and lifetime; the old one keeps
   * working for `graceSeconds`. Undefined when there is no such key in the tenant.
   */
  async rotate(
    tenant: string,
    keyId: string,
    graceSeconds: number,
    rotatedBy: string,
    now = new Date(),
  ): Promise<{ record: ApiKeyRecord; secret: string } | undefined> {
    const result = await this.#o.metadata.transaction(async (tx) => {
      const { rows } = await tx.query<Row>(`SELECT ${COLUMNS} FROM api_keys WHERE key_id = $1 AND tenant = $2 FOR UPDATE`, [keyId, tenant]);
      const old = rows[0] && toRecord(rows[0]);
      if (!old) return undefined;
      if (old.revokedAt) throw new RotationConflict('The key is revoked; create a new key instead.');
      if (old.expiresAt && old.expiresAt <= now) throw new RotationConflict('The key has expired; create a new key instead.');
      if (old.rotatedTo) throw new RotationConflict(`The key was already rotated (to ${old.rotatedTo}).`);
      const lifetimeMs = old.expiresAt ? old.expiresAt.getTime() - old.createdAt.getTime() : undefined;
      const created = await this.#insert(
        {
          tenant,
          name: old.name,
          roles: old.roles,
          scopes: old.scopes,
          attributes: old.attributes,
          expiresAt: lifetimeMs === undefined ? null : new Date(now.getTime() + lifetimeMs),
          createdBy: rotatedBy,
          createdAt: now,
        },
        tx,
      );
      const graceEnd = new Date(now.getTime() + graceSeconds * 1000);
      const expiresAt = old.expiresAt && old.expiresAt < graceEnd ? old.expiresAt : graceEnd;
      await tx.query(`UPDATE api_keys SET rotated_to = $2, expires_at = $3 WHERE key_id = $1`, [keyId, created.record.keyId, expiresAt]);
      return created;
    });
    if (result) {
      await this.#changed(keyId);
      await this.#changed(result.record.keyId);
    }
    return result;
  }

  /** Writes the last-used times collected since the previous flush, in one statement. */
  async flushLastUsed(): Promise<void> {
    if (this.#lastUsed.size === 0) return;
    const batch = [...this.#lastUsed];
    this.#lastUsed.clear();
    try {
      await this.#o.metadata.query(
        `UPDATE api_keys k SET last_used_at = GREATEST(COALESCE(k.last_used_at, v.t), v.t)
         FROM (SELECT unnest($1::text[]) AS id, unnest($2::timestamptz[]) AS t) v WHERE k.key_id = v.id`,
        [batch.map(([id]) => id), batch.map(([, t]) => new Date(t).toISOString())],
      );
    } catch (err) {
      this.#o.logger.warn({ err, keys: batch.length }, 'auth: could not record API key last-used times');
    }
  }

  async #lookup(keyId: string): Promise<CacheEntry> {
    const now = Date.now();
    const hit = this.#cache.get(keyId);
    if (hit && hit.until > now) return hit;
    const entry: CacheEntry = { record: (await this.get(keyId)) ?? null, until: now + this.#o.cacheTtlMs };
    if (this.#o.cacheTtlMs > 0) {
      if (this.#cache.size >= CACHE_MAX) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(keyId, entry);
    }
    return entry;
  }

  async #changed(keyId: string): Promise<void> {
    this.#cache.delete(keyId);
    try {
      await this.#o.shared.publish(API_KEY_CHANNEL, keyId);
    } catch (err) {
      // Other processes still drop the key when their cache entry expires (AUTH_CACHE_TTL_MS).
      this.#o.logger.warn({ err, keyId }, 'auth: could not publish an API key change');
    }
  }
}

interface CacheEntry {
  record: ApiKeyRecord | null;
  principal?: Principal;
  /** The last presentation that passed the peppered HMAC check, kept while the entry lives. */
  verified?: Buffer;
  until: number;
}

/**
 * The peppered HMAC check, remembered per cache entry: a key presented again while its record is
 * cached is compared, in constant time, with the presentation already verified (Node's Hmac, and
 * even a one-shot hash, cost several microseconds a call under load, the bulk of the API-key
 * path). The key is held only as long as the cache entry (AUTH_CACHE_TTL_MS), as the request that
 * carried it is; a different presentation, right or wrong, still goes through the HMAC.
 */
function secretMatches(entry: CacheEntry, record: ApiKeyRecord, pepper: Buffer, raw: string): boolean {
  const presented = Buffer.from(raw, 'latin1');
  if (entry.verified?.length === presented.length && timingSafeEqual(entry.verified, presented)) return true;
  if (!digestsEqual(record.secretHash, hashSecret(pepper, raw))) return false;
  entry.verified = presented;
  return true;
}

/** The api-key resource resolver for authorization: a key's tenant, and who created it (for ABAC). */
export function apiKeyOwner(store: ApiKeyStore) {
  return async (keyId: string) => {
    const record = await store.get(keyId);
    return record && { tenant: record.tenant, attributes: { created_by: record.createdBy } };
  };
}
