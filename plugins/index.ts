import type { AnyPlugin } from '../src/gateway/plugin.js';
import { createAuditPlugin } from './audit/index.js';
import { createAuthPlugin } from './auth/index.js';
import { authzPlugin } from './authz/index.js';
import { bodyPlugin } from './body/index.js';
import { deprecationPlugin } from './deprecation/index.js';
import { metricsPlugin } from './metrics/index.js';
import { createRateLimitPlugin } from './rate-limit/index.js';
import { requestIdPlugin } from './request-id/index.js';
import { createValidationPlugin } from './validation/index.js';

/** The gateway's plugins, made fresh for each app. Their order is plugins/priorities.ts. */
export function createPlugins(): AnyPlugin[] {
  return [requestIdPlugin, deprecationPlugin, bodyPlugin, createValidationPlugin(), metricsPlugin, createAuditPlugin(), createRateLimitPlugin(), createAuthPlugin(), authzPlugin];
}
