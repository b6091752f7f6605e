import { describe, expect, it } from 'vitest';
import { bucketParams, decide } from './gcra.js';
import { PolicyBook } from './policies.js';
import { RateLimitOptions } from './schema.js';

const S = 1_000_000;

/** Runs requests at the given times (µs) through one bucket; returns how many were admitted. */
function admitted(times: number[], limits: { burst: number; rate: number }): number {
  const p = bucketParams(limits);
  let tat = 0;
  let n = 0;
  for (const t of times) {
    const r = decide(tat, t, p, 1, false);
    tat = r.tat;
    if (r.decision.allowed) n++;
  }
  return n;
}

describe('GCRA token bucket', () => {
  it('admits the burst at once, then one request per interval', () => {
    const p = bucketParams({ burst: 5, rate: 2 });
    let tat = 0;
    const t0 = 1000 * S;
    const results = Array.from({ length: 6 }, () => {
      const r = decide(tat, t0, p, 1, false);
      tat = r.tat;
      return r.decision;
    });
    expect(results.map((d) => d.allowed)).toEqual([true, true, true, true, true, false]);
    expect(results.map((d) => d.remaining)).toEqual([4, 3, 2, 1, 0, 0]);
    expect(results[5]!.retryUs).toBe(0.5 * S);
    expect(results[4]!.resetUs).toBe(2.5 * S);
    expect(decide(tat, t0 + 0.5 * S - 1, p, 1, false).decision.allowed).toBe(false);
    expect(decide(tat, t0 + 0.5 * S, p, 1, false).decision.allowed).toBe(true);
  });

  it('under saturating load admits exactly burst + floor(rate × elapsed)', () => {
    for (const [burst, rate, seconds] of [
      [10, 3, 7.3],
      [2, 200, 1.2345],
      [100, 0.5, 30],
    ] as const) {
      const t0 = 5_000 * S;
      const step = 997; // µs between requests: far more often than any of these rates
      const times = Array.from({ length: Math.floor((seconds * S) / step) + 1 }, (_, i) => t0 + i * step);
      const elapsed = (times.at(-1)! - t0) / S;
      expect(admitted(times, { burst, rate })).toBe(burst + Math.floor(rate * elapsed + 1e-9));
    }
  });

  it('a charge larger than what is left is refused whole, and a forced one overdraws', () => {
    const p = bucketParams({ burst: 10, rate: 1 });
    const first = decide(0, 50 * S, p, 8, false);
    expect(first.decision).toMatchObject({ allowed: true, remaining: 2 });
    const refused = decide(first.tat, 50 * S, p, 3, false);
    expect(refused.decision).toMatchObject({ allowed: false, remaining: 2, retryUs: 1 * S });
    expect(refused.tat).toBe(first.tat);
    const forced = decide(first.tat, 50 * S, p, 5, true);
    expect(forced.decision).toMatchObject({ allowed: true, remaining: 0 });
    expect(decide(forced.tat, 52 * S, p, 1, false).decision.allowed).toBe(false);
    expect(decide(forced.tat, 54 * S, p, 1, false).decision.allowed).toBe(true);
  });
});

describe('policy book', () => {
  const options = RateLimitOptions.parse({ policies: { default: { burst: 100, rate: 10 }, ingest: { burst: 50, rate: 5 } } });
  const book = new PolicyBook(options, {
    policies: { ingest: { burst: 60, rate: 6 } },
    overrides: { 'tenant:acme': { ingest: { burst: 1000, rate: 100 } }, 'plan:pro': { ingest: { burst: 500, rate: 50 } } },
  });
  const req = (principal?: object) => ({ principal }) as never;

  it('writes RateLimit-Policy as the draft-11 structured field (q = burst, w = seconds to refill)', () => {
    expect(book.forRequest('default', req()).header).toBe('"default";q=100;w=10');
  });

  it('config beats the defaults; a tenant override beats a plan override', () => {
    expect(book.forRequest('ingest', req()).limits).toEqual({ burst: 60, rate: 6 });
    const base = { roles: [], scopes: [], authMethod: 'jwt', mfa: false };
    expect(book.forRequest('ingest', req({ ...base, tenant: 'acme', subject: 'a', attributes: { plan: 'pro' } })).limits.burst).toBe(1000);
    expect(book.forRequest('ingest', req({ ...base, tenant: 'other', subject: 'a', attributes: { plan: 'pro' } })).limits.burst).toBe(500);
    expect(book.forRequest('ingest', req({ ...base, tenant: 'other', subject: 'a', attributes: {} })).limits.burst).toBe(60);
  });

  it('refuses a malformed override at boot, naming the setting', () => {
    expect(() => new PolicyBook(options, { policies: { default: { burst: 0, rate: 1 } }, overrides: {} })).toThrow(/RATE_LIMIT_POLICIES/);
    expect(() => new PolicyBook(options, { policies: {}, overrides: { acme: {} } })).toThrow(/RATE_LIMIT_OVERRIDES/);
  });
});
