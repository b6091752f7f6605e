import type { AnyPlugin } from '../src/gateway/plugin.js';
import { bodyPlugin } from './body/index.js';
import { deprecationPlugin } from './deprecation/index.js';
import { requestIdPlugin } from './request-id/index.js';
import { createValidationPlugin } from './validation/index.js';

/** The gateway's plugins, made fresh for each app. Their order is plugins/priorities.ts. */
export function createPlugins(): AnyPlugin[] {
  return [requestIdPlugin, deprecationPlugin, bodyPlugin, createValidationPlugin()];
}
