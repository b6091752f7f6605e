import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { OperationInfo } from '../../generated/registry.js';
import { ProblemError, sendProblem } from '../problem.js';

/** For requests no operation matched: 405 with Allow when the path exists, else 404. */
export function unmatchedRoute(operations: readonly OperationInfo[]): RequestHandler {
  const routes = new Map<string, { pattern: RegExp; methods: Set<string> }>();
  for (const op of operations) {
    const route = routes.get(op.path) ?? {
      pattern: new RegExp(`^${op.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}/?$`),
      methods: new Set<string>(),
    };
    route.methods.add(op.method.toUpperCase());
    if (op.method === 'get') route.methods.add('HEAD');
    routes.set(op.path, route);
  }
  return (req, res, next) => {
    const allowed = [...routes.values()].find((r) => r.pattern.test(req.path))?.methods;
    if (allowed) {
      const allow = [...allowed].sort().join(', ');
      return next(new ProblemError(405, { detail: `${req.method} is not allowed on ${req.path}; use ${allow}.`, headers: { Allow: allow } }));
    }
    next(new ProblemError(404, { detail: `No operation matches ${req.method} ${req.path}. See /openapi.json or /docs for the routes.` }));
  };
}

/** The last middleware: every error leaves as application/problem+json with the request id. */
export function problemErrorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    let problem: ProblemError;
    if (err instanceof ProblemError) {
      problem = err;
    } else {
      const status = typeof err?.status === 'number' && err.status >= 400 && err.status < 600 ? err.status : 500;
      // Errors from libraries may say too much (paths, SQL); only client errors keep their message.
      problem =
        status >= 500
          ? new ProblemError(status, { detail: `An unexpected error occurred. Quote the request id when reporting it.` })
          : new ProblemError(status, { detail: String(err?.message ?? 'The request could not be processed.') });
    }
    // Problems the gateway raised on purpose (501, 503, ...) are answers, not failures; a 500 is a bug.
    if (problem.status === 500) logger.error({ err, requestId: req.id, operationId: req.operationInfo?.operationId }, 'request failed');
    sendProblem(req, res, problem);
  };
}
