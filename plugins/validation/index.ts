import type { RequestHandler } from 'express';
import type { OperationInfo } from '../../generated/registry.js';
import { definePlugin } from '../../src/gateway/plugin.js';
import { PRIORITY } from '../priorities.js';
import { ValidationOptions } from './schema.js';
import { createValidator } from './validation.js';

/** Validates every request (and, when configured, every response) against the spec. */
export function createValidationPlugin() {
  let shared: RequestHandler | undefined;
  return definePlugin({
    name: 'validation',
    priority: PRIORITY.validation,
    options: ValidationOptions,
    forOperation: (op) => op,
    middleware: (op, { spec, options }) => {
      const validate = (shared ??= createValidator(spec, options));
      // Nothing to check on a request without a query string to an operation that takes no
      // parameters and no body (when responses aren't checked, which needs the validator's metadata).
      if (options.validateResponses || takesInput(spec, op)) return validate;
      return (req, res, next) => (req.url.includes('?') ? validate(req, res, next) : next());
    },
  });
}

/** Whether the spec gives the operation (or its path) any parameter, or a request body. */
export function takesInput(spec: Record<string, unknown>, op: OperationInfo): boolean {
  const item = (spec.paths as Record<string, Record<string, unknown>> | undefined)?.[op.path];
  const operation = item?.[op.method] as Record<string, unknown> | undefined;
  if (!item || !operation) return true;
  const has = (list: unknown) => !Array.isArray(list) || list.length > 0;
  return (item.parameters !== undefined && has(item.parameters)) || (operation.parameters !== undefined && has(operation.parameters)) || operation.requestBody !== undefined;
}
