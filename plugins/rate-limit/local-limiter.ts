import { decide, type BucketParams, type Decision } from './gcra.js';

const SWEEP_EVERY = 10_000;

/**
 * The in-process bucket store: embedded mode's limiter, and the fallback while Redis is away.
 * rate-limiter-flexible's memory limiters count fixed windows, which would change the semantics
 * between modes, so this is the same GCRA as the Redis script over a Map.
 */
export class LocalLimiter {
  private readonly tats = new Map<string, number>();
  private calls = 0;

  consume(key: string, p: BucketParams, cost: number, force = false): Decision {
    const now = Math.round(performance.timeOrigin * 1000 + performance.now() * 1000);
    const { tat, decision } = decide(this.tats.get(key) ?? 0, now, p, cost, force);
    this.tats.set(key, tat);
    if (++this.calls % SWEEP_EVERY === 0) this.sweep(now);
    return decision;
  }

  /** Buckets that are full again hold no information. */
  private sweep(nowUs: number): void {
    for (const [key, tat] of this.tats) if (tat <= nowUs) this.tats.delete(key);
  }
}
