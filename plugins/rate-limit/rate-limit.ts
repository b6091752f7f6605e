import type { Request, RequestHandler } from 'express';
import type { OperationInfo } from '../../generated/registry.js';
import type { GatewayMetrics } from '../../src/observability/metrics.js';
import '../../src/observability/request-facts.js';
import { ProblemError } from '../../src/problem.js';
import type { Limiter } from './limiter.js';
import { sfString, type PolicyBook } from './policies.js';

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
  if (!p) return `ip:${req.socket ? req.ip : 'gone'}`; // a request whose client already left gets nothing back anyway
  if (p.authMethod === 'api_key' && p.credentialId) return `key:${p.credentialId}`;
  return `sub:${p.tenant}:${p.subject}`;
}

export function rateLimitMiddleware(
  settings: RateLimitSettings,
  deps: { book: PolicyBook; limiter: Limiter; metrics: GatewayMetrics; retryUnavailableS: number },
): RequestHandler {
  const { book, limiter, metrics } = deps;
  // Labelled children cached: prom-client hashes a labels object on every inc().
  const decisions = new Map<string, ReturnType<GatewayMetrics['rateLimit']['decisions']['labels']>>();
  const countDecision = (policy: string, decision: string, source: string) => {
    const key = `${policy}\0${decision}\0${source}`;
    let child = decisions.get(key);
    if (!child) decisions.set(key, (child = metrics.rateLimit.decisions.labels({ policy, decision, source })));
    child.inc();
  };
  return async (req, res, next) => {
    const policy = book.forRequest(settings.policy, req);
    const key = `rl:${policy.name}:${bucketIdentity(req)}`;
    const result = await limiter.consume(key, policy.bucket, settings.cost);
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
    const headers = {
      'RateLimit-Policy': policy.header,
      RateLimit: `${sfString(policy.name)};r=${result.remaining};t=${Math.ceil(result.resetUs / 1_000_000)}`,
    };
    countDecision(policy.name, result.allowed ? 'allowed' : 'limited', result.source);
    if (!result.allowed) {
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
    res.set(headers);
    req.rateLimit = { policy: policy.name, remaining: result.remaining, source: result.source };
    if (settings.byRows) {
      res.once('finish', () => {
        const extra = (req.rowsAffected ?? 0) - settings.cost;
        // Charged after the fact, so it may overdraw the bucket: the next requests wait it out.
        if (extra > 0) void limiter.consume(key, policy.bucket, extra, true).catch(() => {});
      });
    }
    next();
  };
}
