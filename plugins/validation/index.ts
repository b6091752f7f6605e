import type { RequestHandler } from 'express';
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
    forOperation: () => true,
    middleware: (_perOp, { spec, options }) => (shared ??= createValidator(spec, options)),
  });
}
