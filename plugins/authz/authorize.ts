import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { OperationInfo } from '../../generated/registry.js';
import type { Decision, ResourceRef } from '../../src/authz/authorizer.js';
import type { AccessControl } from '../../src/authz/index.js';
import { ProblemError } from '../../src/problem.js';

export interface AuthzSettings {
  resource: string;
  action: string;
  /** The path parameter holding the resource id; absent for collection actions. */
  idParam?: string;
}

declare global {
  namespace Express {
    interface Request {
      /** What the authz plugin decided, for the handler and the audit log. */
      authz?: { resource: ResourceRef; action: string; decision: Decision };
    }
  }
}

export function authzSettings(op: OperationInfo): AuthzSettings | undefined {
  return op.authz && { resource: op.authz.resource, action: op.authz.action, idParam: op.authz.id };
}

/**
 * Enforces x-weir-authz before the handler: the resource must exist in the caller's tenant (a
 * missing one and another tenant's answer the same 404, so existence does not leak), then the
 * policy must allow the action (403 otherwise).
 */
export function authorizeMiddleware(settings: AuthzSettings, access: AccessControl, logger: Logger): RequestHandler {
  const notFound = () => new ProblemError(404, { detail: `No such ${settings.resource}, or the caller may not see it.` });
  return async (req, _res, next) => {
    try {
      const principal = req.principal;
      if (!principal) {
        // Only a spec with x-weir-authz on a public operation gets here: refuse rather than guess.
        return next(new ProblemError(401, { detail: 'This operation needs an authenticated caller.', headers: { 'WWW-Authenticate': 'Bearer realm="weir"' } }));
      }
      let resource: ResourceRef = { type: settings.resource };
      if (settings.idParam) {
        const raw: unknown = req.params[settings.idParam];
        const id = typeof raw === 'string' ? raw : undefined;
        const owner = id === undefined ? undefined : await access.resources.resolve(settings.resource, id);
        if (!owner || owner.tenant !== principal.tenant) return next(notFound());
        resource = { type: settings.resource, id, attributes: owner.attributes };
      }
      const decision = access.authorizer.decide(principal, resource, settings.action);
      req.authz = { resource, action: settings.action, decision };
      if (decision.allowed) return next();
      logger.info(
        { requestId: req.id, operationId: req.operationInfo?.operationId, subject: principal.subject, tenant: principal.tenant, resource: settings.resource, action: settings.action },
        'authz: denied',
      );
      next(new ProblemError(403, { detail: `The caller may not ${settings.action} ${settings.idParam ? `this ${settings.resource}` : `${settings.resource} resources`}.` }));
    } catch (err) {
      next(err);
    }
  };
}
