import type { Request, RequestHandler } from 'express';
import type passport from 'passport';
import type { Logger } from 'pino';
import type { OperationInfo, SecuritySchemeInfo } from '../../generated/registry.js';
import { ProblemError } from '../../src/problem.js';
import { describeFailure, type CredentialFailure } from './failures.js';
import { credentialPresent, runScheme, type SchemeOutcome } from './strategies.js';

const ABSENT: SchemeOutcome = Object.freeze({ kind: 'absent' });

export interface AuthSettings {
  /** OpenAPI security requirements: any one list satisfies; every scheme in a list must pass. */
  requirements: readonly (readonly string[])[];
  requireMfa: boolean;
}

/** Public operations (`security: []`) get no authentication at all. */
export function authSettings(op: OperationInfo): AuthSettings | undefined {
  if (op.security.length === 0) return undefined;
  return { requirements: op.security, requireMfa: op.requireMfa === true };
}

/**
 * Sets `req.principal` from the first satisfied requirement, or answers 401 with a challenge per
 * scheme. A credential that was sent but refused says why (never repeating it); MFA-requiring
 * operations then demand a second factor (RFC 9470's insufficient_user_authentication).
 */
export function authenticateMiddleware(
  settings: AuthSettings,
  deps: { authenticator: passport.Authenticator; schemes: Record<string, SecuritySchemeInfo>; realm: string; logger: Logger },
): RequestHandler {
  const schemesUsed = [...new Set(settings.requirements.flat())];
  const challengeOf = (scheme: string, failure?: CredentialFailure): string => {
    const info = deps.schemes[scheme];
    if (info?.type === 'apiKey') return `ApiKey realm="${deps.realm}", header="${info.paramName}"`;
    const error = failure?.scheme === 'bearer' ? `, error="invalid_token", error_description="${describeFailure(failure).replace(/"/g, "'")}"` : '';
    return `Bearer realm="${deps.realm}"${error}`;
  };

  return async (req, res, next) => {
    const outcomes = new Map<string, SchemeOutcome>();
    // Passport decorates the request it is given (login, logout, ...); it gets a stand-in holding the
    // headers, so Express's request keeps its shape (and its callers' optimised property access).
    const credentials = { headers: req.headers } as Request;
    try {
      for (const requirement of settings.requirements) {
        const principals = [];
        for (const scheme of requirement) {
          let outcome = outcomes.get(scheme);
          if (!outcome) {
            outcome = credentialPresent(deps.schemes[scheme], req) ? await runScheme(deps.authenticator, scheme, credentials, res) : ABSENT;
            outcomes.set(scheme, outcome);
          }
          if (outcome.kind !== 'ok') break;
          principals.push(outcome.principal);
        }
        if (principals.length !== requirement.length) continue;
        const [principal, ...others] = principals;
        if (others.some((p) => p.subject !== principal?.subject || p.tenant !== principal?.tenant)) {
          return next(new ProblemError(401, { detail: 'The credentials sent belong to different principals.', headers: { 'WWW-Authenticate': schemesUsed.map((s) => challengeOf(s)).join(', ') } }));
        }
        if (principal) {
          if (settings.requireMfa && !principal.mfa) {
            deps.logger.info({ requestId: req.id, operationId: req.operationInfo?.operationId, subject: principal.subject, reason: 'mfa-required' }, 'auth: refused');
            return next(
              new ProblemError(401, {
                type: 'mfa-required',
                title: 'A second factor is required',
                detail:
                  'This operation requires multi-factor authentication: send a bearer token whose amr claim shows a second factor. API keys and client-credentials tokens cannot satisfy it.',
                headers: {
                  'WWW-Authenticate': `Bearer realm="${deps.realm}", error="insufficient_user_authentication", error_description="A second factor is required"`,
                },
              }),
            );
          }
          req.principal = principal;
        }
        return next();
      }
      const failed = [...outcomes].find((entry): entry is [string, Extract<SchemeOutcome, { kind: 'failed' }>] => entry[1].kind === 'failed');
      const failure = failed?.[1].failure;
      deps.logger.info(
        {
          requestId: req.id,
          operationId: req.operationInfo?.operationId,
          reason: failure ? `${failure.scheme}:${failure.reason}` : 'no-credentials',
          ...(failure?.scheme === 'apiKey' && failure.prefix && { keyPrefix: failure.prefix }),
        },
        'auth: refused',
      );
      next(
        new ProblemError(401, {
          type: failure ? 'invalid-credentials' : 'unauthorized',
          title: failure ? 'Invalid credentials' : 'Authentication required',
          detail: failure ? describeFailure(failure) : 'No credentials were sent. Send a bearer token (Authorization: Bearer) or an API key (X-API-Key).',
          headers: { 'WWW-Authenticate': schemesUsed.map((s) => challengeOf(s, failed?.[0] === s ? failure : undefined)).join(', ') },
        }),
      );
    } catch (err) {
      next(err);
    }
  };
}
