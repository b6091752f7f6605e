import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { testRedisUrl, testStoreMode } from '../../test/helpers/store-env.js';
import { bucketParams, decide, type BucketParams, type Decision } from './gcra.js';
import { GCRA_BATCH_LUA, MAX_BATCH, RedisLimiter, type GcraReply } from './redis-limiter.js';

function decisionOf([allowed, remaining, resetUs, retryUs]: GcraReply): Decision {
  return { allowed: allowed === 1, remaining, resetUs, retryUs };
}

const consume = (limiter: RedisLimiter, key: string, p: BucketParams, cost: number): Promise<Decision> =>
  new Promise((resolve, reject) => limiter.decide(key, p, cost, false, (err, reply) => (err ? reject(err) : resolve(decisionOf(reply!)))));

type BatchCall = { numKeys: number; keys: string[]; args: Array<string | number> };

/** Stands in for ioredis: records each batch script call and answers each decision as told. */
function fakeRedis(answer: (key: string) => GcraReply, opts: { fails?: Error; reply?: (call: BatchCall) => unknown } = {}) {
  const calls: BatchCall[] = [];
  const redis = {
    status: 'ready',
    defineCommand() {},
    weirGcraBatch: async (numKeys: number, keys: string[], args: Array<string | number>) => {
      const call = { numKeys, keys, args };
      calls.push(call);
      if (opts.fails) throw opts.fails;
      return opts.reply ? opts.reply(call) : keys.flatMap(answer);
    },
  };
  return { redis: redis as unknown as Redis, calls };
}

const p = bucketParams({ burst: 10, rate: 5 });
const decideAll = (limiter: RedisLimiter, keys: string[], onAnswer?: (key: string) => void) =>
  Promise.all(
    keys.map(
      (key) =>
        new Promise<{ err?: unknown; reply?: GcraReply }>((resolve) =>
          limiter.decide(key, p, 1, false, (err, reply) => {
            resolve({ err, reply });
            onAnswer?.(key);
          }),
        ),
    ),
  );

describe('RedisLimiter', () => {
  it('sends the decisions of one event-loop turn as one script call, and answers each with its own reply', async () => {
    const fake = fakeRedis((key) => [1, Number(key.slice(1)), 0, 0]);
    const limiter = new RedisLimiter(fake.redis);
    const answers = await decideAll(limiter, ['k1', 'k2', 'k3']);
    expect(fake.calls).toEqual([{ numKeys: 3, keys: ['k1', 'k2', 'k3'], args: [10, 200_000, 1, '0', 10, 200_000, 1, '0', 10, 200_000, 1, '0'] }]);
    expect(answers.map((a) => a.reply)).toEqual([
      [1, 1, 0, 0],
      [1, 2, 0, 0],
      [1, 3, 0, 0],
    ]);
    // The next turn is the next call; cost and force go with their decision.
    const forced = new Promise<GcraReply | undefined>((resolve) => limiter.decide('k4', p, 7, true, (_, reply) => resolve(reply)));
    expect(await forced).toEqual([1, 4, 0, 0]);
    expect(fake.calls[1]).toEqual({ numKeys: 1, keys: ['k4'], args: [10, 200_000, 7, '1'] });
  });

  it(`splits a turn of more than ${MAX_BATCH} decisions into several calls, in order`, async () => {
    const fake = fakeRedis((key) => [1, Number(key.slice(1)), 0, 0]);
    const keys = Array.from({ length: 2 * MAX_BATCH + 3 }, (_, i) => `k${i}`);
    const answers = await decideAll(new RedisLimiter(fake.redis), keys);
    expect(fake.calls.map((c) => c.numKeys)).toEqual([MAX_BATCH, MAX_BATCH, 3]);
    expect(fake.calls.flatMap((c) => c.keys)).toEqual(keys);
    expect(answers.map((a) => a.reply![1])).toEqual(keys.map((_, i) => i));
  });

  it("gives every decision of a batch the call's error, or an error when the reply does not fit the batch", async () => {
    const down = fakeRedis(() => [1, 0, 0, 0], { fails: new Error('Connection is closed.') });
    const failed = await decideAll(new RedisLimiter(down.redis), ['a', 'b']);
    expect(failed.map((a) => (a.err as Error).message)).toEqual(['Connection is closed.', 'Connection is closed.']);

    const short = fakeRedis(() => [1, 0, 0, 0], { reply: () => [1, 0, 0, 0] });
    const mismatched = await decideAll(new RedisLimiter(short.redis), ['a', 'b']);
    expect(mismatched.map((a) => (a.err as Error).message)).toEqual([
      expect.stringContaining('unexpected reply'),
      expect.stringContaining('unexpected reply'),
    ]);
  });

  it('answers every decision of a batch even when one callback throws', async () => {
    const fake = fakeRedis(() => [1, 0, 0, 0]);
    const limiter = new RedisLimiter(fake.redis);
    // The throw is not swallowed: it surfaces (as an unhandled rejection) once all are answered.
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    const runners = process.listeners('unhandledRejection');
    process.removeAllListeners('unhandledRejection');
    process.on('unhandledRejection', onUnhandled);
    try {
      const answers = await decideAll(limiter, ['first', 'second', 'third'], (key) => {
        if (key === 'first') throw new Error('callback failed');
      });
      expect(answers.every((a) => a.reply !== undefined)).toBe(true);
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([expect.objectContaining({ message: 'callback failed' })]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      for (const listener of runners) process.on('unhandledRejection', listener);
    }
  });

  it('is one per connection through RedisLimiter.for', () => {
    const a = fakeRedis(() => [1, 0, 0, 0]).redis;
    const b = fakeRedis(() => [1, 0, 0, 0]).redis;
    expect(RedisLimiter.for(a)).toBe(RedisLimiter.for(a));
    expect(RedisLimiter.for(a)).not.toBe(RedisLimiter.for(b));
  });
});

/** A seeded PRNG (mulberry32), so a failing sequence can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe.skipIf(testStoreMode() !== 'real')('the batch script in Redis', () => {
  const prefix = `weir:t:redis-limiter:${randomBytes(4).toString('hex')}:`;
  const raw = new Redis(testRedisUrl());
  const prefixed = new Redis(testRedisUrl(), { keyPrefix: prefix });
  afterAll(async () => {
    const keys = await raw.keys(`${prefix}*`);
    if (keys.length) await raw.del(...keys);
    raw.disconnect();
    prefixed.disconnect();
  });

  it('charges a key named several times in one batch each time, in order, under the connection key prefix', async () => {
    const limiter = new RedisLimiter(prefixed);
    const perSecond = bucketParams({ burst: 3, rate: 1 });
    const keys = ['dup', 'dup', 'dup', 'dup', 'other', 'dup'];
    const answers = await Promise.all(keys.map((key) => consume(limiter, key, perSecond, 1)));
    expect(answers.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
      [true, 2],
      [false, 0],
    ]);
    expect(answers[3]!.retryUs).toBeGreaterThan(0);
    expect(await raw.exists(`${prefix}dup`, `${prefix}other`)).toBe(2);
    expect(await raw.pttl(`${prefix}dup`)).toBeGreaterThan(3000);
  });

  it("decides a random sequence of batches exactly as gcra.ts's decide() does", async () => {
    const next = random(20261122);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
    const params: BucketParams[] = [bucketParams({ burst: 1, rate: 2 }), bucketParams({ burst: 5, rate: 10 }), bucketParams({ burst: 3, rate: 0.5 }), bucketParams({ burst: 20, rate: 7 })];
    const keys = ['a', 'b', 'c'].map((k) => `${prefix}random:${k}`);
    const model = new Map<string, number>();
    let nowUs = Math.floor(Date.now() / 1000) * 1_000_000;
    const seen = { allowed: 0, limited: 0 };
    for (let round = 0; round < 200; round++) {
      nowUs += pick([0, 1, 999, 50_000, 100_000, 333_333, 2_000_000]);
      const batch = Array.from({ length: 1 + Math.floor(next() * 12) }, () => ({
        key: pick(keys),
        p: pick(params),
        cost: pick([1, 1, 1, 2, 3]),
        force: next() < 0.1,
      }));
      // The script with its clock fixed at nowUs instead of Redis's TIME.
      const fixedClock = GCRA_BATCH_LUA.replace("redis.call('TIME')", `{'${Math.floor(nowUs / 1_000_000)}', '${nowUs % 1_000_000}'}`);
      expect(fixedClock).not.toBe(GCRA_BATCH_LUA);
      const args = batch.flatMap((b) => [b.p.burst, b.p.intervalUs, b.cost, b.force ? '1' : '0']);
      const reply = (await raw.eval(fixedClock, batch.length, ...batch.map((b) => b.key), ...args)) as number[];
      const got: Decision[] = batch.map((_, i) => decisionOf(reply.slice(4 * i, 4 * i + 4) as GcraReply));
      const expected = batch.map((b) => {
        const { tat, decision } = decide(model.get(b.key) ?? 0, nowUs, b.p, b.cost, b.force);
        model.set(b.key, tat);
        return decision;
      });
      expect({ round, got }).toEqual({ round, got: expected });
      for (const d of got) seen[d.allowed ? 'allowed' : 'limited']++;
    }
    expect(seen.allowed).toBeGreaterThan(200);
    expect(seen.limited).toBeGreaterThan(200);
  });
});
