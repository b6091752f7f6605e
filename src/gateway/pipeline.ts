import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
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
  for (const mw of globalMiddleware(plugins, deps)) app.use(mw);
}

/** The middleware of plugins that see every request, routed or not, in order. */
export function globalMiddleware(plugins: ConfiguredPlugin[], deps: PluginDeps): RequestHandler[] {
  return plugins.flatMap(({ plugin, options }) => (plugin.global ? [plugin.global({ ...deps, options })].flat() : []));
}

/**
 * Mounts one route per operation: the plugins that apply to it, in priority order, then its
 * handler (or a 501 for operations not implemented yet), run as one Express layer (see chainOf),
 * behind a dispatcher that finds operations without path parameters by a Map lookup (see
 * exactPathDispatcher). Boot fails on a handler the spec doesn't know, so a renamed operation
 * can't leave a handler silently unmounted.
 *
 * `front`: middleware for every request (request ids, security headers, ...), run in the same
 * layer as the dispatcher, ahead of it, rather than as one Express layer each.
 */
export function mountOperations(
  app: Express,
  operations: readonly OperationInfo[],
  handlers: HandlerMap,
  plugins: ConfiguredPlugin[],
  deps: PluginDeps,
  front: readonly RequestHandler[] = [],
): void {
  const known = new Set(operations.map((op) => op.operationId));
  const unknown = Object.keys(handlers).filter((id) => !known.has(id));
  if (unknown.length) throw new Error(`Handlers for operations the spec doesn't define: ${unknown.join(', ')}`);

  const chains = new Map<OperationInfo, RequestHandler>();
  for (const op of operations) {
    const chain: RequestHandler[] = [];
    for (const { plugin, options } of plugins) {
      if (!plugin.forOperation || !plugin.middleware) continue;
      const perOp = plugin.forOperation(op, options);
      if (perOp === undefined) continue;
      chain.push(...[plugin.middleware(perOp, { ...deps, options, op })].flat());
    }
    const handler = handlers[op.operationId as OperationId];
    chain.push(handler === notImplemented || handler === undefined ? notImplementedHandler(op) : adaptHandler(op, handler as never));
    chains.set(op, chainOf(chain));
  }
  app.use(chainOf([...front, exactPathDispatcher(operations, chains)]));
  for (const [op, run] of chains) {
    app[op.method](op.expressPath, (req, res, next) => {
      // Already run by the exact-path dispatcher, which passed the request on: it goes on from here.
      if (req.operationInfo === op) return next();
      req.operationInfo = op;
      run(req, res, next);
    });
  }
}

/**
 * Runs an operation's middlewares one after another as one: each Express layer costs a round of
 * the router's bookkeeping per request, and an operation has a dozen. Errors (thrown, rejected or
 * passed) leave through `next(err)` as they would from Express's layers; `next('route')` and
 * `next('router')` leave the operation as they would leave its route.
 */
export function chainOf(chain: readonly RequestHandler[]): (req: Request, res: Response, next: NextFunction) => void {
  const n = chain.length;
  return (req, res, next) => {
    // A method rather than a named arrow function: tsx (keepNames) gives every named function made
    // per request an Object.defineProperty call, which costs more than the rest of this.
    const run = {
      i: 0,
      step(err?: unknown): void {
        if (err !== undefined && err !== null && err !== false) {
          run.i = n;
          return next(err === 'route' ? undefined : (err as Error));
        }
        if (run.i === n) return next();
        const mw = chain[run.i++]!;
        try {
          const ret = mw(req, res, run.step) as unknown;
          if (ret instanceof Promise) ret.then(undefined, (e: unknown) => run.step(e ?? new Error('Rejected promise')));
        } catch (e) {
          run.step(e);
        }
      },
    };
    run.step();
  };
}

/**
 * The operations whose path has no parameters, found by one Map lookup instead of the router trying
 * each operation's route in turn. Only paths that no earlier-mounted operation could also match are
 * taken (the router gives a request to the first route that matches), and only exact matches: a
 * request that differs in case or by a trailing slash goes on to the routes, which decide as before.
 */
export function exactPathDispatcher(operations: readonly OperationInfo[], chains: ReadonlyMap<OperationInfo, RequestHandler>): RequestHandler {
  // By method, then path: no "METHOD /path" key string made (and hashed) per request.
  const byKey = new Map<string, Map<string, { op: OperationInfo; run: RequestHandler }>>();
  const seen: { methods: Set<string>; pattern: RegExp }[] = [];
  for (const op of operations) {
    const methods = new Set([op.method.toUpperCase(), ...(op.method === 'get' ? ['HEAD'] : [])]);
    if (!op.path.includes('{')) {
      for (const method of methods) {
        const shadowed = seen.some((s) => s.methods.has(method) && s.pattern.test(op.path));
        let byPath = byKey.get(method);
        if (!byPath) byKey.set(method, (byPath = new Map()));
        if (!shadowed && !byPath.has(op.path)) byPath.set(op.path, { op, run: chains.get(op)! });
      }
    }
    seen.push({ methods, pattern: new RegExp(`^${op.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}/?$`, 'i') });
  }
  return (req, res, next) => {
    const hit = byKey.get(req.method)?.get(req.path);
    if (!hit) return next();
    req.operationInfo = hit.op;
    req.params = {};
    hit.run(req, res, next);
  };
}
