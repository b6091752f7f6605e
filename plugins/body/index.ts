import { definePlugin } from '../../src/gateway/plugin.js';
import { PRIORITY } from '../priorities.js';
import { bodyMiddleware, bodySettings } from './body.js';
import { BodyOptions } from './schema.js';

/** Parses request bodies by the operation's declared content types, within x-weir-body's limit. */
export const bodyPlugin = definePlugin({
  name: 'body',
  priority: PRIORITY.body,
  options: BodyOptions,
  forOperation: (op, options) => bodySettings(op, options.limit ?? 1024 * 1024),
  middleware: (settings) => bodyMiddleware(settings),
});
