import { z } from 'zod';
import { createPlugins } from '../../plugins/index.js';
import { PRIORITY } from '../../plugins/priorities.js';
import { definePlugin, type AnyPlugin } from '../../src/gateway/plugin.js';
import type { Principal } from '../../src/gateway/request-types.js';
import { ProblemError } from '../../src/problem.js';

/** The header the stand-in authenticator reads: a JSON Principal (partial), or `invalid` for a refused credential. */
export const TEST_PRINCIPAL = 'x-test-principal';

export function principalHeader(p: Partial<Principal> & { tenant: string; subject: string }): Record<string, string> {
  return { [TEST_PRINCIPAL]: JSON.stringify(p) };
}

/**
 * The gateway's plugins with authentication and authorization replaced by stand-ins, so the traffic
 * plugins can be tested on any operation whatever the real auth plugins demand. The stand-ins take
 * the real ones' names (and any options given to them).
 */
export function trafficPlugins(): AnyPlugin[] {
  const fakeAuth = definePlugin({
    name: 'auth',
    priority: PRIORITY.auth,
    options: z.any(),
    forOperation: () => true,
    middleware: () => (req, _res, next) => {
      const header = req.get(TEST_PRINCIPAL);
      if (header === undefined) return next();
      if (header === 'invalid') return next(new ProblemError(401, { type: 'invalid-credentials', detail: 'test credential refused' }));
      const p = JSON.parse(header) as Partial<Principal> & { tenant: string; subject: string };
      req.principal = { roles: [], scopes: [], attributes: {}, authMethod: 'jwt', mfa: false, ...p };
      next();
    },
  });
  const fakeAuthz = definePlugin({ name: 'authz', priority: PRIORITY.authz, options: z.any() });
  return [...createPlugins().filter((p) => p.name !== 'auth' && p.name !== 'authz'), fakeAuth, fakeAuthz];
}

/** Sends `count` requests one after another; returns their statuses. */
export async function statuses(url: string, count: number, init?: RequestInit): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(url, init);
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
}
