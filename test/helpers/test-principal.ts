import { z } from 'zod';
import { createPlugins } from '../../plugins/index.js';
import { definePlugin, type AnyPlugin } from '../../src/gateway/plugin.js';
import type { Principal } from '../../src/gateway/request-types.js';

/** The principal a test asks for with `x-test-tenant` (and optionally `x-test-subject`); none without it. */
export function testPrincipalFromHeaders(headers: Record<string, string | string[] | undefined>): Principal | undefined {
  const tenant = headers['x-test-tenant'];
  if (typeof tenant !== 'string' || !tenant) return undefined;
  const subject = headers['x-test-subject'];
  return {
    subject: typeof subject === 'string' && subject ? subject : `user:test@${tenant}`,
    tenant,
    roles: ['admin'],
    scopes: [],
    attributes: {},
    authMethod: 'api_key',
    mfa: false,
  };
}

/**
 * Test-only stand-in for authentication and authorization: trusts `x-test-tenant`. It runs where
 * auth does (priority 900), so every other plugin sees the principal as it would in production.
 */
export const testPrincipalPlugin = definePlugin({
  name: 'test-principal',
  priority: 900,
  options: z.object({}).prefault({}),
  forOperation: () => true,
  middleware: () => (req, _res, next) => {
    const principal = testPrincipalFromHeaders(req.headers);
    if (principal) req.principal = principal;
    next();
  },
});

/** The app's plugins with the real auth and authz swapped for the test principal plugin. */
export function pluginsWithTestPrincipal(): AnyPlugin[] {
  return [...createPlugins().filter((p) => p.name !== 'auth' && p.name !== 'authz'), testPrincipalPlugin];
}

/** Headers for a test principal of `tenant`. */
export const asTenant = (tenant: string, extra: Record<string, string> = {}) => ({ 'x-test-tenant': tenant, ...extra });
