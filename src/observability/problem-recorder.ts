import type { ErrorRequestHandler } from 'express';
import { PROBLEM_BASE, ProblemError } from '../problem.js';

declare global {
  namespace Express {
    interface Locals {
      /** The problem a request ended with, for the plugins that wrap the chain (metrics' auth-failure reasons, audit). */
      weirProblem?: { status: number; type: string };
    }
  }
}

/**
 * Error middleware placed just before the problem writer: notes which problem a request ended
 * with, because plugins earlier in the chain (metrics, audit) see only the response.
 */
export const recordProblem: ErrorRequestHandler = (err, _req, res, next) => {
  if (err instanceof ProblemError) res.locals.weirProblem = { status: err.status, type: err.type.startsWith(PROBLEM_BASE) ? err.type.slice(PROBLEM_BASE.length) : err.type };
  next(err);
};
