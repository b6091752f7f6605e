import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { bucketParams } from '../../plugins/rate-limit/gcra.js';
import { RedisLimiter, type GcraReply } from '../../plugins/rate-limit/redis-limiter.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { SharedState } from '../stores/index.js';
import { SiteLimiter, type SiteDecision } from './site-limit.js';

/** Stands in for ioredis's batch script: records each call's keys and answers per key. */
function fakeRedis(answer: (key: string) => GcraReply) {
  const calls: string[][] = [];
  const redis = {
    status: 'ready',
    defineCommand() {},
    weirGcraBatch: async (_numKeys: number, keys: string[]) => (calls.push(keys), keys.flatMap(answer)),
  };
  return { redis: redis as unknown as Redis, calls };
}

const site = (id: string) => ({ id, trackingId: `T-${id}`, tenant: 'acme' });
const limits = { default: { burst: 10, rate: 2 }, overrides: {} };
const deps = (redis: Redis) => ({
  shared: { redis } as unknown as SharedState,
  failMode: 'open' as const,
  logger: pino({ level: 'silent' }),
  metrics: {} as GatewayMetrics,
});

describe('SiteLimiter', () => {
  it("shares the connection's script calls with the rate-limit plugin's per-IP decisions", async () => {
    const fake = fakeRedis(() => [1, 5, 0, 0]);
    const sites = new SiteLimiter(limits, deps(fake.redis));
    const perIp = () => new Promise((resolve) => RedisLimiter.for(fake.redis).decide('rl:ip:1.2.3.4', bucketParams({ burst: 5, rate: 1 }), 1, false, resolve));
    const decisions = await Promise.all([sites.take(site('a')), perIp(), sites.take(site('b'))]);
    expect(fake.calls).toEqual([['rl:analytics-site:a', 'rl:ip:1.2.3.4', 'rl:analytics-site:b']]);
    expect(decisions[0]).toEqual({ allowed: true });
  });

  it('answers through a callback, with the retry time of a limited website', async () => {
    const fake = fakeRedis((key) => (key.endsWith(':full') ? [0, 0, 9_000_000, 2_500_001] : [1, 3, 0, 0]));
    const sites = new SiteLimiter(limits, deps(fake.redis));
    const decide = (id: string) => new Promise<SiteDecision>((resolve) => sites.decide(site(id), resolve));
    expect(await decide('ok')).toEqual({ allowed: true });
    expect(await decide('full')).toEqual({
      allowed: false,
      retryAfterS: 3,
      detail: 'The website may send a burst of 10 and 2 hits per second; retry in 3 s.',
    });
  });
});
