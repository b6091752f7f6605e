import { ERRORS, MemoryLocker } from '@tus/server';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSharedState, type SharedState } from '../../src/stores/shared-state.js';
import { createUploadLocker, RedisLocker } from '../../src/uploads/shared-locker.js';
import { cleanupTestStores, testRedisUrl, testStoreConfig, testStoreMode } from '../helpers/store-env.js';

const logger = pino({ level: 'silent' });
const real = testStoreMode() === 'real';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('uses tus’s in-process locker when there is no Redis', async () => {
  const shared = await openSharedState({ keyPrefix: 'weir:t:locker:', logger });
  const { locker, close } = await createUploadLocker(shared, logger);
  expect(locker).toBeInstanceOf(MemoryLocker);
  await close();
  await shared.close();
});

// Two shared states on one prefix stand for two gateway processes: separate connections, one Redis.
describe.runIf(real)('upload locks across processes (Redis)', () => {
  const cfg = testStoreConfig('locker');
  let one: SharedState;
  let two: SharedState;
  const lockers: RedisLocker[] = [];
  const lockerOn = async (shared: SharedState, options: ConstructorParameters<typeof RedisLocker>[3] = {}) => {
    const locker = new RedisLocker(shared.redis!, shared, logger, { retryMs: 20, ...options });
    await locker.start();
    lockers.push(locker);
    return locker;
  };

  beforeAll(async () => {
    one = await openSharedState({ redisUrl: testRedisUrl(), keyPrefix: cfg.redisKeyPrefix, logger });
    two = await openSharedState({ redisUrl: testRedisUrl(), keyPrefix: cfg.redisKeyPrefix, logger });
  });
  afterAll(async () => {
    for (const l of lockers) await l.close();
    await one?.close();
    await two?.close();
    await cleanupTestStores(cfg);
  });

  it('asks the holder in the other process to let go, then takes the lock', async () => {
    const a = (await lockerOn(one)).newLock('up_release');
    let asked = 0;
    await a.lock(new AbortController().signal, async () => {
      asked++;
      await a.unlock();
    });
    const order: string[] = [];
    const b = (await lockerOn(two)).newLock('up_release');
    await b.lock(new AbortController().signal, () => void order.push('b asked'));
    order.push('b holds');
    expect(asked).toBe(1);
    expect(order).toEqual(['b holds']);
    await b.unlock();
  });

  it('times out with tus’s lock error while a holder keeps the lock, renewing it past its lease', async () => {
    const a = (await lockerOn(one, { leaseMs: 300 })).newLock('up_busy');
    await a.lock(new AbortController().signal, () => {});
    await sleep(700); // more than two leases: only renewal keeps it
    const b = (await lockerOn(two, { acquireTimeoutMs: 250 })).newLock('up_busy');
    await expect(b.lock(new AbortController().signal, () => {})).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT);
    await a.unlock();
    await b.lock(new AbortController().signal, () => {});
    await b.unlock();
  });

  it('frees the lock of a process that died holding it after the lease, and the late holder cannot free the new one', async () => {
    // A lock left by a process that is gone: a key with a foreign token and a short lease.
    await one.redis!.set('tus-lock:up_dead', 'a-dead-process', 'PX', 300);
    const b = (await lockerOn(two)).newLock('up_dead');
    const started = Date.now();
    await b.lock(new AbortController().signal, () => {});
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);

    // A former holder's unlock (its token no longer in the key) leaves b's lock in place.
    const stale = (await lockerOn(one)).newLock('up_dead');
    await stale.unlock();
    expect(await one.redis!.get('tus-lock:up_dead')).not.toBeNull();
    await b.unlock();
    expect(await one.redis!.get('tus-lock:up_dead')).toBeNull();
  });

  it('stops waiting when the request is aborted', async () => {
    const a = (await lockerOn(one)).newLock('up_abort');
    await a.lock(new AbortController().signal, () => {});
    const stop = new AbortController();
    const b = (await lockerOn(two)).newLock('up_abort');
    const waiting = b.lock(stop.signal, () => {});
    await sleep(50);
    stop.abort();
    await expect(waiting).rejects.toBe(ERRORS.ERR_LOCK_TIMEOUT);
    await a.unlock();
  });
});
