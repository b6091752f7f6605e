import { ProblemError } from '../problem.js';

export type MatchType = 'equals' | 'starts_with' | 'regex';
export interface FieldMatch { match_type: MatchType; value: string }

export type GoalDefinition =
  | { type: 'destination'; match_type: MatchType; value: string }
  | { type: 'event'; category?: FieldMatch; action?: FieldMatch; label?: FieldMatch }
  | { type: 'duration'; min_seconds: number }
  | { type: 'pages_per_session'; min_pages: number };

export interface Goal {
  id: string;
  websiteId: string;
  name: string;
  definition: GoalDefinition;
  valueNumeric: number | null;
  createdAt: Date;
}

/** What a goal is checked against: the hit just received and its session so far. */
export interface GoalContext {
  hitType: string;
  page: string;
  eventCategory: string;
  eventAction: string;
  eventLabel: string;
  sessionSeconds: number;
  sessionPageviews: number;
}

export type GoalMatcher = (ctx: GoalContext) => boolean;

const MAX_REGEX_LENGTH = 500;
const MAX_UNBOUNDED_QUANTIFIERS = 3;

/**
 * Goal regexes run on every hit, in a backtracking engine, so only patterns that cannot blow up
 * are accepted: RE2 syntax (no backreferences or lookaround, as the spec says), no quantified
 * group that itself holds a quantifier or an alternation (the `(a+)+` family), and a few
 * unbounded quantifiers at most (each one multiplies the work on a long path).
 * Returns why a pattern is refused, or undefined.
 */
export function unsafeRegexReason(pattern: string): string | undefined {
  if (pattern.length > MAX_REGEX_LENGTH) return `is longer than ${MAX_REGEX_LENGTH} characters`;
  try {
    new RegExp(pattern);
  } catch (err) {
    return `is not a valid regular expression (${(err as Error).message})`;
  }
  if (/\\[1-9]|\\k</.test(pattern)) return 'uses a backreference, which RE2 syntax does not have';
  if (/\(\?<?[=!]/.test(pattern)) return 'uses lookaround, which RE2 syntax does not have';
  // Walk groups: a group whose body has a quantifier or `|` and is followed by a quantifier can backtrack exponentially.
  const stack: { hasRisk: boolean }[] = [];
  let unbounded = 0;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '[') {
      // Skip a character class: quantifier characters inside it are literals.
      i++;
      if (pattern[i] === '^') i++;
      if (pattern[i] === ']') i++;
      while (i < pattern.length && pattern[i] !== ']') i += pattern[i] === '\\' ? 2 : 1;
      continue;
    }
    if (c === '(') stack.push({ hasRisk: false });
    else if (c === '|') {
      if (stack.length) stack[stack.length - 1]!.hasRisk = true;
    } else if (c === ')') {
      const group = stack.pop();
      const next = pattern[i + 1];
      if (group?.hasRisk && (next === '*' || next === '+' || next === '{')) {
        return 'repeats a group that itself repeats or alternates (catastrophic backtracking)';
      }
      if (group?.hasRisk && stack.length) stack[stack.length - 1]!.hasRisk = true;
    } else if (c === '*' || c === '+' || (c === '{' && /^\{\d+,\}/.test(pattern.slice(i)))) {
      unbounded++;
      if (stack.length) stack[stack.length - 1]!.hasRisk = true;
    } else if (c === '{' && stack.length) {
      stack[stack.length - 1]!.hasRisk = true;
    }
  }
  if (unbounded > MAX_UNBOUNDED_QUANTIFIERS) return `has more than ${MAX_UNBOUNDED_QUANTIFIERS} unbounded quantifiers`;
  return undefined;
}

function compileField(match: FieldMatch): (value: string) => boolean {
  switch (match.match_type) {
    case 'equals':
      return (v) => v === match.value;
    case 'starts_with':
      return (v) => v.startsWith(match.value);
    case 'regex': {
      const re = new RegExp(match.value);
      return (v) => re.test(v);
    }
  }
}

/** Checks a goal definition beyond what the spec's schema can say; throws a 400 naming the field. */
export function checkGoalDefinition(definition: GoalDefinition): void {
  const fields: Array<[string, FieldMatch | undefined]> =
    definition.type === 'destination'
      ? [['', { match_type: definition.match_type, value: definition.value }]]
      : definition.type === 'event'
        ? [['/category', definition.category], ['/action', definition.action], ['/label', definition.label]]
        : [];
  if (definition.type === 'event' && !fields.some(([, m]) => m)) {
    throw new ProblemError(400, {
      type: 'validation',
      title: 'Request validation failed',
      detail: 'An event goal needs at least one of category, action and label.',
      errors: [{ in: 'body', pointer: '#', detail: 'category, action or label is required' }],
    });
  }
  for (const [pointer, match] of fields) {
    if (match?.match_type !== 'regex') continue;
    const reason = unsafeRegexReason(match.value);
    if (reason) {
      throw new ProblemError(400, {
        type: 'validation',
        title: 'Request validation failed',
        detail: `The goal's regular expression ${reason}.`,
        errors: [{ in: 'body', pointer: `${pointer}/value`, detail: reason }],
      });
    }
  }
}

export function compileGoal(definition: GoalDefinition): GoalMatcher {
  switch (definition.type) {
    case 'destination': {
      const test = compileField(definition);
      return (ctx) => (ctx.hitType === 'pageview' || ctx.hitType === 'screenview') && test(ctx.page);
    }
    case 'event': {
      const tests: Array<[keyof GoalContext, (v: string) => boolean]> = [];
      if (definition.category) tests.push(['eventCategory', compileField(definition.category)]);
      if (definition.action) tests.push(['eventAction', compileField(definition.action)]);
      if (definition.label) tests.push(['eventLabel', compileField(definition.label)]);
      return (ctx) => ctx.hitType === 'event' && tests.every(([field, test]) => test(String(ctx[field])));
    }
    case 'duration':
      return (ctx) => ctx.sessionSeconds >= definition.min_seconds;
    case 'pages_per_session':
      return (ctx) => ctx.sessionPageviews >= definition.min_pages;
  }
}
