import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { OperationInfo } from '../../generated/registry.js';
import type { AuditLog } from '../audit/index.js';
import type { AccessControl } from '../authz/index.js';
import type { Config } from '../config.js';
import type { Identity } from '../identity/index.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { Stores } from '../stores/index.js';

/** What every plugin may use; handed to it once, at boot. */
export interface PluginDeps {
  config: Config;
  stores: Stores;
  logger: Logger;
  /** The bundled spec (generated/openapi.json). */
  spec: Record<string, unknown>;
  /** The app's metrics registry and usage windows (shared with GET /metrics and /v1/metrics). */
  metrics: GatewayMetrics;
  /** The audit log (written by the audit plugin, read by GET /v1/audit). */
  audit: AuditLog;
  /** API keys, OAuth clients, token signing and verification (used by the auth plugin and identity handlers). */
  identity: Identity;
  /** Authorization decisions, grants and resource owners (used by the authz plugin and access handlers). */
  access: AccessControl;
}

/**
 * A gateway plugin: a named, prioritised piece of the request path with a declared options schema
 * (modelled on Kong's plugin = handler + schema, and Fastify's closed set of hooks).
 * `forOperation` reads the operation's `x-weir-*` settings once, at boot; returning undefined skips the
 * plugin for that operation. `middleware` then makes the (req, res, next) for one operation.
 * `global` is for the few plugins that must see every request, routed or not (request ids).
 */
export interface Plugin<Options = unknown, PerOp = unknown> {
  readonly name: string;
  /** Higher runs first; ties by name. The numbers live in plugins/priorities.ts. */
  readonly priority: number;
  readonly options: z.ZodType<Options>;
  forOperation?(op: OperationInfo, options: Options): PerOp | undefined;
  middleware?(perOp: PerOp, deps: PluginDeps & { options: Options; op: OperationInfo }): RequestHandler | RequestHandler[];
  global?(deps: PluginDeps & { options: Options }): RequestHandler | RequestHandler[];
  close?(): Promise<void> | void;
}

export function definePlugin<Options, PerOp>(plugin: Plugin<Options, PerOp>): Plugin<Options, PerOp> {
  return plugin;
}

export type AnyPlugin = Plugin<any, any>;
