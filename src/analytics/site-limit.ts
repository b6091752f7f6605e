import type { Logger } from 'pino';
import { bucketParams, type BucketParams } from '../../plugins/rate-limit/gcra.js';
import { Limiter, type LimiterResult } from '../../plugins/rate-limit/limiter.js';
import { RedisLimiter } from '../../plugins/rate-limit/redis-limiter.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { SharedState } from '../stores/index.js';
import type { SiteLimit } from './config.js';

export type SiteDecision = { allowed: true } | { allowed: false; retryAfterS: number; detail: string };

/**
 * The per-website hit limit of the tracking endpoints: one token bucket per website, through the
 * rate-limit plugin's limiter (the same GCRA, shared by every process through Redis when there is
 * one, local otherwise). The per-client-IP limit is the plugin's own, on the operations; both go
 * through the connection's one RedisLimiter, so their decisions share script calls.
 */
export class SiteLimiter {
  readonly #limiter: Limiter;
  readonly #params = new Map<string, BucketParams>();

  constructor(
    private readonly limits: { default: SiteLimit; overrides: Record<string, SiteLimit> },
    deps: { shared: SharedState; failMode: 'open' | 'closed'; logger: Logger; metrics: GatewayMetrics },
  ) {
    const redis = deps.shared.redis ? RedisLimiter.for(deps.shared.redis) : undefined;
    this.#limiter = new Limiter(redis, { failMode: deps.failMode, retrySharedAfterMs: 5_000, logger: deps.logger, metrics: deps.metrics });
  }

  limitFor(site: { trackingId: string; tenant: string }): SiteLimit {
    return this.limits.overrides[`site:${site.trackingId}`] ?? this.limits.overrides[`tenant:${site.tenant}`] ?? this.limits.default;
  }

  /** Takes one hit's token from the website's bucket. */
  take(site: { id: string; trackingId: string; tenant: string }): Promise<SiteDecision> {
    return new Promise((resolve) => this.decide(site, resolve));
  }

  /**
   * take() without a promise: `done` is called once, synchronously for a local decision, else when
   * Redis answers (or fails).
   */
  decide(site: { id: string; trackingId: string; tenant: string }, done: (decision: SiteDecision) => void): void {
    const limit = this.limitFor(site);
    const cacheKey = `${limit.burst}/${limit.rate}`;
    let params = this.#params.get(cacheKey);
    if (!params) this.#params.set(cacheKey, (params = bucketParams(limit)));
    this.#limiter.decide(`rl:analytics-site:${site.id}`, params, 1, false, (result) => done(siteDecision(limit, result)));
  }
}

const ALLOWED: SiteDecision = Object.freeze({ allowed: true });

function siteDecision(limit: SiteLimit, result: LimiterResult): SiteDecision {
  if (result.source === 'unavailable') {
    return { allowed: false, retryAfterS: 5, detail: 'Rate limiting is unavailable and the gateway refuses hits it cannot limit.' };
  }
  if (result.allowed) return ALLOWED;
  const retryAfterS = Math.max(1, Math.ceil(result.retryUs / 1_000_000));
  return { allowed: false, retryAfterS, detail: `The website may send a burst of ${limit.burst} and ${limit.rate} hits per second; retry in ${retryAfterS} s.` };
}
