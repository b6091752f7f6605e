/**
 * A fixed log-scale latency histogram: 64 buckets from 0.05 ms growing by 25%, so any percentile
 * is known within 25% and merging windows is adding arrays. Cheap enough to keep one per
 * (minute, tenant, operation), which prom-client's histograms are not meant for.
 */
const FIRST_MS = 0.05;
const GROWTH = 1.25;
export const BUCKETS = 64;
const LOG_GROWTH = Math.log(GROWTH);

/** The bucket's upper bound in milliseconds. */
export function bucketUpperMs(index: number): number {
  return FIRST_MS * GROWTH ** index;
}

export function bucketOf(ms: number): number {
  if (!(ms > FIRST_MS)) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / FIRST_MS) / LOG_GROWTH));
}

export function newHistogram(): Uint32Array {
  return new Uint32Array(BUCKETS);
}

export function addInto(target: Uint32Array, source: Uint32Array): void {
  for (let i = 0; i < BUCKETS; i++) target[i]! += source[i]!;
}

/** The q-quantile (0..1) as its bucket's upper bound, rounded to 0.1 ms; 0 for an empty histogram. */
export function quantileMs(h: Uint32Array, q: number): number {
  let total = 0;
  for (let i = 0; i < BUCKETS; i++) total += h[i]!;
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    seen += h[i]!;
    if (seen >= rank) return Math.round(bucketUpperMs(i) * 10) / 10;
  }
  return Math.round(bucketUpperMs(BUCKETS - 1) * 10) / 10;
}
