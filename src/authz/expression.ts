/**
 * The small expression language of ABAC conditions (policy files) and row rules (grants):
 * operands are dotted names, literals ('text', "text", numbers, true, false, null) and lists
 * [a, b]; operators are == != < <= > >= in && || ! and parentheses. Nothing else parses: no
 * calls, no computed members, so a rule can be evaluated or compiled without running code.
 */
export type Expr =
  | { kind: 'literal'; value: string | number | boolean | null }
  | { kind: 'list'; items: Expr[] }
  | { kind: 'name'; path: string[]; at: number }
  | { kind: 'not'; operand: Expr }
  | { kind: 'binary'; op: BinaryOp; left: Expr; right: Expr };

export type BinaryOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | '&&' | '||';

export class ExpressionError extends Error {
  constructor(
    message: string,
    /** 1-based column in the expression. */
    readonly column: number,
  ) {
    super(`${message} (at column ${column})`);
    this.name = 'ExpressionError';
  }
}

interface Token {
  type: 'op' | 'punct' | 'name' | 'string' | 'number' | 'end';
  text: string;
  at: number;
}

const OPERATORS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!'];
const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /-?\d+(\.\d+)?/y;
const FORBIDDEN_NAMES = new Set(['constructor', 'prototype', '__proto__']);

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (op) {
      tokens.push({ type: 'op', text: op, at: i });
      i += op.length;
      continue;
    }
    if ('()[],.'.includes(c)) {
      tokens.push({ type: 'punct', text: c, at: i });
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1;
      let value = '';
      while (j < text.length && text[j] !== c) {
        if (text[j] === '\\' && j + 1 < text.length) j++;
        value += text[j];
        j++;
      }
      if (j >= text.length) throw new ExpressionError('unterminated string', i + 1);
      tokens.push({ type: 'string', text: value, at: i });
      i = j + 1;
      continue;
    }
    NUMBER.lastIndex = i;
    const num = NUMBER.exec(text);
    if (num && (c !== '-' || /\d/.test(text[i + 1] ?? ''))) {
      tokens.push({ type: 'number', text: num[0], at: i });
      i += num[0].length;
      continue;
    }
    NAME.lastIndex = i;
    const name = NAME.exec(text);
    if (name) {
      tokens.push({ type: name[0] === 'in' ? 'op' : 'name', text: name[0], at: i });
      i += name[0].length;
      continue;
    }
    throw new ExpressionError(`unexpected character ${JSON.stringify(c)}`, i + 1);
  }
  tokens.push({ type: 'end', text: '', at: text.length });
  return tokens;
}

export function parseExpression(text: string): Expr {
  const tokens = tokenize(text);
  let pos = 0;
  const peek = () => tokens[pos]!;
  const next = () => tokens[pos++]!;
  const fail = (t: Token, what: string): never => {
    throw new ExpressionError(t.type === 'end' ? `${what}, found the end` : `${what}, found ${JSON.stringify(t.text)}`, t.at + 1);
  };
  const expect = (text: string) => {
    const t = next();
    if (t.text !== text || t.type === 'string') fail(t, `expected ${JSON.stringify(text)}`);
  };

  const primary = (): Expr => {
    const t = next();
    if (t.type === 'punct' && t.text === '(') {
      const e = or();
      expect(')');
      return e;
    }
    if (t.type === 'punct' && t.text === '[') {
      const items: Expr[] = [];
      if (!(peek().type === 'punct' && peek().text === ']')) {
        do items.push(primary());
        while (peek().text === ',' && peek().type === 'punct' && next());
      }
      expect(']');
      return { kind: 'list', items };
    }
    if (t.type === 'string') return { kind: 'literal', value: t.text };
    if (t.type === 'number') return { kind: 'literal', value: Number(t.text) };
    if (t.type === 'name') {
      if (t.text === 'true' || t.text === 'false') return { kind: 'literal', value: t.text === 'true' };
      if (t.text === 'null') return { kind: 'literal', value: null };
      const path = [t.text];
      while (peek().type === 'punct' && peek().text === '.') {
        next();
        const part = next();
        if (part.type !== 'name') fail(part, 'expected a name after "."');
        path.push(part.text);
      }
      const bad = path.find((p) => FORBIDDEN_NAMES.has(p));
      if (bad) throw new ExpressionError(`"${bad}" is not allowed in a name`, t.at + 1);
      return { kind: 'name', path, at: t.at + 1 };
    }
    return fail(t, 'expected a value, a name or "("');
  };
  const comparison = (): Expr => {
    const left = primary();
    const t = peek();
    if (t.type === 'op' && ['==', '!=', '<', '<=', '>', '>=', 'in'].includes(t.text)) {
      next();
      return { kind: 'binary', op: t.text as BinaryOp, left, right: primary() };
    }
    return left;
  };
  const not = (): Expr => {
    if (peek().type === 'op' && peek().text === '!') {
      next();
      return { kind: 'not', operand: not() };
    }
    return comparison();
  };
  const and = (): Expr => {
    let left = not();
    while (peek().type === 'op' && peek().text === '&&') {
      next();
      left = { kind: 'binary', op: '&&', left, right: not() };
    }
    return left;
  };
  const or = (): Expr => {
    let left = and();
    while (peek().type === 'op' && peek().text === '||') {
      next();
      left = { kind: 'binary', op: '||', left, right: and() };
    }
    return left;
  };

  const expr = or();
  if (peek().type !== 'end') fail(peek(), 'expected an operator or the end');
  return expr;
}

/** Every dotted name in the expression, for checking what it may refer to. */
export function namesIn(e: Expr): Array<{ path: string[]; at: number }> {
  switch (e.kind) {
    case 'name':
      return [{ path: e.path, at: e.at }];
    case 'list':
      return e.items.flatMap(namesIn);
    case 'not':
      return namesIn(e.operand);
    case 'binary':
      return [...namesIn(e.left), ...namesIn(e.right)];
    default:
      return [];
  }
}
