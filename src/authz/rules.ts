import { z } from 'zod';
import { ExpressionError, namesIn, parseExpression } from './expression.js';

/**
 * Validation of the three kinds of rule text in the policy store: ABAC conditions (`p` lines),
 * row rules (`p2`, and grants' `row_rule`) and field rules (`p3`, and grants' `field_rules`).
 * Each returns an error message, or undefined when the rule is acceptable.
 */

// What a condition may read: the request's parts as the authz plugin builds them.
const CONDITION_ROOTS: Record<string, (path: string[]) => boolean> = {
  r: (p) =>
    (p[1] === 'sub' && (['id', 'subject', 'roles', 'scopes', 'mfa', 'authMethod'].includes(p[2] ?? '') ? p.length === 3 : p[2] === 'attrs' && p.length === 4)) ||
    (p[1] === 'obj' && (['key', 'type', 'id'].includes(p[2] ?? '') ? p.length === 3 : p[2] === 'attrs' && p.length === 4)) ||
    (p[1] === 'env' && p[2] === 'now' && p.length === 3) ||
    ((p[1] === 'dom' || p[1] === 'act') && p.length === 2),
};

export function conditionError(text: string): string | undefined {
  if (text.trim() === 'true') return undefined;
  try {
    for (const { path, at } of namesIn(parseExpression(text))) {
      if (!CONDITION_ROOTS[path[0]!]?.(path)) {
        return `unknown name ${path.join('.')} at column ${at}: use r.sub.{subject,roles,scopes,mfa,authMethod}, r.sub.attrs.<name>, r.obj.{key,type,id}, r.obj.attrs.<name>, r.env.now, r.dom or r.act`;
      }
    }
    return undefined;
  } catch (err) {
    return err instanceof ExpressionError ? `condition does not parse: ${err.message}` : String(err);
  }
}

const COLUMN = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** A row rule names columns (plain names) and the principal's claims (`principal.<claim>`). */
export function rowRuleError(text: string): string | undefined {
  try {
    for (const { path, at } of namesIn(parseExpression(text))) {
      if (path[0] === 'principal' ? path.length !== 2 : path.length !== 1 || !COLUMN.test(path[0]!)) {
        return `unknown name ${path.join('.')} at column ${at}: use a column name or principal.<claim>`;
      }
    }
    return undefined;
  } catch (err) {
    return err instanceof ExpressionError ? `row rule does not parse: ${err.message}` : String(err);
  }
}

const column = z.string().regex(COLUMN, 'expected a column name');
const mask = z.discriminatedUnion('mask', [
  z.strictObject({ column, mask: z.literal('null') }),
  z.strictObject({ column, mask: z.literal('hash') }),
  z.strictObject({ column, mask: z.literal('last_n'), n: z.number().int().min(1).max(64) }),
  z.strictObject({ column, mask: z.literal('round'), precision: z.number().int().min(-9).max(9) }),
  z.strictObject({ column, mask: z.literal('truncate_time'), unit: z.enum(['minute', 'hour', 'day', 'week', 'month', 'year']) }),
]);
export const FieldRules = z.strictObject({
  allow: z.array(column).max(1000).optional(),
  deny: z.array(column).max(1000).optional(),
  masks: z.array(mask).max(1000).optional(),
});
export type FieldRules = z.infer<typeof FieldRules>;

export function fieldRulesError(value: unknown): string | undefined {
  const parsed = FieldRules.safeParse(value);
  if (!parsed.success) return `field rules are invalid: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(rules)'}: ${i.message}`).join('; ')}`;
  const masked = new Set<string>();
  for (const m of parsed.data.masks ?? []) {
    if (masked.has(m.column)) return `field rules mask column ${m.column} twice`;
    masked.add(m.column);
  }
  return undefined;
}
