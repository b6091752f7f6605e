import { z } from 'zod';

/**
 * The identity-and-access settings, spread into src/config.ts's settings (same zod style, same
 * environment/WEIR_CONFIG_FILE sources). README.md's configuration table documents each one.
 */
export const JWT_ALGORITHMS = ['RS256', 'ES256', 'EdDSA', 'HS256'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

const jwk = z.looseObject({ kty: z.enum(['RSA', 'EC', 'OKP']), kid: z.string().min(1).optional() });

/** One external token issuer the gateway trusts (the gateway itself is added implicitly). */
export const IssuerConfig = z
  .object({
    issuer: z.string().min(1),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** Pinned: a token whose header names another algorithm is refused before any key is looked at. */
    algorithms: z.array(z.enum(JWT_ALGORITHMS)).min(1),
    jwksUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** After a JWKS fetch, an unknown kid refetches only once this long has passed. */
    jwksCooldownMs: z.number().int().min(0).max(3_600_000).default(30_000),
    /** Static public keys: JWKs, or PEM (SPKI) with an optional kid. */
    keys: z.array(z.union([jwk, z.object({ pem: z.string().min(1), kid: z.string().min(1).optional() })])).optional(),
    /** The shared secret for HS256 (at least 32 bytes, RFC 7518 section 3.2). */
    secret: z.string().min(32).optional(),
    /** Every token of this issuer acts in this tenant; otherwise the tenant comes from `tenantClaim`. */
    tenant: z.string().min(1).optional(),
    tenantClaim: z.string().min(1).default('tenant'),
    rolesClaim: z.string().min(1).default('roles'),
    /** Claims copied into the principal's ABAC attributes (e.g. `region`). */
    attributeClaims: z.array(z.string().min(1)).default([]),
  })
  .superRefine((v, ctx) => {
    const asymmetric = v.algorithms.some((a) => a !== 'HS256');
    if (v.algorithms.includes('HS256') && !v.secret) ctx.addIssue({ code: 'custom', message: `issuer ${v.issuer}: HS256 needs "secret"` });
    if (v.secret && !v.algorithms.includes('HS256')) ctx.addIssue({ code: 'custom', message: `issuer ${v.issuer}: "secret" is only for HS256` });
    if (asymmetric && !v.jwksUrl && !v.keys?.length) {
      ctx.addIssue({ code: 'custom', message: `issuer ${v.issuer}: ${v.algorithms.join('/')} needs "jwksUrl" or "keys"` });
    }
  });
export type IssuerConfig = z.infer<typeof IssuerConfig>;

const jsonArray = <T extends z.ZodType>(item: T) =>
  z.string().transform((text, ctx): z.infer<T>[] => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected a JSON array' });
      return z.NEVER;
    }
    const parsed = z.array(item).safeParse(value);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: `[${issue.path.join('.')}] ${issue.message}` });
    return z.NEVER;
  });

const list = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v));

export const authSettings = {
  JWT_ISSUERS: jsonArray(IssuerConfig).default([]),
  JWT_CLOCK_SKEW_S: z.coerce.number().int().min(0).max(300).default(30),
  TOKEN_ISSUER: z.string().min(1).default('urn:weir:gateway'),
  TOKEN_AUDIENCE: z.string().min(1).default('weir-api'),
  TOKEN_TTL_S: z.coerce.number().int().min(1).max(86_400).default(900),
  SIGNING_ALG: z.enum(['EdDSA', 'ES256']).default('EdDSA'),
  SIGNING_KEY_ROTATION_DAYS: z.coerce.number().min(0.0001).max(3650).default(30),
  API_KEY_PEPPER: z.string().min(32, 'expected at least 32 characters of secret').optional(),
  API_KEY_ENV: z.enum(['live', 'test']).default('live'),
  AUTH_CACHE_TTL_MS: z.coerce.number().int().min(0).max(300_000).default(10_000),
  MFA_AMR_VALUES: list.default(['mfa', 'otp', 'hwk', 'sms', 'fpt', 'face', 'iris', 'retina']),
  BOOTSTRAP_ADMIN: bool.default(true),
  BOOTSTRAP_TENANT: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a tenant id such as acme').default('default'),
  POLICY_DIR: z.string().min(1).optional(),
  AUTHZ_RELOAD_MS: z.coerce.number().int().min(1000).max(3_600_000).default(60_000),
};

/** Settings whose values must never be echoed in a configuration error. */
export const secretSettings = new Set(['JWT_ISSUERS', 'API_KEY_PEPPER']);

type AuthSettings = z.output<z.ZodObject<typeof authSettings>>;

export interface AuthConfig {
  /** External issuers; the gateway's own (`token.issuer`) is trusted besides these. */
  issuers: IssuerConfig[];
  clockSkewS: number;
  token: { issuer: string; audience: string; ttlS: number; alg: 'EdDSA' | 'ES256'; rotationMs: number };
  apiKey: { pepper?: string; env: 'live' | 'test' };
  cacheTtlMs: number;
  mfaAmrValues: string[];
  bootstrap: { enabled: boolean; tenant: string };
  policyDir?: string;
  authzReloadMs: number;
}

export function toAuthConfig(s: AuthSettings): AuthConfig {
  return {
    issuers: s.JWT_ISSUERS,
    clockSkewS: s.JWT_CLOCK_SKEW_S,
    token: {
      issuer: s.TOKEN_ISSUER,
      audience: s.TOKEN_AUDIENCE,
      ttlS: s.TOKEN_TTL_S,
      alg: s.SIGNING_ALG,
      rotationMs: Math.round(s.SIGNING_KEY_ROTATION_DAYS * 86_400_000),
    },
    apiKey: { pepper: s.API_KEY_PEPPER, env: s.API_KEY_ENV },
    cacheTtlMs: s.AUTH_CACHE_TTL_MS,
    mfaAmrValues: s.MFA_AMR_VALUES,
    bootstrap: { enabled: s.BOOTSTRAP_ADMIN, tenant: s.BOOTSTRAP_TENANT },
    policyDir: s.POLICY_DIR,
    authzReloadMs: s.AUTHZ_RELOAD_MS,
  };
}
