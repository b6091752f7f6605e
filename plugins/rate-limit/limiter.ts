import type { Logger } from 'pino';
import type { GatewayMetrics } from '../../src/observability/metrics.js';
import type { BucketParams, Decision } from './gcra.js';
import { LocalLimiter } from './local-limiter.js';
import type { RedisLimiter } from './redis-limiter.js';

export type LimiterResult = ({ source: 'shared' | 'local' } & Decision) | { source: 'unavailable' };

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

  async consume(key: string, p: BucketParams, cost: number, force = false): Promise<LimiterResult> {
    if (!this.shared) return withSource('local', this.local.consume(key, p, cost, force));
    if (Date.now() >= this.sharedDownUntil) {
      try {
        if (!this.shared.ready) throw new Error('not connected to the shared store');
        const decision = await this.shared.consume(key, p, cost, force);
        if (this.sharedDown) {
          this.sharedDown = false;
          this.opts.logger.info('rate-limit: the shared store answers again; limits are shared again');
        }
        return withSource('shared', decision);
      } catch (err) {
        this.sharedDownUntil = Date.now() + this.opts.retrySharedAfterMs;
        if (!this.sharedDown) {
          this.sharedDown = true;
          this.opts.logger.error({ err, failMode: this.opts.failMode }, 'rate-limit: the shared store failed; deciding without it');
        }
      }
    }
    this.opts.metrics.rateLimit.fallbacks.inc({ mode: this.opts.failMode });
    this.opts.metrics.usage.recordFallback();
    if (this.opts.failMode === 'closed') return { source: 'unavailable' };
    return withSource('local', this.local.consume(key, p, cost, force));
  }
}

function withSource(source: 'shared' | 'local', d: Decision): LimiterResult {
  return { source, allowed: d.allowed, remaining: d.remaining, resetUs: d.resetUs, retryUs: d.retryUs };
}
