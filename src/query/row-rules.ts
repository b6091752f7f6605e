import type { Expr } from '../authz/expression.js';
import type { Principal } from '../gateway/request-types.js';
import { clickhouseType, quoteIdent } from './columns.js';
import type { QueryableColumn } from './types.js';
import { coerceValue, type Scalar } from './values.js';

/** A row rule that can't be compiled against this dataset: a policy bug the security admin must fix. */
export class RowRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RowRuleError';
  }
}

export interface RowRules {
  /** Rows any of these match are visible… */
  allow: Expr[];
  /** …unless one of these matches. */
  deny: Expr[];
}

type Operand = { kind: 'column'; col: QueryableColumn } | { kind: 'value'; value: Scalar | null | Scalar[] } | { kind: 'missing' };

const sqlOps: Record<string, string> = { '==': '=', '!=': '!=', '<': '<', '<=': '<=', '>': '>', '>=': '>=' };
const mirrored: Record<string, string> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=' };

/**
 * Compiles row rules into one parameterised predicate: allow rules OR'ed, deny rules AND NOT'ed,
 * and no allow rule means no rows. Bare names are the dataset's columns (all of them: a rule may
 * use a column the caller can't see); `principal.tenant`, `principal.subject`, `principal.roles`
 * and `principal.<attribute>` are the caller's. Values become typed parameters; policy text never
 * becomes SQL. A rule naming an attribute the principal lacks matches nothing.
 */
export function compileRowRules(rules: RowRules, columns: QueryableColumn[], principal: Principal): { sql: string; params: Record<string, unknown> } {
  const byName = new Map(columns.map((c) => [c.name, c]));
  const params: Record<string, unknown> = {};
  let n = 0;
  const param = (value: unknown, type: string) => {
    const name = `rr${n++}`;
    params[name] = value;
    return `{${name}:${type}}`;
  };

  const operand = (e: Expr): Operand => {
    if (e.kind === 'literal') return { kind: 'value', value: e.value };
    if (e.kind === 'list') {
      const items = e.items.map(operand);
      if (items.some((i) => i.kind !== 'value' || Array.isArray(i.value) || i.value === null)) throw new RowRuleError('a list may hold only literal values');
      return { kind: 'value', value: items.map((i) => (i as { value: Scalar }).value) };
    }
    if (e.kind === 'name') {
      if (e.path[0] === 'principal') return principalValue(principal, e.path.slice(1));
      const col = e.path.length === 1 ? byName.get(e.path[0]!) : undefined;
      if (!col) throw new RowRuleError(`the rule names ${e.path.join('.')}, which is neither a column of this dataset nor principal.<attribute>`);
      return { kind: 'column', col };
    }
    throw new RowRuleError('a comparison needs a column or a value on each side');
  };

  const valueSql = (col: QueryableColumn, value: Scalar): string => {
    const coerced = coerceValue(col.type, value);
    if ('error' in coerced) throw new RowRuleError(`the rule compares ${col.name} with ${JSON.stringify(value)}, but ${col.name} ${coerced.error}`);
    return param(coerced.value, clickhouseType(col.type));
  };

  const compile = (e: Expr): string => {
    if (e.kind === 'not') return `NOT (${compile(e.operand)})`;
    if (e.kind !== 'binary') throw new RowRuleError('a rule must be a comparison, or comparisons joined with &&, || and !');
    if (e.op === '&&' || e.op === '||') return `(${compile(e.left)} ${e.op === '&&' ? 'AND' : 'OR'} ${compile(e.right)})`;
    const left = operand(e.left);
    const right = operand(e.right);
    if (left.kind === 'missing' || right.kind === 'missing') return 'false';
    if (e.op === 'in') {
      if (left.kind !== 'column' || right.kind !== 'value' || !Array.isArray(right.value)) throw new RowRuleError('"in" needs a column on the left and a list on the right');
      if (right.value.length === 0) return 'false';
      const col = left.col;
      return `${quoteIdent(col.name)} IN (${right.value.map((v) => valueSql(col, v)).join(', ')})`;
    }
    // Put the column on the left: `1000 > amount` is `amount < 1000`.
    const [col, other, op] =
      left.kind === 'column' ? [left.col, right, e.op] : right.kind === 'column' ? [right.col, left, mirrored[e.op] ?? e.op] : [undefined, right, e.op];
    if (!col) throw new RowRuleError('a comparison needs a column on one side');
    if (other.kind === 'column') {
      if (other.col.type !== col.type) throw new RowRuleError(`the rule compares ${col.name} (${col.type}) with ${other.col.name} (${other.col.type})`);
      return `${quoteIdent(col.name)} ${sqlOps[op]} ${quoteIdent(other.col.name)}`;
    }
    if (other.value === null) {
      if (op === '==') return `isNull(${quoteIdent(col.name)})`;
      if (op === '!=') return `isNotNull(${quoteIdent(col.name)})`;
      throw new RowRuleError('null can only be compared with == or !=');
    }
    if (Array.isArray(other.value)) throw new RowRuleError('a list can only follow "in"');
    return `${quoteIdent(col.name)} ${sqlOps[op]} ${valueSql(col, other.value)}`;
  };

  const allow = rules.allow.map((r) => `(${compile(r)})`);
  const deny = rules.deny.map((r) => `NOT (${compile(r)})`);
  const sql = [allow.length ? `(${allow.join(' OR ')})` : 'false', ...deny].join(' AND ');
  return { sql, params };
}

function principalValue(principal: Principal, path: string[]): Operand {
  if (path.length !== 1) return { kind: 'missing' };
  const key = path[0]!;
  const value =
    key === 'tenant' ? principal.tenant : key === 'subject' ? principal.subject : key === 'roles' ? principal.roles : key === 'scopes' ? principal.scopes : principal.attributes[key];
  if (value === undefined) return { kind: 'missing' };
  return { kind: 'value', value };
}
