import { ProblemError } from '../problem.js';

/**
 * A bound on the ingest bytes held in memory at once across requests. A request reserves what
 * it may hold before its body is read; when the budget is spent the answer is 503 with
 * Retry-After, and the body is never read.
 */
export class InflightBudget {
  private used = 0;

  constructor(readonly maxBytes: number) {}

  get inUse(): number {
    return this.used;
  }

  reserve(bytes: number): () => void {
    if (this.used + bytes > this.maxBytes) {
      throw new ProblemError(503, {
        detail: 'The write path is saturated; nothing of this request was read. Retry in 1 s.',
        headers: { 'Retry-After': '1' },
      });
    }
    this.used += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
    };
  }
}
