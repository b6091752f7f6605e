import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { csvLines, displayPath } from './csv.js';
import { conditionError, fieldRulesError, rowRuleError } from './rules.js';
import { ACTIONS, RESOURCE_TYPES } from './vocabulary.js';

/** One policy line, as Casbin takes it: the policy type, then its fields. */
export type PolicyRule = [ptype: string, ...fields: string[]];

export interface PolicySet {
  /** model.conf's text. */
  model: string;
  rules: PolicyRule[];
  files: string[];
}

export class PolicyFileError extends Error {
  constructor(readonly problems: string[]) {
    super(`Policy files are invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'PolicyFileError';
  }
}

/** policies/ beside the code: the repository's when running from src, the image's from dist. */
export function defaultPolicyDir(): string {
  const candidates = [new URL('../../policies/', import.meta.url), new URL('../../../policies/', import.meta.url)].map((u) => fileURLToPath(u));
  return candidates.find((dir) => existsSync(path.join(dir, 'model.conf'))) ?? candidates[0]!;
}

const SUBJECT = /^(role|subject):\S+$/;
const ROLE = /^role:[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const DOMAIN = /^(\*|[A-Za-z0-9][A-Za-z0-9_.-]{0,62})$/;

/**
 * Reads model.conf and every *.csv in the folder (sorted; expectation tables live in a subfolder and
 * are not policy). Every problem is reported with its file and line, and any problem fails the load.
 */
export function loadPolicyFiles(dir: string): PolicySet {
  const modelFile = path.join(dir, 'model.conf');
  if (!existsSync(modelFile)) throw new PolicyFileError([`${modelFile}: not found (set POLICY_DIR to the folder holding model.conf)`]);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.csv'))
    .sort()
    .map((f) => path.join(dir, f));
  const rules: PolicyRule[] = [];
  const problems: string[] = [];
  for (const file of files) {
    for (const entry of csvLines(readFileSync(file, 'utf8'))) {
      const where = `${displayPath(file)}:${entry.line}`;
      if ('error' in entry) {
        problems.push(`${where}: ${entry.error}`);
        continue;
      }
      const checked = checkRule(entry.fields);
      if (typeof checked === 'string') problems.push(`${where}: ${checked}`);
      else rules.push(checked);
    }
  }
  if (problems.length) throw new PolicyFileError(problems);
  return { model: readFileSync(modelFile, 'utf8'), rules, files };
}

/** A policy line checked and completed with defaults (condition `true`, effect `allow`), or what is wrong with it. */
export function checkRule(fields: string[]): PolicyRule | string {
  const [ptype, ...rest] = fields;
  switch (ptype) {
    case 'p': {
      if (rest.length < 4 || rest.length > 6) return `a "p" line has 4 to 6 fields (sub, dom, obj, act[, cond[, eft]]), found ${rest.length}`;
      const [sub, dom, obj, act, cond = 'true', eft = 'allow'] = rest as [string, string, string, string, string?, string?];
      const problem =
        subjectError(sub) ?? domainError(dom) ?? objectError(obj) ?? actionError(act) ?? conditionError(cond) ?? (['allow', 'deny'].includes(eft) ? undefined : `effect must be allow or deny, found ${JSON.stringify(eft)}`);
      return problem ?? ['p', sub, dom, obj, act, cond || 'true', eft];
    }
    case 'g': {
      if (rest.length !== 3) return `a "g" line has 3 fields (role, inherited role, domain), found ${rest.length}`;
      const [member, role, dom] = rest as [string, string, string];
      if (!ROLE.test(member) || !ROLE.test(role)) return `a "g" line links roles: role:<name>, role:<name> (found ${member}, ${role})`;
      return domainError(dom) ?? ['g', member, role, dom];
    }
    case 'p2': {
      if (rest.length !== 4) return `a "p2" (row rule) line has 4 fields (sub, dom, obj, rule), found ${rest.length}`;
      const [sub, dom, obj, rule] = rest as [string, string, string, string];
      return subjectError(sub) ?? domainError(dom) ?? objectError(obj) ?? rowRuleError(rule) ?? ['p2', sub, dom, obj, rule];
    }
    case 'p3': {
      if (rest.length !== 4) return `a "p3" (field rules) line has 4 fields (sub, dom, obj, rules as JSON), found ${rest.length}`;
      const [sub, dom, obj, json] = rest as [string, string, string, string];
      let value: unknown;
      try {
        value = JSON.parse(json);
      } catch {
        return 'field rules must be a JSON object (quote the field and double its quotes)';
      }
      return subjectError(sub) ?? domainError(dom) ?? objectError(obj) ?? fieldRulesError(value) ?? ['p3', sub, dom, obj, JSON.stringify(value)];
    }
    default:
      return `unknown policy type ${JSON.stringify(ptype)}: use p (permission), g (role inheritance), p2 (row rule) or p3 (field rules)`;
  }
}

function subjectError(sub: string): string | undefined {
  return SUBJECT.test(sub) ? undefined : `subject must be role:<name> or subject:<id>, found ${JSON.stringify(sub)}`;
}

function domainError(dom: string): string | undefined {
  return DOMAIN.test(dom) ? undefined : `domain must be a tenant id or *, found ${JSON.stringify(dom)}`;
}

function objectError(obj: string): string | undefined {
  if (obj === '*') return undefined;
  const [type = '', id] = obj.split(/:(.*)/s);
  if (!RESOURCE_TYPES.has(type)) return `unknown resource type ${JSON.stringify(type)} (the spec's are ${[...RESOURCE_TYPES].join(', ')})`;
  return id ? undefined : `object must be <type>:<id> or <type>:*, found ${JSON.stringify(obj)}`;
}

function actionError(act: string): string | undefined {
  return act === '*' || ACTIONS.has(act) ? undefined : `unknown action ${JSON.stringify(act)} (known: ${[...ACTIONS].join(', ')})`;
}
