import { pino } from 'pino';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { cleanupTestStores, testRedisUrl, testStoreConfig, testStoreMode } from '../../test/helpers/store-env.js';
import { casBatcher, type CasCall } from './shared-state-redis.js';
import { openSharedState, type SharedState } from './shared-state.js';

type BatchCall = { numKeys: number; keys: string[]; args: Array<string | number> };

/** Stands in for the connection's batch script: records each call; answers {1} per CAS, or fails. */
function fakeRedis(opts: { fails?: Error; gate?: Promise<void> } = {}) {
  const calls: BatchCall[] = [];
  const redis = {
    weirCompareAndSetBatch: async (numKeys: number, keys: string[], args: Array<string | number>) => {
      calls.push({ numKeys, keys, args });
      await opts.gate;
      if (opts.fails) throw opts.fails;
      return Array.from({ length: Number(args[0]) }, (_, i) => [1, `cas ${calls.length - 1}.${i}`]);
    },
  };
  return { redis, calls };
}

const cas = (key: string, writes = 1): CasCall => ({
  keys: [key, ...Array.from({ length: writes }, (_, i) => `${key}:w${i}`)],
  args: [1, writes, 0, '', ...Array.from({ length: writes }, () => ['v', 1000]).flat()],
});

describe('casBatcher', () => {
  it("sends one turn's compare-and-sets as one script call: key count, then each CAS's keys and arguments in order", async () => {
    const fake = fakeRedis();
    const batched = casBatcher(fake.redis);
    const replies = await Promise.all([batched(cas('a')), batched(cas('b', 2)), batched(cas('c', 0))]);
    expect(fake.calls).toEqual([
      {
        numKeys: 6,
        keys: ['a', 'a:w0', 'b', 'b:w0', 'b:w1', 'c'],
        args: [3, 1, 1, 0, '', 'v', 1000, 1, 2, 0, '', 'v', 1000, 'v', 1000, 1, 0, 0, ''],
      },
    ]);
    expect(replies).toEqual([
      [1, 'cas 0.0'],
      [1, 'cas 0.1'],
      [1, 'cas 0.2'],
    ]);
  });

  it('holds those asked for while a batch is out for the next call, and splits batches of more than 256', async () => {
    let open!: () => void;
    const fake = fakeRedis({ gate: new Promise((r) => (open = r)) });
    const batched = casBatcher(fake.redis);
    const first = batched(cas('first'));
    await new Promise((r) => setImmediate(r));
    expect(fake.calls).toHaveLength(1);
    const waiting = Array.from({ length: 300 }, (_, i) => batched(cas(`k${i}`)));
    await new Promise((r) => setImmediate(r));
    expect(fake.calls).toHaveLength(1);
    open();
    await Promise.all([first, ...waiting]);
    expect(fake.calls.map((c) => c.args[0])).toEqual([1, 256, 44]);
  });

  it("fails every compare-and-set of a batch with the call's error", async () => {
    const batched = casBatcher(fakeRedis({ fails: new Error('Connection is closed.') }).redis);
    const results = await Promise.allSettled([batched(cas('a')), batched(cas('b'))]);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as Error).message)).toEqual(['Connection is closed.', 'Connection is closed.']);
  });
});

describe.skipIf(testStoreMode() !== 'real')('compare-and-set batches in Redis', () => {
  const cfg = testStoreConfig('shared-redis');
  let s: SharedState | undefined;
  afterAll(async () => {
    const raw = new Redis(testRedisUrl());
    const keys = await raw.keys(`${cfg.redisKeyPrefix}*`);
    if (keys.length) await raw.del(...keys);
    raw.disconnect();
    await s?.close();
    await cleanupTestStores(cfg);
  });

  it('decides each compare-and-set of one call on its own, in order, under the key prefix', async () => {
    s = await openSharedState({ redisUrl: cfg.redisUrl, keyPrefix: cfg.redisKeyPrefix, logger: pino({ level: 'silent' }) });
    await s.set('held', 'H', 60_000);
    const calls = vi.spyOn(s.redis as unknown as { weirCompareAndSetBatch: (...a: unknown[]) => unknown }, 'weirCompareAndSetBatch');
    const ttl = 60_000;
    const results = await Promise.all([
      s.compareAndSet([['x', null]], [{ key: 'x', value: 'X1', ttlMs: ttl }]),
      // Sees the first one's write.
      s.compareAndSet([['x', null]], [{ key: 'x', value: 'X2', ttlMs: ttl }]),
      s.compareAndSet([['x', 'X1'], ['held', 'H'], ['y', null]], [{ key: 'y', value: 'Y', ttlMs: ttl }, { key: 'z', value: 'Z', ttlMs: ttl }]),
      s.compareAndSet([['held', 'other'], ['y', 'Y']], [{ key: 'held', value: 'lost', ttlMs: ttl }]),
      s.compareAndSet([], [{ key: 'free', value: 'F', ttlMs: ttl }]),
    ]);
    expect(calls).toHaveBeenCalledTimes(1);
    expect(results).toEqual([{ ok: true }, { ok: false, current: ['X1'] }, { ok: true }, { ok: false, current: ['H', 'Y'] }, { ok: true }]);
    const raw = new Redis(testRedisUrl());
    try {
      expect(await raw.mget(...['x', 'y', 'z', 'held', 'free'].map((k) => cfg.redisKeyPrefix + k))).toEqual(['X1', 'Y', 'Z', 'H', 'F']);
    } finally {
      raw.disconnect();
    }
  });

  it('fails only the compare-and-set that reads a key it cannot, writing nothing for it', async () => {
    s ??= await openSharedState({ redisUrl: cfg.redisUrl, keyPrefix: cfg.redisKeyPrefix, logger: pino({ level: 'silent' }) });
    await s.redis!.rpush('listy', 'a');
    const ttl = 60_000;
    const results = await Promise.allSettled([
      s.compareAndSet([['before', null]], [{ key: 'before', value: 'B', ttlMs: ttl }]),
      s.compareAndSet([['listy', null]], [{ key: 'unwritten', value: 'U', ttlMs: ttl }]),
      s.compareAndSet([['after', null]], [{ key: 'after', value: 'A', ttlMs: ttl }]),
    ]);
    expect(results).toEqual([
      { status: 'fulfilled', value: { ok: true } },
      { status: 'rejected', reason: expect.objectContaining({ message: expect.stringContaining('WRONGTYPE') }) },
      { status: 'fulfilled', value: { ok: true } },
    ]);
    expect([await s.get('before'), await s.get('unwritten'), await s.get('after')]).toEqual(['B', null, 'A']);
  });
});
