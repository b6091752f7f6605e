import { z } from 'zod';
import { createPlugins } from '../../plugins/index.js';
import { PRIORITY } from '../../plugins/priorities.js';
import { definePlugin, type AnyPlugin } from '../../src/gateway/plugin.js';
import type { Principal } from '../../src/gateway/request-types.js';
import { ProblemError } from '../../src/problem.js';

/**
 * Test-only stand-in for authentication and authorization, for tests of other capabilities that
 * need a caller without minting credentials. The attack suite (test/security) tests the real ones.
 *
 * A request names its principal with `x-test-principal` (JSON, tenant and subject at least; the
 * value `invalid` is a refused credential), or with `x-test-tenant` (and `x-test-subject`) for an
 * admin of that tenant. Without either it is anonymous.
 */
export const TEST_PRINCIPAL = 'x-test-principal';

/** Headers for a request made as `p`. */
export function principalHeader(p: Partial<Principal> & { tenant: string; subject: string }): Record<string, string> {
  return { [TEST_PRINCIPAL]: JSON.stringify(p) };
}

/** Headers for a request made by an admin of `tenant`. */
export const asTenant = (tenant: string, extra: Record<string, string> = {}) => ({ 'x-test-tenant': tenant, ...extra });

/** The principal a request's test headers name; undefined when anonymous. Throws a 401 for `invalid`. */
export function testPrincipalFromHeaders(headers: Record<string, string | string[] | undefined>): Principal | undefined {
  const json = headers[TEST_PRINCIPAL];
  if (typeof json === 'string' && json) {
    if (json === 'invalid') throw new ProblemError(401, { type: 'invalid-credentials', detail: 'test credential refused' });
    const p = JSON.parse(json) as Partial<Principal> & { tenant: string; subject: string };
    return { roles: [], scopes: [], attributes: {}, authMethod: 'jwt', mfa: false, ...p };
  }
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
 * The stand-in: named `auth` and `authz` like the real plugins and run where they do, so every other
 * plugin sees the principal as in production and options meant for the real ones are accepted.
 */
export const testPrincipalPlugin = definePlugin({
  name: 'auth',
  priority: PRIORITY.auth,
  options: z.any(),
  forOperation: () => true,
  middleware: () => (req, _res, next) => {
    try {
      const principal = testPrincipalFromHeaders(req.headers);
      if (principal) req.principal = principal;
      next();
    } catch (err) {
      next(err);
    }
  },
});
const noAuthorization = definePlugin({ name: 'authz', priority: PRIORITY.authz, options: z.any() });

/** The app's plugins with the real auth and authz swapped for the stand-in, less any plugins named in `without`. */
export function pluginsWithTestPrincipal(options: { without?: string[] } = {}): AnyPlugin[] {
  const dropped = new Set(['auth', 'authz', ...(options.without ?? [])]);
  return [...createPlugins().filter((p) => !dropped.has(p.name)), testPrincipalPlugin, noAuthorization];
}
