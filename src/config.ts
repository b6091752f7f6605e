import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

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
  };
  tls?: { certFile: string; keyFile: string; hstsMaxAge: number };
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
    if (value !== undefined && value !== '') raw[key] = String(value);
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
    },
    tls: s.TLS_CERT_FILE && s.TLS_KEY_FILE ? { certFile: s.TLS_CERT_FILE, keyFile: s.TLS_KEY_FILE, hstsMaxAge: s.HSTS_MAX_AGE } : undefined,
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
  if (value === undefined || !key.endsWith('_URL')) return value;
  try {
    const u = new URL(value);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return value;
  }
}
