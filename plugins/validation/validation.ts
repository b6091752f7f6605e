import { createRequire } from 'node:module';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { chainOf } from '../../src/gateway/pipeline.js';
import * as OpenApiValidator from 'express-openapi-validator';
import { validatorErrorToProblem } from './errors.js';
import type { ValidationOptions } from './schema.js';

const require = createRequire(import.meta.url);
// The path-to-regexp express-openapi-validator itself matches with, so params come out the same.
const { pathToRegexp } = createRequire(require.resolve('express-openapi-validator'))('path-to-regexp') as {
  pathToRegexp(path: string, opts: { sensitive: boolean; strict: boolean }): { regexp: RegExp; keys: { name: string }[] };
};

type Schema = Record<string, unknown>;
interface Context {
  apiDoc: { paths: Record<string, Record<string, Schema>> };
  routes: { basePath: string; expressRoute: string; openApiRoute: string; method: string }[];
  serial: number;
}
interface Oav {
  metadataMiddleware(context: Context, responseApiDoc: Context['apiDoc'] | undefined): RequestHandler;
  requestValidationMiddleware(apiDoc: unknown): RequestHandler;
  responseValidationMiddleware(apiDoc: unknown, serial: number): RequestHandler;
}
interface Route {
  expressRoute: string;
  openApiRoute: string;
  schema: Schema | undefined;
  responseSchema: Schema | undefined;
  regexp: RegExp;
  keys: string[];
}

/**
 * express-openapi-validator over the bundled spec. Authentication is the auth plugin's job, so its
 * security checks are off.
 *
 * Its metadata middleware finds the operation by compiling and trying every route's path pattern on
 * every request, and each of its middlewares waits on a promise; together most of the gateway's
 * per-request cost. The operation is already known (req.operationInfo), so once the library has set
 * itself up (on the first requests), requests take a synchronous path: the same route record the
 * library would build, from a pattern compiled once, then the library's own request (and response)
 * validators. Anything unexpected (no operation, HEAD, no match) goes through its own lookup.
 */
export function createValidator(spec: Record<string, unknown>, options: ValidationOptions): RequestHandler {
  const middlewares = OpenApiValidator.middleware({
    apiSpec: structuredClone(spec) as never,
    validateApiSpec: true,
    validateRequests: { allowUnknownQueryParameters: options.allowUnknownQueryParameters, allErrors: true },
    validateResponses: options.validateResponses ? { removeAdditional: false } : false,
    validateSecurity: false,
    ignoreUndocumented: true,
    fileUploader: false,
    validateFormats: true,
  }) as RequestHandler[];
  const oav = (OpenApiValidator.middleware as unknown as { _oav?: Oav })._oav;
  // The fast path leans on the library's internals (package.json pins its exact version); if they
  // ever change shape, validate the library's own (slower) way rather than not at all.
  if (typeof oav?.metadataMiddleware !== 'function' || typeof oav.requestValidationMiddleware !== 'function') {
    return chainOf(middlewares.map(reportingProblems));
  }

  // Capture what the library builds lazily on its first request.
  let metadata: RequestHandler | undefined;
  let requestValidator: RequestHandler | undefined;
  let responseValidator: RequestHandler | undefined;
  let routes: Map<string, Route> | undefined;
  let context: Context | undefined;
  let responseDoc: Context['apiDoc'] | undefined;
  const original = { meta: oav.metadataMiddleware, req: oav.requestValidationMiddleware, res: oav.responseValidationMiddleware };
  oav.metadataMiddleware = (ctx, resDoc) => {
    context = ctx;
    responseDoc = resDoc;
    return (metadata = original.meta.call(oav, ctx, resDoc));
  };
  oav.requestValidationMiddleware = (apiDoc) => (requestValidator = original.req.call(oav, apiDoc));
  oav.responseValidationMiddleware = (apiDoc, serial) => (responseValidator = original.res.call(oav, apiDoc, serial));

  // validateSecurity is off, so its middleware only ever passes the request on.
  const slow = middlewares.filter((mw) => mw.name !== 'securityMiddleware').map(reportingProblems);
  const ready = () => metadata && requestValidator && (!options.validateResponses || responseValidator);

  const fastMetadata: RequestHandler = (req, res, next) => {
    routes ??= compileRoutes(context!, responseDoc, req);
    const op = req.operationInfo;
    const route = op && routes.get(`${req.method} ${op.path}`);
    const path = req.originalUrl.split('?')[0]!;
    const match = route?.regexp.exec(path);
    if (!route || !match) return metadata!(req, res, next);
    const pathParams: Record<string, string> = {};
    try {
      for (let i = 0; i < route.keys.length; i++) pathParams[route.keys[i]!] = decodeURIComponent(match[i + 1]!);
    } catch {
      return metadata!(req, res, next); // it answers the malformed URI
    }
    const openapi: Record<string, unknown> = {
      expressRoute: route.expressRoute,
      openApiRoute: route.openApiRoute,
      pathParams,
      schema: route.schema,
      serial: context!.serial,
    };
    if (responseDoc) openapi._responseSchema = route.responseSchema;
    (req as unknown as { openapi: unknown }).openapi = openapi;
    req.params = pathParams;
    next();
  };

  const slowChain = chainOf(slow);
  let fastChain: RequestHandler | undefined;
  return (req, res, next) => {
    if (!fastChain && ready()) fastChain = chainOf([fastMetadata, requestValidator!, ...(responseValidator ? [responseValidator] : [])].map(reportingProblems));
    (fastChain ?? slowChain)(req, res, next);
  };
}

/** Maps the library's errors to problems; response validation reports through `next` after the handler ran. */
function reportingProblems(mw: RequestHandler): RequestHandler {
  return (req, res, next) => {
    // Its request validator throws what it finds (the library's own chain catches it in a promise).
    try {
      return mw(req, res, (err?: unknown) => report(req, res, next, err));
    } catch (err) {
      report(req, res, next, err);
    }
  };
}

function report(_req: Request, res: Response, next: NextFunction, err: unknown): void {
  const phase = err && res.locals.weirHandlerStarted ? 'response' : 'request';
  next(err ? validatorErrorToProblem(err, phase) : undefined);
}

function compileRoutes(context: Context, responseDoc: Context['apiDoc'] | undefined, req: Request): Map<string, Route> {
  const opts = { sensitive: Boolean(req.app.enabled('case sensitive routing')), strict: Boolean(req.app.enabled('strict routing')) };
  const routes = new Map<string, Route>();
  for (const r of context.routes) {
    const pathKey = r.openApiRoute.substring(r.basePath.length);
    const method = r.method.toLowerCase();
    const { regexp, keys } = pathToRegexp(r.expressRoute, opts);
    routes.set(`${r.method.toUpperCase()} ${pathKey}`, {
      expressRoute: r.expressRoute,
      openApiRoute: r.openApiRoute,
      schema: context.apiDoc.paths[pathKey]?.[method],
      responseSchema: responseDoc?.paths[pathKey]?.[method],
      regexp,
      keys: keys.map((k) => k.name),
    });
  }
  return routes;
}
