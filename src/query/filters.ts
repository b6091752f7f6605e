import type { VisibleColumn } from './columns.js';
import { clickhouseType } from './columns.js';
import type { QueryProblems } from './errors.js';
import type { ParamBag } from './params.js';
import type { FilterExpression } from './types.js';
import { coerceValue, type Scalar } from './values.js';

const MAX_DEPTH = 8;
const MAX_CONDITIONS = 200;

const comparisons: Record<string, string> = { equals: '=', not_equals: '!=', gt: '>', gte: '>=', lt: '<', lte: '<=' };
const ordered = new Set(['int', 'float', 'timestamp', 'date', 'string']);

interface Context {
  columns: Map<string, VisibleColumn>;
  params: ParamBag;
  problems: QueryProblems;
  conditions: number;
}

/** Compiles a filter tree to a parameterised SQL predicate; problems are collected with pointers. */
export function compileFilter(filter: FilterExpression, columns: Map<string, VisibleColumn>, params: ParamBag, problems: QueryProblems, at = '/filters'): string {
  const ctx: Context = { columns, params, problems, conditions: 0 };
  const sql = walk(filter as Node, ctx, at, 1);
  if (ctx.conditions > MAX_CONDITIONS) problems.add(at, `has ${ctx.conditions} conditions; at most ${MAX_CONDITIONS} are allowed`);
  return sql;
}

type Node = { and?: Node[]; or?: Node[]; not?: Node; column?: string; op?: string; value?: Scalar; values?: Scalar[] };

function walk(node: Node, ctx: Context, at: string, depth: number): string {
  if (depth > MAX_DEPTH) {
    ctx.problems.add(at, `nests deeper than ${MAX_DEPTH} levels`);
    return 'false';
  }
  if (node.and || node.or) {
    const key = node.and ? 'and' : 'or';
    const parts = (node[key] ?? []).map((child, i) => walk(child, ctx, `${at}/${key}/${i}`, depth + 1));
    if (!parts.length) return key === 'and' ? 'true' : 'false';
    return `(${parts.join(key === 'and' ? ' AND ' : ' OR ')})`;
  }
  if (node.not) return `NOT (${walk(node.not, ctx, `${at}/not`, depth + 1)})`;
  ctx.conditions++;
  return condition(node, ctx, at);
}

function condition(node: Node, ctx: Context, at: string): string {
  const col = node.column === undefined ? undefined : ctx.columns.get(node.column);
  if (!col) {
    ctx.problems.add(`${at}/column`, `names an unknown column ${JSON.stringify(node.column)}`);
    return 'false';
  }
  const op = node.op ?? '';
  const param = (value: Scalar, pointer: string, type = col.type): string | undefined => {
    const coerced = coerceValue(type, value);
    if ('error' in coerced) {
      ctx.problems.add(pointer, `${col.name} ${coerced.error}`);
      return undefined;
    }
    return ctx.params.add(coerced.value, clickhouseType(type));
  };
  switch (op) {
    case 'is_null':
      return `isNull(${col.sql})`;
    case 'is_not_null':
      return `isNotNull(${col.sql})`;
    case 'equals':
    case 'not_equals':
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      if (op !== 'equals' && op !== 'not_equals' && !ordered.has(col.type)) {
        ctx.problems.add(`${at}/op`, `${op} needs an ordered column; ${col.name} is ${col.type}`);
        return 'false';
      }
      const p = param(node.value as Scalar, `${at}/value`);
      return p ? `${col.sql} ${comparisons[op]} ${p}` : 'false';
    }
    case 'in':
    case 'not_in': {
      const values = (node.values ?? []).map((v, i) => param(v, `${at}/values/${i}`));
      if (values.some((v) => v === undefined)) return 'false';
      return `${col.sql} ${op === 'in' ? 'IN' : 'NOT IN'} (${values.join(', ')})`;
    }
    case 'between': {
      if (!ordered.has(col.type)) {
        ctx.problems.add(`${at}/op`, `between needs an ordered column; ${col.name} is ${col.type}`);
        return 'false';
      }
      const [lo, hi] = (node.values ?? []).map((v, i) => param(v, `${at}/values/${i}`));
      return lo && hi ? `(${col.sql} BETWEEN ${lo} AND ${hi})` : 'false';
    }
    case 'contains':
    case 'starts_with': {
      if (typeof node.value !== 'string') {
        ctx.problems.add(`${at}/value`, `${op} expects a string`);
        return 'false';
      }
      if (col.type === 'array' && op === 'contains') {
        const p = param(node.value, `${at}/value`, col.element ?? 'string');
        return p ? `has(${col.sql}, ${p})` : 'false';
      }
      if (col.type !== 'string' && col.type !== 'json') {
        ctx.problems.add(`${at}/op`, `${op} needs a string column; ${col.name} is ${col.type}`);
        return 'false';
      }
      const p = ctx.params.add(node.value, 'String');
      return op === 'contains' ? `position(${col.sql}, ${p}) > 0` : `startsWith(${col.sql}, ${p})`;
    }
    default:
      ctx.problems.add(`${at}/op`, `is not a known operator: ${JSON.stringify(op)}`);
      return 'false';
  }
}
