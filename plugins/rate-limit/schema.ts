import { z } from 'zod';

/** A token bucket: `burst` tokens at most, refilled at `rate` tokens per second. */
export const PolicyLimits = z.object({
  burst: z.number().int().min(1),
  rate: z.number().positive(),
});
export type PolicyLimits = z.infer<typeof PolicyLimits>;

/** Per-policy limits, by the policy names the spec's `x-weir-rate-limit` uses. */
export const PolicyTable = z.record(z.string(), PolicyLimits);

/** `{"tenant:acme": {"ingest": {...}}, "plan:pro": {...}}`: a tenant's own limits beat its plan's, which beat the defaults. */
export const PolicyOverrides = z.record(z.string().regex(/^(tenant|plan):.+$/, 'expected "tenant:<id>" or "plan:<name>"'), PolicyTable);

export const RateLimitOptions = z
  .object({
    policies: PolicyTable.default({
      default: { burst: 100, rate: 10 },
      auth: { burst: 10, rate: 1 },
      ingest: { burst: 5000, rate: 1000 },
      query: { burst: 20, rate: 2 },
      export: { burst: 5, rate: 0.1 },
      admin: { burst: 20, rate: 1 },
      tracking: { burst: 200, rate: 50 },
      realtime: { burst: 10, rate: 1 },
      probe: { burst: 60, rate: 20 },
    }),
    overrides: PolicyOverrides.default({}),
    /** When the shared store doesn't answer: `open` decides with a per-process limiter, `closed` answers 503. */
    failMode: z.enum(['open', 'closed']).optional(),
    /** After a shared-store failure, how long to decide locally before trying it again. */
    retrySharedAfterMs: z.number().int().min(0).default(1000),
    /** Principal attribute naming the plan whose overrides apply. */
    planAttribute: z.string().default('plan'),
  })
  .prefault({});

export type RateLimitOptions = z.infer<typeof RateLimitOptions>;
