import { describe, expect, it } from 'vitest';
import type { AccessControl } from '../../src/authz/index.js';
import type { Grant } from '../../src/authz/grants.js';
import type { DatasetRecord } from '../../src/datasets/repository.js';
import type { Principal } from '../../src/gateway/request-types.js';
import { accessViewFor, combineFieldRules } from '../../src/query/access-view.js';

const dataset = {
  id: 'ds_Payments0001',
  tenant: 'acme',
  columns: [
    { name: 'region', type: 'string', nullable: false },
    { name: 'email', type: 'string', nullable: true },
    { name: 'card', type: 'string', nullable: true },
    { name: 'amount', type: 'float', nullable: true },
    { name: '_ingested_at', type: 'timestamp', nullable: false },
  ],
} as unknown as DatasetRecord;

const principal = (roles: string[], attributes: Record<string, string> = {}): Principal =>
  ({ subject: 'sam', tenant: 'acme', roles, scopes: [], attributes, authMethod: 'jwt', mfa: false }) as Principal;

/** An AccessControl over fixed policy lines; `inherits` is role inheritance. */
function accessWith(lines: { p2?: string[][]; p3?: string[][] }, grants: Partial<Grant>[] = [], inherits: Record<string, string[]> = {}): AccessControl {
  const holds = (have: string, role: string): boolean => have === role || (inherits[have] ?? []).some((r) => holds(r, role));
  return {
    authorizer: {
      rulesOfType: (t: 'p2' | 'p3') => lines[t] ?? [],
      holdsRole: (p: Principal, role: string) => p.roles.some((r) => holds(r, role)),
    },
    grants: { forResource: async () => ({ grants: grants as Grant[], updatedAt: null }) },
  } as unknown as AccessControl;
}

describe('row rules: deny by default, allow-OR', () => {
  it('no applicable rule means no rows', async () => {
    const view = await accessViewFor(accessWith({ p2: [['role:analyst', '*', 'dataset:*', 'true']] }), principal(['viewer']), dataset);
    expect(view.rowFilter?.sql).toBe('false');
  });

  it('a "true" baseline shows every row; a restrictive role does not inherit it', async () => {
    const access = accessWith({ p2: [['role:analyst', '*', 'dataset:*', 'true'], ['role:regional-analyst', '*', 'dataset:*', 'region == principal.region']] }, [], {
      admin: ['analyst'],
      'regional-analyst': ['viewer'],
    });
    expect((await accessViewFor(access, principal(['admin']), dataset)).rowFilter).toBeUndefined();
    const regional = await accessViewFor(access, principal(['regional-analyst'], { region: 'eu' }), dataset);
    expect(regional.rowFilter).toEqual({ sql: '((`region` = {rr0:String}))', params: { rr0: 'eu' } });
  });

  it('rules of several roles and grants are OR-ed; rules of other tenants, datasets and subjects are not', async () => {
    const access = accessWith(
      {
        p2: [
          ['role:a', '*', 'dataset:*', "region == 'eu'"],
          ['role:a', 'globex', 'dataset:*', "region == 'globex'"],
          ['role:a', '*', 'dataset:ds_Other00001', "region == 'other'"],
          ['subject:someone-else', '*', 'dataset:*', "region == 'them'"],
        ],
      },
      [{ principal: { type: 'subject', id: 'sam' }, rowRule: 'amount < 10', fieldRules: {}, expiresAt: null, actions: ['query'] }],
    );
    const view = await accessViewFor(access, principal(['a']), dataset);
    expect(view.rowFilter?.sql).toBe('((`region` = {rr0:String}) OR (`amount` < {rr1:Float64}))');
    expect(view.rowFilter?.params).toEqual({ rr0: 'eu', rr1: 10 });
  });

  it('a lapsed grant adds nothing, and a rule naming a missing column allows nothing', async () => {
    const access = accessWith({ p2: [['role:a', '*', 'dataset:*', 'no_such == 1']] }, [
      { principal: { type: 'subject', id: 'sam' }, rowRule: null, fieldRules: {}, expiresAt: new Date(Date.now() - 1000), actions: ['query'] },
    ]);
    expect((await accessViewFor(access, principal(['a']), dataset)).rowFilter?.sql).toBe('false');
  });
});

describe('field rules: the most restrictive wins', () => {
  const names = ['region', 'email', 'card', 'amount', '_ingested_at', '_request_id'];
  it('deny beats allow, allow lists narrow, internal columns never show', () => {
    const view = combineFieldRules(names, [{ allow: ['region', 'email', 'card'] }, { allow: ['region', 'card', 'amount'], deny: ['card'] }]);
    expect([...view.keys()]).toEqual(['region']);
    expect([...combineFieldRules(names, []).keys()]).toEqual(['region', 'email', 'card', 'amount']);
  });

  it('of several masks on a column, the one that reveals least', () => {
    const view = combineFieldRules(names, [
      { masks: [{ column: 'card', mask: 'last_n', n: 4 }, { column: 'amount', mask: 'round', precision: 2 }, { column: 'email', mask: 'hash' }] },
      { masks: [{ column: 'card', mask: 'last_n', n: 2 }, { column: 'amount', mask: 'round', precision: 0 }, { column: 'email', mask: 'null' }] },
    ]);
    expect(view.get('card')).toEqual({ mask: 'last_n', n: 2 });
    expect(view.get('amount')).toEqual({ mask: 'round', precision: 0 });
    expect(view.get('email')).toEqual({ mask: 'null' });
    expect(view.get('region')).toBeNull();
  });
});
