import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { OperationInfo } from '../../generated/registry.js';
import type { Cell, GatewayMetrics } from '../../src/observability/metrics.js';
import '../../src/observability/request-facts.js';
import { clientIp } from '../../src/gateway/client-ip.js';
import { ProblemError } from '../../src/problem.js';
import type { Limiter, LimiterResult } from './limiter.js';
import type { PolicyBook, ResolvedPolicy } from './policies.js';

export interface RateLimitSettings {
  policy: string;
  /** Tokens charged up front; `rows` operations are charged 1 up front and the rest once rowsAffected is known. */
  cost: number;
  byRows: boolean;
}

export function rateLimitSettings(op: OperationInfo): RateLimitSettings | undefined {
  if (!op.rateLimit) return undefined;
  const { policy, cost } = op.rateLimit;
  return { policy, cost: typeof cost === 'number' ? cost : 1, byRows: cost === 'rows' };
}

/** Who a bucket belongs to: the API key or the principal when authenticated, the client IP otherwise. */
export function bucketIdentity(req: Request): string {
  const p = req.principal;
  if (!p) return `ip:${req.socket ? clientIp(req) : 'gone'}`; // a request whose client already left gets nothing back anyway
  if (p.authMethod === 'api_key' && p.credentialId) return `key:${p.credentialId}`;
  return `sub:${p.tenant}:${p.subject}`;
}

export function rateLimitMiddleware(
  settings: RateLimitSettings,
  deps: { book: PolicyBook; limiter: Limiter; metrics: GatewayMetrics; retryUnavailableS: number },
): RequestHandler {
  const { book, limiter, metrics } = deps;
  // Counted in cells (see Cell in src/observability/metrics.ts), by policy, then decision and source.
  const decisions = new Map<string, Cell[]>();
  const countDecision = (policy: string, allowed: boolean, source: 'shared' | 'local') => {
    let cells = decisions.get(policy);
    if (!cells) decisions.set(policy, (cells = []));
    const i = (allowed ? 0 : 2) + (source === 'shared' ? 0 : 1);
    (cells[i] ??= metrics.rateLimit.decisionsCell({ policy, decision: allowed ? 'allowed' : 'limited', source })).value++;
  };
  const decided = (req: Request, res: Response, next: NextFunction, policy: ResolvedPolicy, key: string, result: LimiterResult) => {
    if (result.source === 'unavailable') {
      metrics.rateLimit.decisions.inc({ policy: policy.name, decision: 'unavailable', source: 'shared' });
      return next(
        new ProblemError(503, {
          detail: `Rate limiting is unavailable, and this gateway is configured to refuse requests it cannot limit; retry in ${deps.retryUnavailableS} s.`,
          headers: { 'Retry-After': String(deps.retryUnavailableS) },
          extra: { policy: policy.name },
        }),
      );
    }
    const rateLimit = `${policy.quotedName};r=${result.remaining};t=${Math.ceil(result.resetUs / 1_000_000)}`;
    countDecision(policy.name, result.allowed, result.source);
    if (!result.allowed) {
      const headers = { 'RateLimit-Policy': policy.header, RateLimit: rateLimit };
      const retryAfter = Math.max(1, Math.ceil(result.retryUs / 1_000_000));
      const { burst, rate } = policy.limits;
      return next(
        new ProblemError(429, {
          detail: `Policy "${policy.name}" allows a burst of ${burst} and ${rate} requests per second; retry in ${retryAfter} s.`,
          headers: { ...headers, 'Retry-After': String(retryAfter) },
          extra: { policy: policy.name },
        }),
      );
    }
    res.setHeader('RateLimit-Policy', policy.header);
    res.setHeader('RateLimit', rateLimit);
    req.rateLimit = { policy: policy.name, remaining: result.remaining, source: result.source };
    if (settings.byRows) {
      res.once('finish', () => {
        const extra = (req.rowsAffected ?? 0) - settings.cost;
        // Charged after the fact, so it may overdraw the bucket: the next requests wait it out.
        if (extra > 0) limiter.decide(key, policy.bucket, extra, true, () => {});
      });
    }
    next();
  };
  // A callback rather than an async function: a decision costs no promises on the request path.
  return (req, res, next) => {
    const policy = book.forRequest(settings.policy, req);
    const key = policy.keyPrefix + bucketIdentity(req);
    limiter.decide(key, policy.bucket, settings.cost, false, (result) => {
      try {
        decided(req, res, next, policy, key, result);
      } catch (err) {
        next(err);
      }
    });
  };
}
