import type { RequestHandler } from 'express';
import type { AuditLog } from '../../src/audit/index.js';
import { definePlugin } from '../../src/gateway/plugin.js';
import { ProblemError } from '../../src/problem.js';
import { PRIORITY } from '../priorities.js';
import { auditRecord, auditSettings, requestStart, type AuditSettings } from './record.js';
import { AuditOptions } from './schema.js';

/**
 * One audit record per request that reaches an operation, written when the answer is sent. It runs
 * before authentication, so refused credentials are recorded too. close() flushes the buffer.
 */
export function createAuditPlugin() {
  let log: AuditLog | undefined;
  return definePlugin({
    name: 'audit',
    priority: PRIORITY.audit,
    options: AuditOptions,
    forOperation: (op, options) => auditSettings(op, options.neverCapture),
    middleware: (settings, deps) => {
      log = deps.audit;
      return auditMiddleware(settings, deps.audit);
    },
    close: () => log?.writer.close(),
  });
}

function auditMiddleware(settings: AuditSettings, log: AuditLog): RequestHandler {
  const { writer } = log;
  const start: RequestHandler = (req, res, next) => {
    const at = requestStart(req, settings);
    // 'close' comes once per response (after the answer, or when the client goes away first).
    res.on('close', () => writer.add(auditRecord(settings, req, res, at)));
    next();
  };
  return (req, res, next) => {
    const admitted = writer.admit();
    if (admitted === true) return start(req, res, next);
    admitted.then(
      (ok) =>
        ok
          ? start(req, res, next)
          : next(
              new ProblemError(503, {
                detail: 'The audit log is not keeping up, and this gateway is configured not to answer requests it cannot audit; retry shortly.',
                headers: { 'Retry-After': '1' },
              }),
            ),
      next,
    );
  };
}
