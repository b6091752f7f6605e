import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { Request, RequestHandler, Response } from 'express';
import type { Handler, HandlerContext } from '../../generated/handlers.js';
import type { OperationId, OperationInfo } from '../../generated/registry.js';
import { ProblemError } from '../problem.js';

type AnyResult = {
  status?: number;
  contentType?: string;
  body?: unknown;
  headers?: Record<string, string | string[]>;
  handled?: true;
};

/** Answers 501 for an operation the spec describes but no handler implements yet. */
export function notImplementedHandler(op: OperationInfo): RequestHandler {
  return (_req, _res, next) =>
    next(
      new ProblemError(501, {
        detail: `Operation ${op.operationId} (${op.method.toUpperCase()} ${op.path}) is described in the spec but not implemented yet.`,
      }),
    );
}

/** Calls a typed handler with the request's parts and writes what it returns. */
export function adaptHandler(op: OperationInfo, handler: Handler<OperationId>): RequestHandler {
  return async (req, res, next) => {
    res.locals.weirHandlerStarted = true;
    try {
      const ctx = new Context(op.operationId as OperationId, req, res) as unknown as HandlerContext<OperationId>;
      const result = (await handler(ctx)) as AnyResult;
      await send(res, result);
    } catch (err) {
      next(err);
    }
  };
}

/**
 * A handler's context. `signal` (aborted when the client goes away before the answer is complete)
 * is made when a handler first reads it: most never do, and an AbortController plus a close
 * listener on every request was a measurable part of a small request's cost.
 */
class Context {
  readonly params: Request['params'];
  readonly query: Request['query'];
  readonly body: unknown;
  readonly headers: Request['headers'];
  private abort: AbortController | undefined;

  constructor(
    readonly operationId: OperationId,
    readonly req: Request,
    readonly res: Response,
  ) {
    this.params = req.params;
    this.query = req.query;
    this.body = req.body;
    this.headers = req.headers;
  }

  get signal(): AbortSignal {
    if (!this.abort) {
      const abort = (this.abort = new AbortController());
      const res = this.res;
      if (res.closed) {
        if (!res.writableFinished) abort.abort(new Error('client disconnected'));
      } else {
        res.once('close', () => {
          if (!res.writableFinished) abort.abort(new Error('client disconnected'));
        });
      }
    }
    return this.abort.signal;
  }
}

async function send(res: Parameters<RequestHandler>[1], result: AnyResult): Promise<void> {
  if (result.handled) return;
  if (result.headers) res.set(result.headers);
  res.status(result.status ?? 200);
  const { body, contentType } = result;
  if (body === undefined) {
    res.end();
  } else if (body instanceof Readable) {
    res.type(contentType ?? 'application/octet-stream');
    await pipeline(body, res);
  } else if (typeof body === 'string' || Buffer.isBuffer(body)) {
    res.type(contentType ?? 'application/octet-stream').send(body);
  } else {
    if (contentType) res.type(contentType);
    res.json(body);
  }
}
