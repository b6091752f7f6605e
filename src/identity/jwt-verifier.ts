import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  exportJWK,
  importSPKI,
  jwtVerify,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { IssuerConfig, JwtAlgorithm } from './config.js';
import { freezePrincipal, toAttributes, type Principal } from './principal.js';

export type JwtFailure =
  | 'malformed'
  | 'untrusted-issuer'
  | 'algorithm'
  | 'signature'
  | 'unknown-key'
  | 'keys-unavailable'
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-audience'
  | 'claims'
  | 'no-tenant'
  | 'invalid';

export type JwtResult = { ok: true; principal: Principal } | { ok: false; reason: JwtFailure };

interface TrustedIssuer {
  issuer: string;
  audience: string | string[];
  algorithms: string[];
  getKey: JWTVerifyGetKey;
  toPrincipal(payload: JWTPayload): Principal | undefined;
}

export interface OwnIssuer {
  issuer: string;
  audience: string;
  getKey: JWTVerifyGetKey;
}

export interface JwtVerifierOptions {
  clockSkewS: number;
  /** `amr` values that show a second factor. */
  mfaAmrValues: string[];
  /** Verified tokens remembered (until they expire) so a token's signature is checked once, not per request. */
  cacheSize?: number;
}

const MAX_TOKEN_LENGTH = 8192;
const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];

/**
 * Verifies bearer JWTs with jose: the issuer (from the unverified `iss`) must be configured, and then
 * its pinned algorithms, its keys (static, or a JWKS URL with kid selection, caching and a
 * cooled-down refetch on an unknown kid), its audience and exp/nbf within the clock skew decide.
 */
export class JwtVerifier {
  readonly #issuers = new Map<string, TrustedIssuer>();
  readonly #o: JwtVerifierOptions;
  readonly #cache = new Map<string, { principal: Principal; expMs: number }>();

  private constructor(options: JwtVerifierOptions) {
    this.#o = options;
  }

  static async create(external: IssuerConfig[], own: OwnIssuer, options: JwtVerifierOptions): Promise<JwtVerifier> {
    const v = new JwtVerifier(options);
    v.#issuers.set(own.issuer, {
      issuer: own.issuer,
      audience: own.audience,
      algorithms: ['EdDSA', 'ES256'],
      getKey: own.getKey,
      toPrincipal: (p) => v.#principal(p, { tenantClaim: 'tenant', rolesClaim: 'roles', attributeClaims: [], attrsObject: 'attrs' }),
    });
    for (const cfg of external) {
      if (v.#issuers.has(cfg.issuer)) throw new Error(`JWT_ISSUERS: issuer ${cfg.issuer} is configured twice (or is the gateway's own TOKEN_ISSUER)`);
      v.#issuers.set(cfg.issuer, {
        issuer: cfg.issuer,
        audience: cfg.audience,
        algorithms: cfg.algorithms,
        getKey: await keyResolver(cfg),
        toPrincipal: (p) => v.#principal(p, cfg),
      });
    }
    return v;
  }

  async verify(token: string, now = Date.now()): Promise<JwtResult> {
    const cached = this.#cache.get(token);
    if (cached) {
      if (cached.expMs + this.#o.clockSkewS * 1000 > now) return { ok: true, principal: cached.principal };
      this.#cache.delete(token);
    }
    if (token.length > MAX_TOKEN_LENGTH || !JWS_COMPACT.test(token)) return { ok: false, reason: 'malformed' };
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    const trusted = typeof iss === 'string' ? this.#issuers.get(iss) : undefined;
    if (!trusted) return { ok: false, reason: 'untrusted-issuer' };
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, trusted.getKey, {
        issuer: trusted.issuer,
        audience: trusted.audience,
        algorithms: trusted.algorithms,
        clockTolerance: this.#o.clockSkewS,
        currentDate: new Date(now),
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      return { ok: false, reason: failureOf(err) };
    }
    const principal = trusted.toPrincipal(payload);
    if (!principal) return { ok: false, reason: 'no-tenant' };
    if (this.#cache.size >= (this.#o.cacheSize ?? 10_000)) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(token, { principal, expMs: payload.exp! * 1000 });
    return { ok: true, principal };
  }

  #principal(
    p: JWTPayload,
    claims: { tenant?: string; tenantClaim: string; rolesClaim: string; attributeClaims: string[]; attrsObject?: string },
  ): Principal | undefined {
    const tenant = claims.tenant ?? p[claims.tenantClaim];
    if (typeof tenant !== 'string' || tenant === '' || typeof p.sub !== 'string') return undefined;
    const attributes = claims.attrsObject ? toAttributes(p[claims.attrsObject]) : {};
    Object.assign(attributes, toAttributes(Object.fromEntries(claims.attributeClaims.map((c) => [c, p[c]]))));
    const amr = Array.isArray(p.amr) ? p.amr.filter((v): v is string => typeof v === 'string') : [];
    return freezePrincipal({
      subject: p.sub,
      tenant,
      roles: stringList(p[claims.rolesClaim]),
      scopes: typeof p.scope === 'string' ? stringList(p.scope) : stringList(p.scp),
      attributes,
      authMethod: 'jwt',
      mfa: amr.some((v) => this.#o.mfaAmrValues.includes(v)),
      credentialId: typeof p.jti === 'string' ? p.jti : undefined,
    });
  }
}

function stringList(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter(Boolean);
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** One issuer's key lookup: its HS256 secret only for HS256 tokens, its public keys for the rest. */
async function keyResolver(cfg: IssuerConfig): Promise<JWTVerifyGetKey> {
  const secret = cfg.secret ? new TextEncoder().encode(cfg.secret) : undefined;
  const local = cfg.keys?.length ? createLocalJWKSet({ keys: await Promise.all(cfg.keys.map((k) => publicJwk(k, cfg.algorithms))) }) : undefined;
  const remote = cfg.jwksUrl
    ? createRemoteJWKSet(new URL(cfg.jwksUrl), { cooldownDuration: cfg.jwksCooldownMs, cacheMaxAge: 600_000, timeoutDuration: 5_000 })
    : undefined;
  return async (header, token) => {
    if (header.alg === 'HS256') {
      if (!secret) throw Object.assign(new Error('no HMAC secret'), { code: 'ERR_JOSE_ALG_NOT_ALLOWED' });
      return secret;
    }
    if (local) {
      try {
        return await local(header, token);
      } catch (err) {
        if (!remote) throw err;
      }
    }
    if (remote) return remote(header, token);
    throw Object.assign(new Error('no public key'), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
  };
}

async function publicJwk(key: NonNullable<IssuerConfig['keys']>[number], algorithms: JwtAlgorithm[]): Promise<JWK> {
  if ('pem' in key && typeof key.pem === 'string') {
    for (const alg of algorithms.filter((a) => a !== 'HS256')) {
      try {
        return { ...(await exportJWK(await importSPKI(key.pem, alg, { extractable: true }))), alg, ...(key.kid && { kid: key.kid as string }) };
      } catch {
        // not a key for this algorithm; try the next
      }
    }
    throw new Error(`JWT_ISSUERS: a PEM key is not a public key (SPKI) for any of ${algorithms.join(', ')}`);
  }
  const jwk = { ...(key as JWK) };
  for (const m of PRIVATE_MEMBERS) delete (jwk as Record<string, unknown>)[m];
  return jwk;
}

function failureOf(err: unknown): JwtFailure {
  const e = err as { code?: string; claim?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return e.claim === 'nbf' ? 'not-yet-valid' : e.claim === 'aud' ? 'wrong-audience' : 'claims';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'algorithm';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'signature';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'unknown-key';
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
      return 'keys-unavailable';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'malformed';
    default:
      // A key of the wrong type for the header's alg ends up here too: refused, never trusted.
      return 'invalid';
  }
}
