import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { bucketParams } from './gcra.js';
import { RedisLimiter, type GcraReply } from './redis-limiter.js';

type Call = [key: string, burst: number, intervalUs: number, cost: number, force: '0' | '1'];

/** Stands in for ioredis: records each script call and each pipeline, and answers as told. */
function fakeRedis(answer: (call: Call) => GcraReply | Error, opts: { execFails?: Error } = {}) {
  const singles: Call[] = [];
  const pipelines: Call[][] = [];
  const redis = {
    status: 'ready',
    defineCommand() {},
    weirGcra: async (...call: Call) => {
      singles.push(call);
      const a = answer(call);
      if (a instanceof Error) throw a;
      return a;
    },
    pipeline() {
      const calls: Call[] = [];
      const p = {
        weirGcra: (...call: Call) => (calls.push(call), p),
        exec: async () => {
          pipelines.push(calls);
          if (opts.execFails) throw opts.execFails;
          return calls.map((c) => {
            const a = answer(c);
            return a instanceof Error ? [a, null] : [null, a];
          });
        },
      };
      return p;
    },
  };
  return { redis: redis as unknown as Redis, singles, pipelines };
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
  it('sends the decisions of one event-loop turn as one pipeline, one script call each, and answers each with its own reply', async () => {
    const fake = fakeRedis(([key]) => [1, Number(key.slice(1)), 0, 0]);
    const limiter = new RedisLimiter(fake.redis);
    const answers = await decideAll(limiter, ['k1', 'k2', 'k3']);
    expect(fake.pipelines).toEqual([
      [
        ['k1', 10, 200_000, 1, '0'],
        ['k2', 10, 200_000, 1, '0'],
        ['k3', 10, 200_000, 1, '0'],
      ],
    ]);
    expect(answers.map((a) => a.reply?.[1])).toEqual([1, 2, 3]);
    // A decision alone in its turn goes as a plain script call.
    expect((await decideAll(limiter, ['k4']))[0]!.reply).toEqual([1, 4, 0, 0]);
    expect(fake.singles).toEqual([['k4', 10, 200_000, 1, '0']]);
  });

  it("gives a decision its own script error, and the whole batch the pipeline's", async () => {
    const fake = fakeRedis(([key]) => (key === 'bad' ? new Error('ERR script') : [1, 0, 0, 0]));
    const answers = await decideAll(new RedisLimiter(fake.redis), ['ok', 'bad']);
    expect(answers[0]!.reply).toEqual([1, 0, 0, 0]);
    expect(answers[1]!.err).toMatchObject({ message: 'ERR script' });

    const down = fakeRedis(() => [1, 0, 0, 0], { execFails: new Error('Connection is closed.') });
    const failed = await decideAll(new RedisLimiter(down.redis), ['a', 'b']);
    expect(failed.map((a) => (a.err as Error).message)).toEqual(['Connection is closed.', 'Connection is closed.']);
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
});
