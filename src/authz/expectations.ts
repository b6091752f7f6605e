import { readFileSync } from 'node:fs';
import type { Principal } from '../gateway/request-types.js';
import type { Authorizer, Decision, ResourceRef } from './authorizer.js';
import { csvLines, displayPath } from './csv.js';

/**
 * Expectation tables: CSV lines of
 *   subject, roles (a|b), attributes (k=v;k=v), tenant, resource (<type>:<id> or <type>:*),
 *   resource attributes (k=v;k=v), action, expected (allow|deny)
 * run against the policy, so that a policy change that flips a decision fails CI.
 */
export interface Expectation {
  where: string;
  principal: Principal;
  resource: ResourceRef;
  action: string;
  expected: 'allow' | 'deny';
}

export interface ExpectationResult extends Expectation {
  decision: Decision;
  passed: boolean;
}

const HEADER = ['subject', 'roles', 'attributes', 'tenant', 'resource', 'resource_attributes', 'action', 'expected'];

export function parseAttributes(text: string): Principal['attributes'] {
  const out: Principal['attributes'] = {};
  for (const pair of text.split(';').map((p) => p.trim()).filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new Error(`attribute ${JSON.stringify(pair)} is not name=value`);
    const value = pair.slice(eq + 1).trim();
    out[pair.slice(0, eq).trim()] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value === 'true' || value === 'false' ? value === 'true' : value;
  }
  return out;
}

export function parseResource(text: string, attributes: Principal['attributes'] = {}): ResourceRef {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new Error(`resource ${JSON.stringify(text)} is not <type>:<id> or <type>:*`);
  const id = text.slice(colon + 1);
  return { type: text.slice(0, colon), id: id === '*' ? undefined : id, attributes };
}

export function readExpectations(file: string): { expectations: Expectation[]; problems: string[] } {
  const expectations: Expectation[] = [];
  const problems: string[] = [];
  for (const entry of csvLines(readFileSync(file, 'utf8'))) {
    const where = `${displayPath(file)}:${entry.line}`;
    if ('error' in entry) {
      problems.push(`${where}: ${entry.error}`);
      continue;
    }
    if (entry.fields.join(',') === HEADER.join(',')) continue;
    if (entry.fields.length !== HEADER.length) {
      problems.push(`${where}: expected ${HEADER.length} fields (${HEADER.join(', ')}), found ${entry.fields.length}`);
      continue;
    }
    const [subject, roles, attributes, tenant, resource, resourceAttributes, action, expected] = entry.fields as [string, string, string, string, string, string, string, string];
    try {
      if (expected !== 'allow' && expected !== 'deny') throw new Error(`expected must be allow or deny, found ${JSON.stringify(expected)}`);
      expectations.push({
        where,
        principal: {
          subject,
          tenant,
          roles: roles.split('|').map((r) => r.trim()).filter(Boolean),
          scopes: [],
          attributes: parseAttributes(attributes),
          authMethod: 'jwt',
          mfa: false,
        },
        resource: parseResource(resource, parseAttributes(resourceAttributes)),
        action,
        expected,
      });
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
    }
  }
  return { expectations, problems };
}

export function runExpectations(authorizer: Authorizer, expectations: Expectation[]): ExpectationResult[] {
  return expectations.map((e) => {
    const decision = authorizer.decide(e.principal, e.resource, e.action);
    return { ...e, decision, passed: decision.allowed === (e.expected === 'allow') };
  });
}

export function describeRule(decision: Decision): string {
  return decision.rule ? decision.rule.join(', ') : 'no rule matched (deny by default)';
}
