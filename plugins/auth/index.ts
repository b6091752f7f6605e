import { securitySchemes } from '../../generated/registry.js';
import { definePlugin } from '../../src/gateway/plugin.js';
import type passport from 'passport';
import { PRIORITY } from '../priorities.js';
import { authenticateMiddleware, authSettings } from './authenticate.js';
import { AuthOptions } from './schema.js';
import { createAuthenticator } from './strategies.js';

/**
 * Authentication, driven by each operation's `security` in the spec (requirements OR'ed, schemes
 * AND'ed; `security: []` is public) and `x-weir-require-mfa`. Sets `req.principal`; nothing later
 * reads credentials.
 */
export function createAuthPlugin() {
  let authenticator: passport.Authenticator | undefined;
  return definePlugin({
    name: 'auth',
    priority: PRIORITY.auth,
    options: AuthOptions,
    forOperation: (op) => authSettings(op),
    middleware: (settings, { identity, logger, options }) => {
      authenticator ??= createAuthenticator(identity, securitySchemes);
      return authenticateMiddleware(settings, { authenticator, schemes: securitySchemes, realm: options.realm, logger });
    },
  });
}
