import { ProblemError, type ProblemDetail } from '../problem.js';

/** Collects what is wrong with a query body, each with a JSON Pointer into it. */
export class QueryProblems {
  readonly list: ProblemDetail[] = [];

  add(pointer: string, detail: string): void {
    this.list.push({ in: 'body', pointer: `#${pointer}`, detail });
  }

  throwIfAny(): void {
    if (!this.list.length) return;
    throw new ProblemError(400, {
      type: 'invalid-query',
      title: 'Invalid query',
      detail: `The query cannot run: ${this.list.slice(0, 3).map((e) => `${e.pointer} ${e.detail}`).join('; ')}${this.list.length > 3 ? `; and ${this.list.length - 3} more` : ''}.`,
      errors: this.list,
    });
  }
}
