import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Redis } from 'ioredis';
import { cleanupTestStores, testRedisUrl, testStoreConfig, testStoreMode } from '../../test/helpers/store-env.js';
import type { StoreConfig } from './index.js';
import { openSharedState, type SharedState } from './shared-state.js';

const logger = pino({ level: 'silent' });
const real = testStoreMode() === 'real';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const configs: StoreConfig[] = [];
function config(): StoreConfig {
  const cfg = testStoreConfig('shared');
  configs.push(cfg);
  return cfg;
}

function open(): Promise<SharedState> {
  const cfg = config();
  return openSharedState({ redisUrl: cfg.redisUrl, keyPrefix: cfg.redisKeyPrefix, logger });
}

/** Resolves with the messages received once `count` arrived, or after `ms`. */
function collect(state: SharedState, channel: string, count: number, ms = 1000) {
  const got: string[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const timer = setTimeout(done, ms);
  const sub = state.subscribe(channel, (m) => {
    got.push(m);
    if (got.length >= count) {
      clearTimeout(timer);
      done();
    }
  });
  return { sub, result: finished.then(() => got) };
}

describe(`shared state (${real ? 'redis' : 'memory'})`, () => {
  let s: SharedState;
  let other: SharedState;
  beforeAll(async () => {
    [s, other] = await Promise.all([open(), open()]);
  });
  afterAll(async () => {
    if (real) {
      const raw = new Redis(testRedisUrl());
      for (const prefix of [s.keyPrefix, other.keyPrefix]) {
        const keys = await raw.keys(`${prefix}*`);
        if (keys.length) await raw.del(...keys);
      }
      raw.disconnect();
    }
    await Promise.all([s?.close(), other?.close()]);
    await Promise.all(configs.map(cleanupTestStores));
  });

  it('reports its kind', () => {
    expect(s.kind).toBe(real ? 'redis' : 'memory');
    expect(Boolean(s.redis)).toBe(real);
  });

  it('gets, sets and deletes, isolated by key prefix', async () => {
    expect(await s.get('k')).toBeNull();
    await s.set('k', 'v1');
    await other.set('k', 'other');
    expect(await s.get('k')).toBe('v1');
    expect(await other.get('k')).toBe('other');
    await s.del('k');
    expect(await s.get('k')).toBeNull();
    expect(await other.get('k')).toBe('other');
  });

  it('expires keys after their ttl, and a plain set clears an earlier ttl', async () => {
    await s.set('ttl', 'x', 80);
    await s.set('kept', 'x', 80);
    await s.set('kept', 'y');
    expect(await s.get('ttl')).toBe('x');
    await sleep(150);
    expect(await s.get('ttl')).toBeNull();
    expect(await s.get('kept')).toBe('y');
  });

  it('setIfAbsent only wins once, and again after expiry', async () => {
    expect(await s.setIfAbsent('lock', 'a', 100)).toBe(true);
    expect(await s.setIfAbsent('lock', 'b', 100)).toBe(false);
    expect(await s.get('lock')).toBe('a');
    await sleep(150);
    expect(await s.setIfAbsent('lock', 'c', 1000)).toBe(true);
    expect(await s.get('lock')).toBe('c');
  });

  it('setIfAbsent lets exactly one of many concurrent callers win', async () => {
    const wins = await Promise.all(Array.from({ length: 20 }, (_, i) => s.setIfAbsent('race', String(i), 5000)));
    expect(wins.filter(Boolean)).toHaveLength(1);
  });

  it('incrBy counts and sets the ttl only when the key is created', async () => {
    expect(await s.incrBy('n', 1, 150)).toBe(1);
    expect(await s.incrBy('n', 5)).toBe(6);
    await sleep(80);
    expect(await s.incrBy('n', -2, 10_000)).toBe(4); // must not extend the window
    await sleep(120);
    expect(await s.get('n')).toBeNull();
    expect(await s.incrBy('n', 3)).toBe(3);
    await s.set('text', 'abc');
    await expect(s.incrBy('text', 1)).rejects.toThrow(/not an integer/);
  });

  it('delivers published messages to every subscriber and stops after unsubscribe', async () => {
    const a = collect(s, 'events', 2);
    const b = collect(s, 'events', 2);
    const foreign = collect(other, 'events', 1, 300);
    const [unsubA, unsubB] = await Promise.all([a.sub, b.sub]);
    await foreign.sub;
    await s.publish('events', 'one');
    await s.publish('events', 'two');
    expect(await a.result).toEqual(['one', 'two']);
    expect(await b.result).toEqual(['one', 'two']);
    expect(await foreign.result).toEqual([]); // other prefix, other channel

    await unsubA();
    const c = collect(s, 'events', 1);
    await c.sub;
    const late: string[] = [];
    const unsubLate = await s.subscribe('events', (m) => late.push(m));
    await unsubLate();
    await s.publish('events', 'three');
    expect(await c.result).toEqual(['three']);
    await sleep(50);
    expect(late).toEqual([]);
    await unsubB();
  });

  it('keeps delivering to other handlers when one throws', async () => {
    const unsubBad = await s.subscribe('boom', () => {
      throw new Error('handler bug');
    });
    const good = collect(s, 'boom', 1);
    await good.sub;
    await s.publish('boom', 'hi');
    expect(await good.result).toEqual(['hi']);
    await unsubBad();
  });

  it.skipIf(!real)('exposes the ioredis client with the key prefix applied, also to scripts', async () => {
    const raw = new Redis(testRedisUrl());
    try {
      await s.redis!.eval(`return redis.call('SET', KEYS[1], ARGV[1])`, 1, 'scripted', 'v');
      expect(await s.get('scripted')).toBe('v');
      expect(await raw.get(`${s.keyPrefix}scripted`)).toBe('v');
      await s.incrBy('ttlcheck', 1, 60_000);
      const pttl = await raw.pttl(`${s.keyPrefix}ttlcheck`);
      expect(pttl).toBeGreaterThan(50_000);
      await raw.del(`${s.keyPrefix}scripted`, `${s.keyPrefix}ttlcheck`);
    } finally {
      raw.disconnect();
    }
  });

  it.skipIf(!real)('reconnects after the connection drops, failing fast meanwhile, and logs it', async () => {
    const lines: string[] = [];
    const captured = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const cfg = config();
    const t = await openSharedState({ redisUrl: cfg.redisUrl, keyPrefix: cfg.redisKeyPrefix, logger: captured });
    const raw = new Redis(testRedisUrl());
    try {
      await t.set('x', '1');
      const id = await t.redis!.client('ID');
      const ready = new Promise((r) => t.redis!.once('ready', r));
      await raw.client('KILL', 'ID', String(id));
      const started = Date.now();
      await t.get('x').catch(() => null); // either answered after reconnect or rejected: never hangs
      expect(Date.now() - started).toBeLessThan(1500);
      await ready;
      expect(await t.get('x')).toBe('1');
      expect(lines.some((l) => l.includes('reconnected to Redis'))).toBe(true);
    } finally {
      raw.disconnect();
      await t.redis!.del('x');
      await t.close();
    }
  });

  it('fails calls once closed, and closes idempotently', async () => {
    const t = await open();
    await t.ping();
    await t.close();
    await t.close();
    await expect(t.ping()).rejects.toThrow();
    await expect(t.get('x')).rejects.toThrow();
  });

  it('fails to open with a clear error naming the Redis server, without the password', async () => {
    const err = await openSharedState({ redisUrl: 'redis://:hunter2@127.0.0.1:1', keyPrefix: 'x:', logger }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/Could not connect to Redis at redis:\/\/127\.0\.0\.1:1/);
    expect((err as Error).message).not.toContain('hunter2');
  });
});
