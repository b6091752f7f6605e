import type { Logger } from 'pino';
import type { GatewayMetrics } from '../../src/observability/metrics.js';
import type { BucketParams, Decision } from './gcra.js';
import { LocalLimiter } from './local-limiter.js';
import type { GcraReply, RedisLimiter } from './redis-limiter.js';

export type LimiterResult = ({ source: 'shared' | 'local' } & Decision) | { source: 'unavailable' };

const UNAVAILABLE: LimiterResult = Object.freeze({ source: 'unavailable' });

/**
 * Decides with the shared (Redis) bucket when there is one, else the local one. When Redis fails,
 * fail-open decides locally (per process, so N processes admit up to N times the limit) and
 * fail-closed reports `unavailable`; either way the next `retrySharedAfterMs` skip Redis, then one
 * request tries it again, so the limiter recovers by itself.
 */
export class Limiter {
  private readonly local = new LocalLimiter();
  private sharedDownUntil = 0;
  private sharedDown = false;

  constructor(
    private readonly shared: RedisLimiter | undefined,
    private readonly opts: { failMode: 'open' | 'closed'; retrySharedAfterMs: number; logger: Logger; metrics: GatewayMetrics },
  ) {}

  /**
   * One decision, without promises (the request path): `done` is called once, synchronously for a
   * local decision, else when Redis answers (or fails).
   */
  decide(key: string, p: BucketParams, cost: number, force: boolean, done: (result: LimiterResult) => void): void {
    if (!this.shared) return done(withSource('local', this.local.consume(key, p, cost, force)));
    if (Date.now() < this.sharedDownUntil) return done(this.withoutShared(key, p, cost, force));
    if (!this.shared.ready) return done(this.sharedFailed(new Error('not connected to the shared store'), key, p, cost, force));
    this.shared.decide(key, p, cost, force, (err, reply) => done(err ? this.sharedFailed(err, key, p, cost, force) : this.sharedAnswered(reply!)));
  }

  private sharedAnswered([allowed, remaining, resetUs, retryUs]: GcraReply): LimiterResult {
    if (this.sharedDown) {
      this.sharedDown = false;
      this.opts.logger.info('rate-limit: the shared store answers again; limits are shared again');
    }
    return { source: 'shared', allowed: allowed === 1, remaining, resetUs, retryUs };
  }

  private sharedFailed(err: unknown, key: string, p: BucketParams, cost: number, force: boolean): LimiterResult {
    this.sharedDownUntil = Date.now() + this.opts.retrySharedAfterMs;
    if (!this.sharedDown) {
      this.sharedDown = true;
      this.opts.logger.error({ err, failMode: this.opts.failMode }, 'rate-limit: the shared store failed; deciding without it');
    }
    return this.withoutShared(key, p, cost, force);
  }

  private withoutShared(key: string, p: BucketParams, cost: number, force: boolean): LimiterResult {
    this.opts.metrics.rateLimit.fallbacks.inc({ mode: this.opts.failMode });
    this.opts.metrics.usage.recordFallback();
    if (this.opts.failMode === 'closed') return UNAVAILABLE;
    return withSource('local', this.local.consume(key, p, cost, force));
  }
}

function withSource(source: 'shared' | 'local', d: Decision): LimiterResult {
  return { source, allowed: d.allowed, remaining: d.remaining, resetUs: d.resetUs, retryUs: d.retryUs };
}
