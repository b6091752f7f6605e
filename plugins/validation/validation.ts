import type { RequestHandler } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { validatorErrorToProblem } from './errors.js';
import type { ValidationOptions } from './schema.js';

/**
 * express-openapi-validator over the bundled spec. Its middlewares find the operation from the
 * request path themselves, so one instance serves every operation's chain. Authentication is the
 * auth plugin's job, so its security checks are off.
 */
export function createValidator(spec: Record<string, unknown>, options: ValidationOptions): RequestHandler[] {
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
  return middlewares.map((mw) => (req, res, next) => {
    let phase: 'request' | 'response' = 'request';
    // Response validation reports through `next` after the handler ran; headers tell the phases apart.
    mw(req, res, (err?: unknown) => {
      if (err && res.locals.weirHandlerStarted) phase = 'response';
      next(err ? validatorErrorToProblem(err, phase) : undefined);
    });
  });
}
