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

/** The script's answer: allowed (1/0), remaining, reset and retry in microseconds. */
export type GcraReply = [number, number, number, number];
export type GcraCallback = (err: unknown, reply?: GcraReply) => void;
type GcraRedis = Redis & {
  weirGcra(key: string, burst: number, intervalUs: number, cost: number, force: '0' | '1'): Promise<GcraReply>;
};
type GcraPipeline = ReturnType<Redis['pipeline']> & {
  weirGcra(key: string, burst: number, intervalUs: number, cost: number, force: '0' | '1'): GcraPipeline;
};

interface Pending {
  key: string;
  p: BucketParams;
  cost: number;
  force: '0' | '1';
  done: GcraCallback;
}

/**
 * The decisions asked for in one turn of the event loop (requests that arrived together) go to
 * Redis as one pipeline: one write and one read on the socket for all of them instead of one each
 * (the syscalls were the largest part of a decision's cost; under load a batch holds several). Each
 * is still its own script call, atomic, answered in one round trip; a batch waits at most until
 * the loop's check phase. (Holding decisions back while a batch is out made batches no bigger.)
 */
export class RedisLimiter {
  private readonly redis: GcraRedis;
  private queue: Pending[] = [];
  private readonly flushQueue = () => this.flush();

  constructor(redis: Redis) {
    this.redis = redis as GcraRedis;
    if (!('weirGcra' in redis)) redis.defineCommand('weirGcra', { numberOfKeys: 1, lua: GCRA_LUA });
  }

  /** Whether the connection is up; while it isn't, asking would only fail. */
  get ready(): boolean {
    return this.redis.status === 'ready';
  }

  consume(key: string, p: BucketParams, cost: number, force = false): Promise<Decision> {
    return new Promise((resolve, reject) => this.decide(key, p, cost, force, (err, reply) => (err ? reject(err) : resolve(decisionOf(reply!)))));
  }

  /** consume() without a promise: `done` gets the script's reply (see decisionOf) or the error. */
  decide(key: string, p: BucketParams, cost: number, force: boolean, done: GcraCallback): void {
    if (this.queue.push({ key, p, cost, force: force ? '1' : '0', done }) === 1) setImmediate(this.flushQueue);
  }

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 1) {
      const b = batch[0]!;
      this.redis.weirGcra(b.key, b.p.burst, b.p.intervalUs, b.cost, b.force).then(
        (reply) => settle(batch, undefined, [[null, reply]]),
        (err: unknown) => settle(batch, err, undefined),
      );
      return;
    }
    const pipeline = this.redis.pipeline() as GcraPipeline;
    for (const b of batch) pipeline.weirGcra(b.key, b.p.burst, b.p.intervalUs, b.cost, b.force);
    pipeline.exec().then(
      (results) => settle(batch, undefined, results),
      (err: unknown) => settle(batch, err, undefined),
    );
  }
}

/** Answers every decision of a batch, even if a callback throws (the first throw is rethrown after). */
function settle(batch: Pending[], err: unknown, results: [Error | null, unknown][] | null | undefined): void {
  let thrown: { error: unknown } | undefined;
  for (let i = 0; i < batch.length; i++) {
    const [e, reply] = err === undefined ? (results?.[i] ?? [new Error('rate-limit: no reply from the shared store')]) : [err];
    try {
      if (e) batch[i]!.done(e);
      else batch[i]!.done(undefined, reply as GcraReply);
    } catch (error) {
      thrown ??= { error };
    }
  }
  if (thrown) throw thrown.error;
}

export function decisionOf([allowed, remaining, resetUs, retryUs]: GcraReply): Decision {
  return { allowed: allowed === 1, remaining, resetUs, retryUs };
}
