/**
 * The token bucket as a GCRA (generic cell rate algorithm): the whole state is one number, the
 * theoretical arrival time `tat` at which the bucket would be full again. With an emission interval
 * T = 1/rate and capacity `burst`, a request costing c fits when max(tat, now) + c·T − now ≤ burst·T.
 * Integer microseconds throughout, so the local and Redis versions (redis-limiter.ts) agree exactly.
 * Over any span E from a full bucket this admits at most burst + floor(E / T) unit requests.
 */
export interface Decision {
  allowed: boolean;
  /** Whole tokens left after this decision. */
  remaining: number;
  /** Microseconds until the bucket is full again. */
  resetUs: number;
  /** Microseconds until this request's cost would fit (0 when allowed). */
  retryUs: number;
}

export interface BucketParams {
  burst: number;
  intervalUs: number;
}

export function bucketParams(limits: { burst: number; rate: number }): BucketParams {
  return { burst: limits.burst, intervalUs: Math.max(1, Math.round(1_000_000 / limits.rate)) };
}

/** One decision; `force` charges the cost even when it doesn't fit (a debt, for costs known only afterwards). */
export function decide(tat: number, nowUs: number, p: BucketParams, cost: number, force: boolean): { tat: number; decision: Decision } {
  const limit = p.burst * p.intervalUs;
  const base = Math.max(tat, nowUs);
  const next = base + cost * p.intervalUs;
  const allowed = next - nowUs <= limit || force;
  const newTat = allowed ? next : base;
  return {
    tat: newTat,
    decision: {
      allowed,
      remaining: Math.max(0, Math.floor((limit - (newTat - nowUs)) / p.intervalUs)),
      resetUs: Math.max(0, newTat - nowUs),
      retryUs: allowed ? 0 : next - nowUs - limit,
    },
  };
}
