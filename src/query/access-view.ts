import { createHash } from 'node:crypto';
import type { AccessControl } from '../authz/index.js';
import { parseExpression, type Expr } from '../authz/expression.js';
import { grantRules, type Grant } from '../authz/grants.js';
import { FieldRules } from '../authz/rules.js';
import type { DatasetRecord } from '../datasets/repository.js';
import type { Principal } from '../gateway/request-types.js';
import { compileRowRules, RowRuleError } from './row-rules.js';
import type { AccessView, Mask, QueryableColumn } from './types.js';

/**
 * Row rules are deny-by-default: a caller sees the rows that at least one applicable rule allows
 * (allow-OR; the model's p2 lines carry no effect, so there are no deny row rules), and no
 * applicable rule means no rows. Baselines such as "analysts see every row" are policy lines
 * (`p2, role:analyst, *, dataset:*, "true"`), reviewable like any other; a grant whose row_rule
 * is null shows all rows (the spec's meaning of null).
 *
 * Field rules combine so the caller sees the most restrictive: every deny applies, every allow
 * list narrows, and of several masks on one column the strongest wins.
 */
export interface AccessViewOptions {
  /** When grants' expiry is judged (default: now). */
  now?: Date;
  /** Told of a row rule that cannot apply to this dataset (it then allows nothing). */
  onRuleError?: (rule: string, err: RowRuleError) => void;
}

const INTERNAL_COLUMNS = new Set(['_ingested_at', '_request_id']);

/** What accessViewFor reads: decisions and policy lines, and the dataset's grants. */
export interface AccessSource {
  authorizer: Pick<AccessControl['authorizer'], 'rulesOfType' | 'holdsRole'>;
  grants: Pick<AccessControl['grants'], 'forResource'>;
}

/** Where a rule came from: a policy line or a dataset grant. */
export interface RuleSource {
  rule: string;
  from: string;
}

/** The view and how it was made, for security admins (`npm run weir -- policy explain-data`). */
export interface AccessExplanation {
  view: AccessView;
  /** The row rules that apply to this caller and dataset. */
  rowRules: RuleSource[];
  /** Of those, the ones that cannot apply to this dataset (they allow nothing), with why. */
  ruleErrors: { rule: string; error: string }[];
  /** The field rules that apply (JSON as in the policy files and grants). */
  fieldRules: RuleSource[];
}

export async function accessViewFor(access: AccessSource, principal: Principal, dataset: DatasetRecord, options: AccessViewOptions = {}): Promise<AccessView> {
  return (await explainAccess(access, principal, dataset, options)).view;
}

/** accessViewFor, with the rules that made the view: the same code path, so what it shows is what queries get. */
export async function explainAccess(access: AccessSource, principal: Principal, dataset: DatasetRecord, options: AccessViewOptions = {}): Promise<AccessExplanation> {
  const now = options.now ?? new Date();
  const applies = appliesTo(access, principal, dataset);
  const { grants } = await access.grants.forResource(principal.tenant, 'dataset', dataset.id);
  // Grant lines in the enforcer lag a reload behind; this dataset's grants are taken from the store instead.
  const fromGrants = new Set(grants.flatMap(grantRules).map((line) => JSON.stringify(line)));
  const fromPolicy = (ptype: 'p2' | 'p3') => access.authorizer.rulesOfType(ptype).filter((line) => !fromGrants.has(JSON.stringify([ptype, ...line])) && applies(line));
  const liveGrants = grants.filter((g) => (!g.expiresAt || g.expiresAt > now) && grantHolder(access, principal, g));
  const policySource = (ptype: string, line: string[]) => `policy: ${ptype}, ${line.slice(0, 3).join(', ')}`;
  const grantSource = (g: Grant) => `grant ${g.id} to ${g.principal.type} ${g.principal.id}`;

  const rowRules: RuleSource[] = [
    ...fromPolicy('p2').map((line) => ({ rule: line[3]!, from: policySource('p2', line) })),
    ...liveGrants.map((g) => ({ rule: g.rowRule ?? 'true', from: grantSource(g) })),
  ];
  const fieldRuleSources: RuleSource[] = [
    ...fromPolicy('p3').map((line) => ({ rule: line[3]!, from: policySource('p3', line) })),
    ...liveGrants.filter((g) => Object.keys(g.fieldRules).length).map((g) => ({ rule: JSON.stringify(g.fieldRules), from: grantSource(g) })),
  ];
  const fieldRules = [...fromPolicy('p3').map((line) => parseFieldRules(line[3]!)), ...liveGrants.map((g) => g.fieldRules)];

  const columns = dataset.columns.map(queryableColumn);
  const ruleErrors: AccessExplanation['ruleErrors'] = [];
  const allow = compilable(rowRules.map((r) => r.rule), columns, principal, (rule, err) => {
    ruleErrors.push({ rule, error: err.message });
    options.onRuleError?.(rule, err);
  });
  const view: AccessView = {
    columns: combineFieldRules(columns.map((c) => c.name), fieldRules),
    // An allow rule of plain `true` shows every row: no predicate at all.
    rowFilter: allow === 'all' ? undefined : compileRowRules({ allow, deny: [] }, columns, principal),
    hashSalt: createHash('sha256').update(`weir-mask\u0000${principal.tenant}`).digest('hex'),
  };
  return { view, rowRules, ruleErrors, fieldRules: fieldRuleSources };
}

export function queryableColumn(c: DatasetRecord['columns'][number]): QueryableColumn {
  return { name: c.name, type: c.type, nullable: c.nullable, element: c.items ?? c.values };
}

/** Whether a p2/p3 line `[sub, dom, obj, rule]` is about this principal and dataset. */
function appliesTo(access: AccessSource, principal: Principal, dataset: DatasetRecord) {
  return ([sub, dom, obj]: string[]): boolean =>
    (dom === '*' || dom === principal.tenant) && (obj === 'dataset:*' || obj === `dataset:${dataset.id}`) && subjectMatches(access, principal, sub ?? '');
}

function subjectMatches(access: AccessSource, principal: Principal, sub: string): boolean {
  if (sub === `subject:${principal.subject}`) return true;
  return sub.startsWith('role:') && access.authorizer.holdsRole(principal, sub.slice('role:'.length));
}

const grantHolder = (access: AccessSource, principal: Principal, g: Grant) =>
  g.principal.type === 'subject' ? g.principal.id === principal.subject : access.authorizer.holdsRole(principal, g.principal.id);

/** A rule that can't apply to this dataset (say it names a column it lacks) allows nothing: fail closed. */
function compilable(texts: string[], columns: QueryableColumn[], principal: Principal, onError?: AccessViewOptions['onRuleError']): Expr[] | 'all' {
  const out: Expr[] = [];
  for (const text of new Set(texts)) {
    try {
      const expr = parseExpression(text);
      if (expr.kind === 'literal' && typeof expr.value === 'boolean') {
        if (expr.value) return 'all';
        continue;
      }
      compileRowRules({ allow: [expr], deny: [] }, columns, principal);
      out.push(expr);
    } catch (err) {
      onError?.(text, err instanceof RowRuleError ? err : new RowRuleError(String((err as Error).message ?? err)));
    }
  }
  return out;
}

/** Field rules in the policy files are checked at boot; one that still fails to parse hides everything. */
function parseFieldRules(text: string): FieldRules {
  try {
    return FieldRules.parse(JSON.parse(text));
  } catch {
    return { allow: [] };
  }
}

const maskStrength: Record<Mask['mask'], number> = { null: 4, hash: 3, last_n: 2, round: 1, truncate_time: 1 };
const unitOrder = ['minute', 'hour', 'day', 'week', 'month', 'year'];

/** The stronger of two masks on one column: the one that reveals less. */
function stronger(a: Mask, b: Mask): Mask {
  if (maskStrength[a.mask] !== maskStrength[b.mask]) return maskStrength[a.mask] > maskStrength[b.mask] ? a : b;
  if (a.mask === 'last_n' && b.mask === 'last_n') return a.n <= b.n ? a : b;
  if (a.mask === 'round' && b.mask === 'round') return a.precision <= b.precision ? a : b;
  if (a.mask === 'truncate_time' && b.mask === 'truncate_time') return unitOrder.indexOf(a.unit) >= unitOrder.indexOf(b.unit) ? a : b;
  // round and truncate_time never fit the same column type; whichever fits is applied.
  return a;
}

export function combineFieldRules(names: string[], rules: FieldRules[]): Map<string, Mask | null> {
  const out = new Map<string, Mask | null>();
  for (const name of names) {
    if (INTERNAL_COLUMNS.has(name)) continue;
    if (rules.some((r) => r.deny?.includes(name) || (r.allow && !r.allow.includes(name)))) continue;
    let mask: Mask | null = null;
    for (const r of rules) {
      const m = r.masks?.find((x) => x.column === name);
      if (m) {
        const { column: _column, ...only } = m;
        mask = mask ? stronger(mask, only as Mask) : (only as Mask);
      }
    }
    out.set(name, mask);
  }
  return out;
}
