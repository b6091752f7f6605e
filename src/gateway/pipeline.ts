import type { Express, RequestHandler } from 'express';
import type { HandlerMap } from '../../generated/handlers.js';
import { notImplemented } from '../../generated/handlers.js';
import type { OperationId, OperationInfo } from '../../generated/registry.js';
import { adaptHandler, notImplementedHandler } from './handler-adapter.js';
import type { AnyPlugin, PluginDeps } from './plugin.js';

export interface ConfiguredPlugin {
  plugin: AnyPlugin;
  options: unknown;
}

/** Validates each plugin's options against its schema and sorts them into request-path order. */
export function configurePlugins(plugins: AnyPlugin[], options: Record<string, unknown>): ConfiguredPlugin[] {
  const names = new Set(plugins.map((p) => p.name));
  for (const name of Object.keys(options)) {
    if (!names.has(name)) throw new Error(`Options given for unknown plugin "${name}" (known: ${[...names].join(', ')})`);
  }
  return plugins
    .map((plugin) => {
      const parsed = plugin.options.safeParse(options[plugin.name]);
      if (!parsed.success) {
        const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(options)'}: ${i.message}`).join('; ');
        throw new Error(`Plugin "${plugin.name}" options are invalid: ${problems}`);
      }
      return { plugin, options: parsed.data };
    })
    .sort((a, b) => b.plugin.priority - a.plugin.priority || a.plugin.name.localeCompare(b.plugin.name));
}

/** Mounts the middleware of plugins that see every request, routed or not. */
export function mountGlobals(app: Express, plugins: ConfiguredPlugin[], deps: PluginDeps): void {
  for (const { plugin, options } of plugins) {
    if (plugin.global) app.use(plugin.global({ ...deps, options }));
  }
}

/**
 * Mounts one route per operation: the plugins that apply to it, in priority order, then its
 * handler (or a 501 for operations not implemented yet). Boot fails on a handler the spec
 * doesn't know, so a renamed operation can't leave a handler silently unmounted.
 */
export function mountOperations(
  app: Express,
  operations: readonly OperationInfo[],
  handlers: HandlerMap,
  plugins: ConfiguredPlugin[],
  deps: PluginDeps,
): void {
  const known = new Set(operations.map((op) => op.operationId));
  const unknown = Object.keys(handlers).filter((id) => !known.has(id));
  if (unknown.length) throw new Error(`Handlers for operations the spec doesn't define: ${unknown.join(', ')}`);

  for (const op of operations) {
    const chain: RequestHandler[] = [
      (req, _res, next) => {
        req.operationInfo = op;
        next();
      },
    ];
    for (const { plugin, options } of plugins) {
      if (!plugin.forOperation || !plugin.middleware) continue;
      const perOp = plugin.forOperation(op, options);
      if (perOp === undefined) continue;
      chain.push(...[plugin.middleware(perOp, { ...deps, options, op })].flat());
    }
    const handler = handlers[op.operationId as OperationId];
    chain.push(handler === notImplemented || handler === undefined ? notImplementedHandler(op) : adaptHandler(op, handler as never));
    app[op.method](op.expressPath, ...chain);
  }
}
