import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { authSettings, secretSettings, toAuthConfig, type AuthConfig } from './identity/config.js';
import { analyticsSettings, toAnalyticsConfig, type AnalyticsConfig } from './analytics/config.js';

/**
 * Every setting Weir reads, from environment variables and an optional JSON file named by
 * WEIR_CONFIG_FILE (same keys; the environment wins). Validated once at boot.
 * README.md documents each one; keep the two in step.
 */
const port = z.coerce.number().int().min(0).max(65535);
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v));
const url = (protocols: string[]) =>
  z.string().refine((v) => {
    try {
      return protocols.includes(new URL(v).protocol);
    } catch {
      return false;
    }
  }, `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);
const byteSize = z
  .string()
  .regex(/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i, 'expected a size such as 512kb, 10mb or 1gb')
  .transform(parseByteSize);
const jsonObject = z.string().transform((text, ctx) => {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  ctx.addIssue({ code: 'custom', message: 'expected a JSON object' });
  return z.NEVER;
});
const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'expected a SQL identifier such as weir');

const settings = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: port.default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: url(['postgres:', 'postgresql:']).optional(),
  DATABASE_SCHEMA: identifier.default('weir'),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(1000).default(10),
  CLICKHOUSE_URL: url(['http:', 'https:']).optional(),
  CLICKHOUSE_DATABASE: identifier.default('weir'),
  REDIS_URL: url(['redis:', 'rediss:']).optional(),
  REDIS_KEY_PREFIX: z.string().default('weir:'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
  BODY_LIMIT: byteSize.default(parseByteSize('1mb')),
  VALIDATE_RESPONSES: bool.optional(),
  CORS_ORIGINS: z.string().default(''),
  TLS_CERT_FILE: z.string().min(1).optional(),
  TLS_KEY_FILE: z.string().min(1).optional(),
  HSTS_MAX_AGE: z.coerce.number().int().min(0).default(15552000),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
  TRUST_PROXY: z.string().default('').refine(validTrustProxy, 'expected comma-separated IP addresses, CIDRs, or loopback/linklocal/uniquelocal'),
  RATE_LIMIT_FAIL_MODE: z.enum(['open', 'closed']).default('open'),
  RATE_LIMIT_POLICIES: jsonObject.default({}),
  RATE_LIMIT_OVERRIDES: jsonObject.default({}),
  AUDIT_BUFFER_SIZE: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  AUDIT_BATCH_SIZE: z.coerce.number().int().min(1).max(10_000).default(500),
  AUDIT_FLUSH_MS: z.coerce.number().int().min(1).max(600_000).default(250),
  AUDIT_OVERFLOW: z.enum(['block', 'drop']).default('block'),
  AUDIT_BLOCK_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(2000),
  ...authSettings,
  DATASET_PURGE_GRACE_DAYS: z.coerce.number().min(0).max(3650).default(30),
  INGEST_BATCH_BYTES: byteSize.default(parseByteSize('8mb')),
  INGEST_MAX_INFLIGHT_BYTES: byteSize.default(parseByteSize('256mb')),
  UPLOAD_DIR: z.string().min(1).optional(),
  UPLOAD_MAX_SIZE: byteSize.default(parseByteSize('1gb')),
  UPLOAD_EXPIRY_HOURS: z.coerce.number().positive().max(24 * 365).default(24),
  INGEST_JOB_LEASE_MS: z.coerce.number().int().min(500).max(3_600_000).default(30_000),
  QUERY_MAX_ROWS: z.coerce.number().int().min(1).max(1_000_000).default(100_000),
  QUERY_MAX_EXECUTION_S: z.coerce.number().positive().max(3600).default(30),
  QUERY_MAX_MEMORY: byteSize.default(parseByteSize('2gb')),
  QUERY_CACHE_TTL_MS: z.coerce.number().int().min(0).max(86_400_000).default(60_000),
  EXPORT_TTL_HOURS: z.coerce.number().positive().max(24 * 365).default(24),
  EXPORT_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  ...analyticsSettings,
});

export type Settings = z.input<typeof settings>;

export interface Config {
  env: 'development' | 'production' | 'test';
  port: number;
  host: string;
  dataDir: string;
  database: { url?: string; schema: string; poolMax: number };
  clickhouse: { url?: string; database: string };
  redis: { url?: string; keyPrefix: string };
  log: { level: string; format: 'json' | 'pretty' };
  http: {
    bodyLimit: number;
    validateResponses: boolean;
    corsOrigins: '*' | string[];
    shutdownTimeoutMs: number;
    /** Express `trust proxy`: the peers whose X-Forwarded-For is believed; false trusts none. */
    trustProxy: string[] | false;
  };
  /** Read by plugins/rate-limit; the policy shapes are checked there. */
  rateLimit: { failMode: 'open' | 'closed'; policies: Record<string, unknown>; overrides: Record<string, unknown> };
  audit: { bufferSize: number; batchSize: number; flushMs: number; overflow: 'block' | 'drop'; blockTimeoutMs: number };
  tls?: { certFile: string; keyFile: string; hstsMaxAge: number };
  /** Authentication and authorization (src/identity/config.ts). */
  auth: AuthConfig;
  /** Datasets, ingest and uploads (src/datasets, src/ingest, src/uploads). */
  datasets: { purgeGraceDays: number };
  ingest: { batchBytes: number; maxInflightBytes: number };
  uploads: { dir: string; maxSize: number; expiryMs: number; jobLeaseMs: number };
  /** Query and export (src/query, src/exports). */
  query: { maxRows: number; maxExecutionSeconds: number; maxMemoryBytes: number; cacheTtlMs: number };
  exports: { dir: string; ttlMs: number; concurrency: number };
  /** Web analytics (src/analytics). */
  analytics: AnalyticsConfig;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads the configuration from `env` (default process.env) and the optional WEIR_CONFIG_FILE. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const file = env.WEIR_CONFIG_FILE ? readConfigFile(env.WEIR_CONFIG_FILE) : {};
  const raw: Record<string, string> = {};
  for (const key of Object.keys(settings.shape)) {
    const value = env[key] ?? file[key];
    // A JSON config file may give the JSON-valued settings (RATE_LIMIT_POLICIES, ...) as objects.
    if (value !== undefined && value !== '') raw[key] = typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
  }
  const parsed = settings.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const key = String(issue.path[0] ?? '');
        const got = raw[key] === undefined ? '' : ` (got ${JSON.stringify(redact(key, raw[key]))})`;
        return `${key}: ${issue.message}${got}`;
      }),
    );
  }
  const s = parsed.data;
  if (Boolean(s.TLS_CERT_FILE) !== Boolean(s.TLS_KEY_FILE)) {
    throw new ConfigError(['TLS_CERT_FILE and TLS_KEY_FILE: set both to serve HTTPS, or neither']);
  }
  return {
    env: s.NODE_ENV,
    port: s.PORT,
    host: s.HOST,
    dataDir: resolve(s.DATA_DIR),
    database: { url: s.DATABASE_URL, schema: s.DATABASE_SCHEMA, poolMax: s.DATABASE_POOL_MAX },
    clickhouse: { url: s.CLICKHOUSE_URL, database: s.CLICKHOUSE_DATABASE },
    redis: { url: s.REDIS_URL, keyPrefix: s.REDIS_KEY_PREFIX },
    log: { level: s.LOG_LEVEL, format: s.LOG_FORMAT },
    http: {
      bodyLimit: s.BODY_LIMIT,
      validateResponses: s.VALIDATE_RESPONSES ?? s.NODE_ENV !== 'production',
      corsOrigins: parseOrigins(s.CORS_ORIGINS),
      shutdownTimeoutMs: s.SHUTDOWN_TIMEOUT_MS,
      trustProxy: parseList(s.TRUST_PROXY).length ? parseList(s.TRUST_PROXY) : false,
    },
    rateLimit: { failMode: s.RATE_LIMIT_FAIL_MODE, policies: s.RATE_LIMIT_POLICIES, overrides: s.RATE_LIMIT_OVERRIDES },
    audit: {
      bufferSize: s.AUDIT_BUFFER_SIZE,
      batchSize: s.AUDIT_BATCH_SIZE,
      flushMs: s.AUDIT_FLUSH_MS,
      overflow: s.AUDIT_OVERFLOW,
      blockTimeoutMs: s.AUDIT_BLOCK_TIMEOUT_MS,
    },
    tls: s.TLS_CERT_FILE && s.TLS_KEY_FILE ? { certFile: s.TLS_CERT_FILE, keyFile: s.TLS_KEY_FILE, hstsMaxAge: s.HSTS_MAX_AGE } : undefined,
    auth: toAuthConfig(s),
    datasets: { purgeGraceDays: s.DATASET_PURGE_GRACE_DAYS },
    ingest: { batchBytes: s.INGEST_BATCH_BYTES, maxInflightBytes: s.INGEST_MAX_INFLIGHT_BYTES },
    uploads: { dir: resolve(s.UPLOAD_DIR ?? `${s.DATA_DIR}/uploads`), maxSize: s.UPLOAD_MAX_SIZE, expiryMs: s.UPLOAD_EXPIRY_HOURS * 3600_000, jobLeaseMs: s.INGEST_JOB_LEASE_MS },
    query: { maxRows: s.QUERY_MAX_ROWS, maxExecutionSeconds: s.QUERY_MAX_EXECUTION_S, maxMemoryBytes: s.QUERY_MAX_MEMORY, cacheTtlMs: s.QUERY_CACHE_TTL_MS },
    exports: { dir: resolve(`${s.DATA_DIR}/exports`), ttlMs: s.EXPORT_TTL_HOURS * 3600_000, concurrency: s.EXPORT_CONCURRENCY },
    analytics: toAnalyticsConfig(s),
  };
}

export function parseByteSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(text.trim());
  if (!m) throw new Error(`not a size: ${text}`);
  const unit = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }[(m[2] ?? 'b').toLowerCase() as 'b'];
  return Math.floor(Number(m[1]) * unit);
}

function parseOrigins(text: string): '*' | string[] {
  const list = text.split(',').map((o) => o.trim()).filter(Boolean);
  return list.includes('*') ? '*' : list;
}

function parseList(text: string): string[] {
  return text.split(',').map((v) => v.trim()).filter(Boolean);
}

function validTrustProxy(text: string): boolean {
  return parseList(text).every((entry) => {
    if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return true;
    const [address = '', bits, ...rest] = entry.split('/');
    const family = isIP(address);
    if (!family || rest.length) return false;
    return bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
  });
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`WEIR_CONFIG_FILE: cannot read ${path}: ${(err as Error).message}`]);
  }
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('expected a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError([`WEIR_CONFIG_FILE: ${path} is not a JSON object of settings: ${(err as Error).message}`]);
  }
}

function redact(key: string, value: string | undefined): string | undefined {
  if (value !== undefined && secretSettings.has(key)) return '[redacted]';
  if (value === undefined || !key.endsWith('_URL')) return value;
  try {
    const u = new URL(value);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return value;
  }
}
