import type { Request, Response } from 'express';
import passport from 'passport';
import { Strategy as CustomStrategy } from 'passport-custom';
import type { SecuritySchemeInfo } from '../../generated/registry.js';
import type { Identity } from '../../src/identity/index.js';
import type { Principal } from '../../src/gateway/request-types.js';
import type { CredentialFailure } from './failures.js';

/** What one scheme's strategy made of a request. */
export type SchemeOutcome =
  | { kind: 'ok'; principal: Principal }
  | { kind: 'absent' }
  | { kind: 'failed'; failure: CredentialFailure };

const BEARER = /^Bearer +([^\s]*)\s*$/i;

/**
 * One passport strategy per security scheme of the spec, registered under the scheme's name:
 * http bearer verifies a JWT, an apiKey header checks a Weir API key. Each reports a credential
 * that is absent apart from one that is wrong, so the plugin can apply OpenAPI's OR/AND rules.
 */
export function createAuthenticator(identity: Identity, schemes: Record<string, SecuritySchemeInfo>): passport.Authenticator {
  const authenticator = new passport.Passport();
  for (const scheme of Object.values(schemes)) {
    if (scheme.type === 'http' && scheme.scheme?.toLowerCase() === 'bearer') {
      authenticator.use(scheme.name, strategy(async (req) => {
        const header = req.headers.authorization;
        if (!header || !/^bearer(\s|$)/i.test(header)) return { kind: 'absent' };
        const token = BEARER.exec(header)?.[1];
        if (!token) return { kind: 'failed', failure: { scheme: 'bearer', reason: 'malformed' } };
        const result = await identity.jwt.verify(token);
        return result.ok ? { kind: 'ok', principal: result.principal } : { kind: 'failed', failure: { scheme: 'bearer', reason: result.reason } };
      }));
    } else if (scheme.type === 'apiKey' && scheme.in === 'header' && scheme.paramName) {
      const header = scheme.paramName.toLowerCase();
      authenticator.use(scheme.name, strategy(async (req) => {
        const value = req.headers[header];
        if (value === undefined) return { kind: 'absent' };
        if (typeof value !== 'string') return { kind: 'failed', failure: { scheme: 'apiKey', reason: 'malformed' } };
        const result = await identity.apiKeys.authenticate(value.trim());
        return result.ok
          ? { kind: 'ok', principal: result.principal }
          : { kind: 'failed', failure: { scheme: 'apiKey', reason: result.reason, prefix: result.prefix } };
      }));
    } else {
      throw new Error(`auth: the spec's security scheme ${scheme.name} (${scheme.type}) has no authenticator in plugins/auth`);
    }
  }
  return authenticator;
}

function strategy(check: (req: Request) => Promise<SchemeOutcome>): InstanceType<typeof CustomStrategy> {
  return new CustomStrategy((req, done) => {
    check(req).then(
      (outcome) => (outcome.kind === 'ok' ? done(null, outcome.principal) : done(null, false, outcome)),
      (err: unknown) => done(err),
    );
  });
}

/**
 * Whether the request carries a credential for the scheme at all: when it doesn't, the outcome is
 * `absent` without a round through passport (most requests carry one credential of two schemes).
 */
export function credentialPresent(scheme: SecuritySchemeInfo | undefined, req: Request): boolean {
  if (scheme?.type === 'apiKey' && scheme.paramName) return req.headers[scheme.paramName.toLowerCase()] !== undefined;
  if (scheme?.type === 'http') return /^bearer(\s|$)/i.test(req.headers.authorization ?? '');
  return true;
}

/** Runs one scheme's strategy through passport and resolves with its outcome (errors reject). */
export function runScheme(authenticator: passport.Authenticator, scheme: string, req: Request, res: Response): Promise<SchemeOutcome> {
  return new Promise((resolve, reject) => {
    const middleware = authenticator.authenticate(scheme, { session: false }, (err: unknown, user: Principal | false, info: SchemeOutcome | undefined) => {
      if (err) reject(err);
      else if (user) resolve({ kind: 'ok', principal: user });
      else resolve(info ?? { kind: 'absent' });
    });
    middleware(req, res, (err?: unknown) => (err ? reject(err) : resolve({ kind: 'absent' })));
  });
}
