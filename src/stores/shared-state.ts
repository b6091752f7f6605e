import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { openMemorySharedState } from './shared-state-memory.js';
import { openRedisSharedState } from './shared-state-redis.js';

export interface SharedState {
  readonly kind: 'redis' | 'memory';
  /** Prepended to every key and channel by this interface (and by `redis` for keys). */
  readonly keyPrefix: string;
  get(key: string): Promise<string | null>;
  /** Without ttlMs the key doesn't expire (and loses any previous expiry), like Redis SET. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** SET NX PX: true when this call created the key. A lock / idempotency primitive. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  del(key: string): Promise<void>;
  /**
   * Optimistic transaction over a few keys: when every key of `expected` holds its value (null:
   * the key is absent), applies every write (each with its ttl) and answers `{ ok: true }`; else
   * changes nothing and answers the expected keys' current values, in order, to retry from.
   */
  compareAndSet(expected: ReadonlyArray<readonly [key: string, value: string | null]>, writes: readonly CasWrite[]): Promise<CasResult>;
  /** The ttl is set only when the key is created by this call. */
  incrBy(key: string, by: number, ttlMs?: number): Promise<number>;
  publish(channel: string, message: string): Promise<void>;
  /** Resolves once subscribed; the returned function unsubscribes this handler. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>>;
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * The ioredis command client in redis mode, for plugins that need scripts (e.g. a token bucket).
   * It applies keyPrefix to keys itself (including EVAL KEYS), but not to channels or SCAN patterns.
   * With enableOfflineQueue off, commands fail fast while Redis is unreachable.
   */
  readonly redis?: Redis;
}

export interface CasWrite {
  key: string;
  value: string;
  ttlMs: number;
}

export type CasResult = { ok: true } | { ok: false; current: Array<string | null> };

export interface SharedStateOptions {
  redisUrl?: string;
  keyPrefix: string;
  logger: Logger;
  /** Per-command timeout in redis mode (default 2000 ms). */
  commandTimeoutMs?: number;
}

export function describeSharedState(opts: Pick<SharedStateOptions, 'redisUrl'>): string {
  if (!opts.redisUrl) return 'in-process memory (single instance only)';
  return `Redis at ${redisEndpoint(opts.redisUrl)}`;
}

/** host:port/db of a Redis URL, without credentials. */
export function redisEndpoint(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    return '(unparseable REDIS_URL)';
  }
}

export async function openSharedState(opts: SharedStateOptions): Promise<SharedState> {
  return opts.redisUrl ? openRedisSharedState({ ...opts, redisUrl: opts.redisUrl }) : openMemorySharedState(opts);
}
