import { definePlugin } from '../../src/gateway/plugin.js';
import { PRIORITY } from '../priorities.js';
import { requestIdMiddleware } from './request-id.js';
import { RequestIdOptions } from './schema.js';

/** Accepts a sane inbound X-Request-Id or makes one, and echoes it. Runs for every request. */
export const requestIdPlugin = definePlugin({
  name: 'request-id',
  priority: PRIORITY['request-id'],
  options: RequestIdOptions,
  global: ({ options }) => requestIdMiddleware(options),
});
