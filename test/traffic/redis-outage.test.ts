import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { testStoreMode } from '../helpers/store-env.js';
import { pluginsWithTestPrincipal } from '../helpers/test-principal.js';
import { statuses } from './helpers.js';
import { ownRedis, type OwnRedis } from './redis-server.js';

// Needs a redis-server binary to start, stop and restart; the real-store pass is where Redis is installed.
const real = testStoreMode() === 'real';

describe.skipIf(!real)('rate limits while Redis is stopped and started again (real stores only: starts its own redis-server)', () => {
  let redis: OwnRedis;
  let open: TestGateway;
  let closed: TestGateway;
  const env = (mode: string, url: string) => ({
    REDIS_URL: url,
    RATE_LIMIT_FAIL_MODE: mode,
    RATE_LIMIT_POLICIES: JSON.stringify({ probe: { burst: 5, rate: 0.01 } }),
  });
  const pluginOptions = { 'rate-limit': { retrySharedAfterMs: 200 } };

  beforeAll(async () => {
    redis = await ownRedis();
    await redis.start();
    open = await startGateway('rl_outage', { env: env('open', redis.url), overrides: { plugins: pluginsWithTestPrincipal(), pluginOptions } });
    closed = await startGateway('rl_outage_closed', {
      env: env('closed', redis.url),
      stores: open.stores,
      overrides: { plugins: pluginsWithTestPrincipal(), pluginOptions },
    });
  });
  afterAll(async () => {
    // Closing a client whose server is gone waits on reconnects; give it a server to say goodbye to.
    if (redis && !redis.running) await redis.start();
    await closed?.close();
    await open?.close();
    await redis?.kill();
  });

  it('answers per the fail mode while Redis is down, never 500, and shares limits again once it is back', async () => {
    // Up: one bucket in Redis, shared by both gateways.
    expect(await statuses(`${open.url}/healthz`, 6)).toEqual([200, 200, 200, 200, 200, 429]);
    expect(await statuses(`${closed.url}/healthz`, 1)).toEqual([429]);

    await redis.kill();
    // fail-open: a local bucket (full, as this process has not limited anyone locally yet).
    expect(await statuses(`${open.url}/healthz`, 7)).toEqual([200, 200, 200, 200, 200, 429, 429]);
    // fail-closed: 503 with Retry-After, as problem+json.
    const refused = await fetch(`${closed.url}/healthz`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/Rate limiting is unavailable/);

    // (GET /metrics is itself under the exhausted probe policy here, so read the registry.)
    const fallbacks = await open.app.weir.deps.metrics.rateLimit.fallbacks.get();
    expect(fallbacks.values.find((v) => v.labels.mode === 'open')?.value).toBeGreaterThanOrEqual(7);

    await redis.start(); // empty: the shared bucket starts full again
    const seen: number[] = [];
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const [status] = await statuses(`${open.url}/healthz`, 1);
      seen.push(status!);
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen.at(-1)).toBe(200);
    expect(seen.every((s) => s === 200 || s === 429)).toBe(true);
    // Shared again: the rest of the fresh bucket, then limited, on either gateway.
    expect(await statuses(`${open.url}/healthz`, 3)).toEqual([200, 200, 200]);
    // The closed gateway last failed later than the open one, so it waits out its own retry pause first.
    await new Promise((r) => setTimeout(r, pluginOptions['rate-limit'].retrySharedAfterMs + 50));
    expect(await statuses(`${closed.url}/healthz`, 2)).toEqual([200, 429]);
    expect(await statuses(`${open.url}/healthz`, 1)).toEqual([429]);
  });
});
