import { describe, expect, it } from 'vitest';
import { parseExpression } from '../authz/expression.js';
import type { Principal } from '../gateway/request-types.js';
import { compileRowRules, RowRuleError } from './row-rules.js';
import type { QueryableColumn } from './types.js';

const columns: QueryableColumn[] = [
  { name: 'region', type: 'string', nullable: false },
  { name: 'amount', type: 'float', nullable: false },
  { name: 'owner', type: 'string', nullable: true },
  { name: 'at', type: 'timestamp', nullable: false },
];
const alice: Principal = { subject: 'alice', tenant: 't1', roles: ['analyst'], scopes: [], attributes: { region: 'eu', regions: ['eu', 'us'] }, authMethod: 'jwt', mfa: false };
const rules = (allow: string[], deny: string[] = []) => ({ allow: allow.map(parseExpression), deny: deny.map(parseExpression) });

describe('compileRowRules', () => {
  it('turns principal attributes and literals into typed parameters, never SQL text', () => {
    const out = compileRowRules(rules(["region == principal.region && amount < 1000", "owner == principal.subject"]), columns, alice);
    expect(out.sql).toBe('(((`region` = {rr0:String} AND `amount` < {rr1:Float64})) OR (`owner` = {rr2:String}))');
    expect(out.params).toEqual({ rr0: 'eu', rr1: 1000, rr2: 'alice' });
  });

  it('ORs allow rules, ANDs NOT of deny rules, and gives no rows without an allow rule', () => {
    const out = compileRowRules(rules(['amount >= 0'], ["region == 'blocked'"]), columns, alice);
    expect(out.sql).toBe('((`amount` >= {rr0:Float64})) AND NOT (`region` = {rr1:String})');
    expect(compileRowRules(rules([], ['amount > 5']), columns, alice).sql).toBe('false AND NOT (`amount` > {rr0:Float64})');
  });

  it('puts the column on the left, handles in-lists, null and principal lists', () => {
    expect(compileRowRules(rules(['1000 > amount']), columns, alice).sql).toBe('((`amount` < {rr0:Float64}))');
    expect(compileRowRules(rules(["region in ['eu', 'uk']"]), columns, alice).params).toEqual({ rr0: 'eu', rr1: 'uk' });
    expect(compileRowRules(rules(['region in principal.regions']), columns, alice).sql).toBe('((`region` IN ({rr0:String}, {rr1:String})))');
    expect(compileRowRules(rules(['owner != null']), columns, alice).sql).toBe('((isNotNull(`owner`)))');
  });

  it('matches nothing when the principal lacks the attribute', () => {
    expect(compileRowRules(rules(['region == principal.department']), columns, alice).sql).toBe('((false))');
  });

  it('refuses rules that do not fit the dataset, as policy errors', () => {
    expect(() => compileRowRules(rules(['nosuch == 1']), columns, alice)).toThrow(RowRuleError);
    expect(() => compileRowRules(rules(["amount == 'lots'"]), columns, alice)).toThrow(/amount expects a number/);
    expect(() => compileRowRules(rules(['region == amount']), columns, alice)).toThrow(/string.*float/);
    expect(() => compileRowRules(rules(["'a' == 'b'"]), columns, alice)).toThrow(/column on one side/);
  });

  it('keeps hostile policy strings as parameter values', () => {
    const out = compileRowRules(rules(["region == \"x') OR 1=1 --\""]), columns, alice);
    expect(out.sql).toBe('((`region` = {rr0:String}))');
    expect(out.params.rr0).toBe("x') OR 1=1 --");
  });
});
