import type { Redis } from 'ioredis';
import type { BucketParams, Decision } from './gcra.js';

/**
 * gcra.ts's decide() as one Redis script: one round trip, atomic, and the clock is Redis's own
 * TIME so every gateway process agrees on it. Returns {allowed, remaining, reset_us, retry_us}.
 */
const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local burst = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local force = ARGV[4] == '1'
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local base = math.max(tat, now)
local limit = burst * interval
local nxt = base + cost * interval
local allowed = (nxt - now <= limit) or force
local new_tat = base
if allowed then
  new_tat = nxt
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
end
local remaining = math.max(0, math.floor((limit - (new_tat - now)) / interval))
local retry = 0
if not allowed then retry = nxt - now - limit end
return {allowed and 1 or 0, remaining, math.max(0, new_tat - now), retry}`;

type GcraRedis = Redis & {
  weirGcra(key: string, burst: number, intervalUs: number, cost: number, force: '0' | '1'): Promise<[number, number, number, number]>;
};

export class RedisLimiter {
  private readonly redis: GcraRedis;

  constructor(redis: Redis) {
    this.redis = redis as GcraRedis;
    if (!('weirGcra' in redis)) redis.defineCommand('weirGcra', { numberOfKeys: 1, lua: GCRA_LUA });
  }

  /** Whether the connection is up; while it isn't, asking would only fail. */
  get ready(): boolean {
    return this.redis.status === 'ready';
  }

  async consume(key: string, p: BucketParams, cost: number, force = false): Promise<Decision> {
    const [allowed, remaining, resetUs, retryUs] = await this.redis.weirGcra(key, p.burst, p.intervalUs, cost, force ? '1' : '0');
    return { allowed: allowed === 1, remaining, resetUs, retryUs };
  }
}
