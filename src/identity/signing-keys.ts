import type { components } from '../../generated/types.js';
import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK, type JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import type { MetadataStore } from '../stores/index.js';

export type SigningAlg = 'EdDSA' | 'ES256';

interface KeyRow {
  kid: string;
  alg: SigningAlg;
  private_jwk: JWK;
  public_jwk: JWK;
  created_at: Date;
}

export interface Signer {
  kid: string;
  alg: SigningAlg;
  key: CryptoKey | Uint8Array;
  createdAt: Date;
}

export interface SigningKeysOptions {
  metadata: MetadataStore;
  alg: SigningAlg;
  /** A signing key older than this is replaced by a new one at the next token. */
  rotationMs: number;
  /** How long issued tokens live: a replaced key is published until its last token expires. */
  tokenTtlMs: number;
  logger: Logger;
}

// Another process may have rotated: re-read the keys at most this often on an unknown kid.
const RELOAD_COOL_DOWN_MS = 5_000;
const MARGIN_MS = 5 * 60_000;

/**
 * The gateway's own token signing keys, kept in the metadata store so that every process signs
 * with the same newest key and publishes the same set. Rotation is lazy: the first token after
 * the rotation period makes a new key (under an advisory lock, so concurrent processes make one).
 */
export class SigningKeys {
  readonly #o: SigningKeysOptions;
  #rows: KeyRow[] = [];
  #loadedAt = 0;
  #signer?: Signer;
  #rotating?: Promise<void>;
  #verifySet?: ReturnType<typeof createLocalJWKSet>;

  constructor(options: SigningKeysOptions) {
    this.#o = options;
  }

  async signer(now = Date.now()): Promise<Signer> {
    if (!this.#signer || now - this.#signer.createdAt.getTime() >= this.#o.rotationMs) {
      await (this.#rotating ??= this.#ensureCurrent(now).finally(() => (this.#rotating = undefined)));
    }
    return this.#signer!;
  }

  /** The public keys verifiers need now: the newest, and older ones while tokens they signed may live. */
  async jwks(now = Date.now()): Promise<components['schemas']['Jwks']> {
    if (now - this.#loadedAt > RELOAD_COOL_DOWN_MS || this.#rows.length === 0) await this.#load(now);
    return { keys: this.#published(now).map((r) => publicJwk(r.public_jwk)) };
  }

  /** A jose key resolver over the published keys; an unknown kid re-reads the store (with a cool-down). */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    if (!this.#verifySet) await this.#load(Date.now());
    try {
      return await this.#verifySet!(header, token);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || Date.now() - this.#loadedAt < RELOAD_COOL_DOWN_MS) throw err;
      await this.#load(Date.now());
      return this.#verifySet!(header, token);
    }
  };

  async #ensureCurrent(now: number): Promise<void> {
    await this.#o.metadata.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtext('weir_signing_keys:' || current_schema()))`);
      const { rows } = await tx.query<{ created_at: Date }>(`SELECT created_at FROM signing_keys ORDER BY created_at DESC LIMIT 1`);
      const newest = rows[0] && new Date(rows[0].created_at).getTime();
      if (newest !== undefined && now - newest < this.#o.rotationMs) return;
      const { kid, privateJwk, publicJwk } = await generate(this.#o.alg, now);
      await tx.query(`INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, created_at) VALUES ($1, $2, $3, $4, $5)`, [
        kid,
        this.#o.alg,
        JSON.stringify(privateJwk),
        JSON.stringify(publicJwk),
        new Date(now),
      ]);
      this.#o.logger.info({ kid, alg: this.#o.alg }, 'auth: created a new token signing key');
    });
    await this.#load(now);
    const newest = this.#rows[0]!;
    this.#signer = {
      kid: newest.kid,
      alg: newest.alg,
      key: await importJWK(newest.private_jwk, newest.alg),
      createdAt: newest.created_at,
    };
  }

  async #load(now: number): Promise<void> {
    const { rows } = await this.#o.metadata.query<KeyRow>(
      `SELECT kid, alg, private_jwk, public_jwk, created_at FROM signing_keys ORDER BY created_at DESC, kid DESC LIMIT 20`,
    );
    this.#rows = rows.map((r) => ({ ...r, created_at: new Date(r.created_at) }));
    this.#loadedAt = now;
    this.#verifySet = createLocalJWKSet({ keys: this.#published(now).map((r) => r.public_jwk) });
  }

  #published(now: number): KeyRow[] {
    // A key signs until its successor is made; its tokens live tokenTtl longer.
    return this.#rows.filter((row, i) => i === 0 || this.#rows[i - 1]!.created_at.getTime() + this.#o.tokenTtlMs + MARGIN_MS > now);
  }
}

async function generate(alg: SigningAlg, now: number): Promise<{ kid: string; privateJwk: JWK; publicJwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `weir-${new Date(now).toISOString().slice(0, 10)}-${randomBytes(3).toString('hex')}`;
  const meta = { kid, alg, use: 'sig' };
  return { kid, privateJwk: { ...(await exportJWK(privateKey)), ...meta }, publicJwk: { ...(await exportJWK(publicKey)), ...meta } };
}

/** A stored public key in the spec's Jwk shape: only the public members, typed as the API documents them. */
function publicJwk(jwk: JWK): components['schemas']['Jwk'] {
  const { kty, kid, alg, crv, x, y, n, e } = jwk as Record<string, string | undefined>;
  const out = { kty, kid, use: 'sig', alg, crv, x, y, n, e } as Record<string, string | undefined>;
  for (const key of Object.keys(out)) if (out[key] === undefined) delete out[key];
  return out as components['schemas']['Jwk'];
}
