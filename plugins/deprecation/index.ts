import { definePlugin } from '../../src/gateway/plugin.js';
import { PRIORITY } from '../priorities.js';
import { deprecationHeaders, deprecationMiddleware } from './deprecation.js';
import { DeprecationOptions } from './schema.js';

/** Adds Deprecation/Sunset headers to operations the spec marks `deprecated: true`. */
export const deprecationPlugin = definePlugin({
  name: 'deprecation',
  priority: PRIORITY.deprecation,
  options: DeprecationOptions,
  forOperation: (op, options) => deprecationHeaders(op, options.link),
  middleware: (headers) => deprecationMiddleware(headers),
});
