import { definePlugin } from '../../src/gateway/plugin.js';
import { PRIORITY } from '../priorities.js';
import { Limiter } from './limiter.js';
import { PolicyBook } from './policies.js';
import { rateLimitMiddleware, rateLimitSettings } from './rate-limit.js';
import { RedisLimiter } from './redis-limiter.js';
import { RateLimitOptions } from './schema.js';

/**
 * Token-bucket limits per caller and policy (`x-weir-rate-limit`), shared by every gateway process
 * through Redis (one atomic script call decides each batch of requests), with a local bucket in
 * embedded mode and as the fallback.
 */
export function createRateLimitPlugin() {
  let shared: { book: PolicyBook; limiter: Limiter; retryUnavailableS: number } | undefined;
  return definePlugin({
    name: 'rate-limit',
    priority: PRIORITY['rate-limit'],
    options: RateLimitOptions,
    forOperation: (op) => rateLimitSettings(op),
    middleware: (settings, deps) => {
      shared ??= (() => {
        const { options, config, stores, logger, metrics } = deps;
        const book = new PolicyBook(options, config.rateLimit);
        const failMode = options.failMode ?? config.rateLimit.failMode;
        const redis = stores.shared.redis ? RedisLimiter.for(stores.shared.redis) : undefined;
        const limiter = new Limiter(redis, { failMode, retrySharedAfterMs: options.retrySharedAfterMs, logger, metrics });
        return { book, limiter, retryUnavailableS: Math.max(1, Math.ceil(options.retrySharedAfterMs / 1000)) };
      })();
      if (!shared.book.has(settings.policy)) {
        throw new Error(
          `Operation ${deps.op.operationId} names rate-limit policy "${settings.policy}", which is not configured (known: ${shared.book.names().join(', ')})`,
        );
      }
      return rateLimitMiddleware(settings, { ...shared, metrics: deps.metrics });
    },
  });
}
