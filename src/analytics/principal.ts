import type { Request } from 'express';
import type { Principal } from '../gateway/request-types.js';
import { ProblemError } from '../problem.js';

/** The authenticated caller, or 401: only the tracking endpoints are public. */
export function requirePrincipal(req: Request): Principal {
  if (!req.principal) throw new ProblemError(401, { detail: 'This operation needs credentials: a bearer token or an API key.' });
  return req.principal;
}
