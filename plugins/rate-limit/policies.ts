import type { Request } from 'express';
import { PolicyOverrides, PolicyTable, type PolicyLimits, type RateLimitOptions } from './schema.js';
import { bucketParams, type BucketParams } from './gcra.js';

export interface ResolvedPolicy {
  name: string;
  limits: PolicyLimits;
  bucket: BucketParams;
  /** The RateLimit-Policy field value, e.g. `"default";q=100;w=10`. */
  header: string;
  /** The name as a structured-field string, e.g. `"default"`. */
  quotedName: string;
  /** Where its buckets' Redis keys start, e.g. `rl:default:`. */
  keyPrefix: string;
}

/**
 * The policy table: the plugin's defaults, then RATE_LIMIT_POLICIES, and the per-tenant and
 * per-plan overrides (RATE_LIMIT_OVERRIDES). Built once at boot; a request then looks its limits up.
 */
export class PolicyBook {
  private readonly base = new Map<string, ResolvedPolicy>();
  private readonly overrides = new Map<string, ResolvedPolicy>();

  constructor(
    options: RateLimitOptions,
    config: { policies: Record<string, unknown>; overrides: Record<string, unknown> },
  ) {
    const policies = { ...options.policies, ...parse(PolicyTable, config.policies, 'RATE_LIMIT_POLICIES') };
    const overrides = { ...options.overrides, ...parse(PolicyOverrides, config.overrides, 'RATE_LIMIT_OVERRIDES') };
    for (const [name, limits] of Object.entries(policies)) this.base.set(name, resolve(name, limits));
    for (const [scope, table] of Object.entries(overrides)) {
      for (const [name, limits] of Object.entries(table)) this.overrides.set(`${scope}/${name}`, resolve(name, limits));
    }
    this.planAttribute = options.planAttribute;
  }

  private readonly planAttribute: string;

  has(name: string): boolean {
    return this.base.has(name);
  }

  names(): string[] {
    return [...this.base.keys()];
  }

  /** The limits for this request: its tenant's override, else its plan's, else the policy's own. */
  forRequest(name: string, req: Request): ResolvedPolicy {
    const principal = req.principal;
    if (principal && this.overrides.size) {
      const tenant = this.overrides.get(`tenant:${principal.tenant}/${name}`);
      if (tenant) return tenant;
      const plan = principal.attributes[this.planAttribute];
      const byPlan = typeof plan === 'string' ? this.overrides.get(`plan:${plan}/${name}`) : undefined;
      if (byPlan) return byPlan;
    }
    return this.base.get(name)!;
  }
}

function resolve(name: string, limits: PolicyLimits): ResolvedPolicy {
  // draft-ietf-httpapi-ratelimit-headers-11: q is the quota, w the window in seconds; for a bucket,
  // the time it takes to refill from empty.
  const window = Math.max(1, Math.ceil(limits.burst / limits.rate));
  return { name, limits, bucket: bucketParams(limits), header: `${sfString(name)};q=${limits.burst};w=${window}`, quotedName: sfString(name), keyPrefix: `rl:${name}:` };
}

export function sfString(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }, value: unknown, setting: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(value)'}: ${i.message}`).join('; ');
  throw new Error(`${setting} is invalid: ${problems}`);
}
