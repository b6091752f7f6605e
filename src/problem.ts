import type { Request, Response } from 'express';

/** One thing wrong with a request, and where (RFC 9457 extension member `errors`). */
export interface ProblemDetail {
  in?: 'body' | 'query' | 'path' | 'header' | 'cookie';
  pointer?: string;
  parameter?: string;
  line?: number;
  detail: string;
}

export interface ProblemInit {
  /** The short slug of the problem type, e.g. `validation`; becomes `https://weir.dev/problems/<slug>`. */
  type?: string;
  title?: string;
  detail?: string;
  errors?: ProblemDetail[];
  headers?: Record<string, string>;
  /** Extra members for the document. */
  extra?: Record<string, unknown>;
  cause?: unknown;
}

export const PROBLEM_BASE = 'https://weir.dev/problems/';

const defaults: Record<number, [slug: string, title: string]> = {
  400: ['bad-request', 'Bad request'],
  401: ['unauthorized', 'Authentication required'],
  403: ['forbidden', 'Forbidden'],
  404: ['not-found', 'Not found'],
  405: ['method-not-allowed', 'Method not allowed'],
  406: ['not-acceptable', 'Not acceptable'],
  409: ['conflict', 'Conflict'],
  410: ['gone', 'Gone'],
  413: ['payload-too-large', 'Payload too large'],
  415: ['unsupported-media-type', 'Unsupported media type'],
  416: ['range-not-satisfiable', 'Range not satisfiable'],
  422: ['unprocessable', 'Unprocessable content'],
  429: ['rate-limited', 'Rate limit exceeded'],
  500: ['internal', 'Internal server error'],
  501: ['not-implemented', 'Not implemented'],
  503: ['unavailable', 'Service unavailable'],
};

/** An error that leaves the gateway as an application/problem+json response. Throw it from anywhere. */
export class ProblemError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail?: string;
  readonly errors?: ProblemDetail[];
  readonly headers: Record<string, string>;
  readonly extra: Record<string, unknown>;

  constructor(status: number, init: ProblemInit = {}) {
    const [slug, title] = defaults[status] ?? [status >= 500 ? 'internal' : 'bad-request', 'Error'];
    super(init.detail ?? init.title ?? title, { cause: init.cause });
    this.name = 'ProblemError';
    this.status = status;
    this.type = `${PROBLEM_BASE}${init.type ?? slug}`;
    this.title = init.title ?? title;
    this.detail = init.detail;
    this.errors = init.errors;
    this.headers = init.headers ?? {};
    this.extra = init.extra ?? {};
  }

  toJSON(instance?: string): Record<string, unknown> {
    return {
      type: this.type,
      title: this.title,
      status: this.status,
      ...(this.detail !== undefined && { detail: this.detail }),
      ...(instance !== undefined && { instance }),
      ...(this.errors?.length && { errors: this.errors }),
      ...this.extra,
    };
  }
}

export function requestInstance(req: Request): string | undefined {
  return req.id ? `urn:weir:request:${req.id}` : undefined;
}

/** Writes a problem as the response, unless headers are already sent. */
export function sendProblem(req: Request, res: Response, problem: ProblemError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = problem.toJSON(requestInstance(req));
  if (req.operationInfo) body.operationId = req.operationInfo.operationId;
  res.status(problem.status).set(problem.headers).type('application/problem+json').send(JSON.stringify(body));
}
