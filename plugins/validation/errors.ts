import { ProblemError, type ProblemDetail } from '../../src/problem.js';

interface ValidatorError {
  status?: number;
  message?: string;
  errors?: { path?: string; message?: string; errorCode?: string }[];
}

const locations: Record<string, ProblemDetail['in']> = {
  body: 'body',
  query: 'query',
  params: 'path',
  path: 'path',
  headers: 'header',
  header: 'header',
  cookies: 'cookie',
};

/** Turns express-openapi-validator's `/body/columns/0/type` paths into where-and-what problem details. */
export function toValidationDetail(path: string | undefined, message: string): ProblemDetail {
  const [, part = '', ...rest] = (path ?? '').split('/');
  const where = locations[part];
  if (where === 'body') return { in: 'body', pointer: `#${rest.length ? `/${rest.join('/')}` : ''}`, detail: message };
  if (where) return { in: where, parameter: rest.join('/') || undefined, detail: message };
  return { detail: message };
}

/** Maps an express-openapi-validator error to the problem a client can act on. */
export function validatorErrorToProblem(err: unknown, phase: 'request' | 'response'): ProblemError | unknown {
  const e = err as ValidatorError;
  if (typeof e?.status !== 'number' || !Array.isArray(e.errors)) return err;
  const errors = e.errors.map((x) => toValidationDetail(x.path, x.message ?? 'invalid'));
  if (phase === 'response' || e.status >= 500) {
    return new ProblemError(500, {
      type: 'response-validation',
      title: 'Response does not match the spec',
      detail: `The handler's response does not match the spec: ${summarise(errors)}. This is a server bug.`,
      errors,
    });
  }
  switch (e.status) {
    case 400:
      return new ProblemError(400, {
        type: 'validation',
        title: 'Request validation failed',
        detail: `The request is not valid: ${summarise(errors)}.`,
        errors,
      });
    case 415:
      return new ProblemError(415, { detail: `${e.message}.`, errors });
    case 405:
    case 404:
      return new ProblemError(e.status, { detail: e.message });
    default:
      return new ProblemError(e.status, { detail: e.message, errors });
  }
}

function summarise(errors: ProblemDetail[]): string {
  const first = errors
    .slice(0, 3)
    .map((d) => `${d.pointer ?? (d.parameter ? `${d.in} parameter ${d.parameter}` : d.in ?? '')} ${d.detail}`.trim());
  return first.join('; ') + (errors.length > 3 ? `; and ${errors.length - 3} more` : '');
}
