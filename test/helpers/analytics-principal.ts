import { z } from 'zod';
import { createPlugins } from '../../plugins/index.js';
import { PRIORITY } from '../../plugins/priorities.js';
import { definePlugin, type AnyPlugin } from '../../src/gateway/plugin.js';
import type { Principal } from '../../src/gateway/request-types.js';

/** The header the test authenticator reads: a JSON principal (tenant and subject at least). */
export const ANALYTICS_PRINCIPAL = 'x-analytics-test-principal';

export function asPrincipal(tenant: string, subject = `${tenant}-user`, roles: string[] = ['admin']): Record<string, string> {
  return { [ANALYTICS_PRINCIPAL]: JSON.stringify({ tenant, subject, roles }) };
}

/**
 * The gateway's plugins with authentication and authorization replaced by a stand-in that takes the
 * principal from a test header (the real ones are filtered out by name), and the rate limits
 * dropped, so tests can send traffic at volume.
 */
export function analyticsTestPlugins(): AnyPlugin[] {
  const testAuth = definePlugin({
    name: 'auth',
    priority: PRIORITY.auth,
    options: z.any(),
    forOperation: () => true,
    middleware: () => (req, _res, next) => {
      const header = req.get(ANALYTICS_PRINCIPAL);
      if (header) {
        const p = JSON.parse(header) as Partial<Principal> & { tenant: string; subject: string };
        req.principal = { roles: [], scopes: [], attributes: {}, authMethod: 'jwt', mfa: false, ...p };
      }
      next();
    },
  });
  return [...createPlugins().filter((p) => !['auth', 'authz', 'rate-limit'].includes(p.name)), testAuth];
}
