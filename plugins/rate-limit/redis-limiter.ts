import type { Redis } from 'ioredis';
import type { BucketParams } from './gcra.js';

/**
 * gcra.ts's decide() for a batch of decisions as one Redis script: the whole batch is atomic,
 * answered in one round trip, and the clock is Redis's own TIME (read once) so every gateway
 * process agrees on it. KEYS[i] is decision i's bucket; ARGV[4i-3..4i] its burst, interval (µs),
 * cost and force ('1'/'0'). Decisions are applied in order, so a key named twice is charged twice.
 * Returns {allowed, remaining, reset_us, retry_us} per decision, flattened.
 */
export const GCRA_BATCH_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
local written, order = {}, {}
local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local a = 4 * i - 4
  local burst = tonumber(ARGV[a + 1])
  local interval = tonumber(ARGV[a + 2])
  local cost = tonumber(ARGV[a + 3])
  local force = ARGV[a + 4] == '1'
  local tat = tats[key]
  if tat == nil then tat = tonumber(redis.call('GET', key) or '0') end
  local base = math.max(tat, now)
  local limit = burst * interval
  local nxt = base + cost * interval
  local allowed = (nxt - now <= limit) or force
  local new_tat = base
  if allowed then
    new_tat = nxt
    if not written[key] then
      written[key] = true
      order[#order + 1] = key
    end
  end
  tats[key] = new_tat
  local remaining = math.max(0, math.floor((limit - (new_tat - now)) / interval))
  local retry = 0
  if not allowed then retry = nxt - now - limit end
  out[a + 1] = allowed and 1 or 0
  out[a + 2] = remaining
  out[a + 3] = math.max(0, new_tat - now)
  out[a + 4] = retry
end
for w = 1, #order do
  local key = order[w]
  local tat = tats[key]
  redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
end
return out`;

/** Decisions per script call: a batch larger than this goes as several calls, so no script runs long. */
export const MAX_BATCH = 256;

/** The script's answer for one decision: allowed (1/0), remaining, reset and retry in microseconds. */
export type GcraReply = [number, number, number, number];
export type GcraCallback = (err: unknown, reply?: GcraReply) => void;
type GcraRedis = Redis & {
  weirGcraBatch(numKeys: number, keys: string[], args: Array<string | number>): Promise<number[]>;
};

interface Pending {
  key: string;
  p: BucketParams;
  cost: number;
  force: '0' | '1';
  done: GcraCallback;
}

const limiters = new WeakMap<Redis, RedisLimiter>();

/**
 * The decisions asked for in one turn of the event loop (requests that arrived together) go to
 * Redis as one script call deciding them all: one command, one write and one read on the socket,
 * one reply to parse, instead of one each (ioredis's per-command bookkeeping and the syscalls were
 * most of a decision's cost). A batch waits at most until the loop's check phase. (Holding
 * decisions back while a batch is out made batches no bigger.)
 */
export class RedisLimiter {
  private readonly redis: GcraRedis;
  private queue: Pending[] = [];
  private readonly flushQueue = () => this.flush();

  /** The limiter of this connection, so every user of it (per-IP, per-site limits) shares its batches. */
  static for(redis: Redis): RedisLimiter {
    let limiter = limiters.get(redis);
    if (!limiter) limiters.set(redis, (limiter = new RedisLimiter(redis)));
    return limiter;
  }

  constructor(redis: Redis) {
    this.redis = redis as GcraRedis;
    // numberOfKeys left out: each call passes the batch's key count first.
    if (!('weirGcraBatch' in redis)) redis.defineCommand('weirGcraBatch', { lua: GCRA_BATCH_LUA });
  }

  /** Whether the connection is up; while it isn't, asking would only fail. */
  get ready(): boolean {
    return this.redis.status === 'ready';
  }

  /** One decision, sent with the others of this turn: `done` gets the script's reply (GcraReply) or the error. */
  decide(key: string, p: BucketParams, cost: number, force: boolean, done: GcraCallback): void {
    if (this.queue.push({ key, p, cost, force: force ? '1' : '0', done }) === 1) setImmediate(this.flushQueue);
  }

  private flush(): void {
    const queue = this.queue;
    this.queue = [];
    if (queue.length <= MAX_BATCH) return this.send(queue);
    for (let i = 0; i < queue.length; i += MAX_BATCH) this.send(queue.slice(i, i + MAX_BATCH));
  }

  private send(batch: Pending[]): void {
    const keys = new Array<string>(batch.length);
    const args = new Array<string | number>(batch.length * 4);
    for (let i = 0; i < batch.length; i++) {
      const b = batch[i]!;
      keys[i] = b.key;
      args[4 * i] = b.p.burst;
      args[4 * i + 1] = b.p.intervalUs;
      args[4 * i + 2] = b.cost;
      args[4 * i + 3] = b.force;
    }
    this.redis.weirGcraBatch(batch.length, keys, args).then(
      (reply) => settle(batch, undefined, reply),
      (err: unknown) => settle(batch, err ?? new Error('rate-limit: the shared store failed'), undefined),
    );
  }
}

/**
 * Answers every decision of a batch (the error, when the call failed, goes to each), even if a
 * callback throws (the first throw is rethrown after).
 */
function settle(batch: Pending[], err: unknown, reply: number[] | undefined): void {
  if (err === undefined && (!Array.isArray(reply) || reply.length !== batch.length * 4)) {
    err = new Error(`rate-limit: unexpected reply from the shared store (${batch.length} decisions)`);
  }
  let thrown: { error: unknown } | undefined;
  for (let i = 0; i < batch.length; i++) {
    try {
      if (err !== undefined) batch[i]!.done(err);
      else batch[i]!.done(undefined, [reply![4 * i]!, reply![4 * i + 1]!, reply![4 * i + 2]!, reply![4 * i + 3]!]);
    } catch (error) {
      thrown ??= { error };
    }
  }
  if (thrown) throw thrown.error;
}
