import { banner } from './emit-registry.js';
import { isJsonMediaType, type OperationModel, type SpecModel } from './model.js';

const ops = (id: string) => `Ops['${id}']`;

/** generated/handlers.ts: the typed handler map the server binds by operationId. */
export function emitHandlers(spec: SpecModel): string {
  const shapes = spec.operations.map((op) => `  ${op.operationId}: {
    params: ${op.params.path.length ? `${ops(op.operationId)}['parameters']['path']` : 'Record<string, never>'};
    query: ${op.params.query.length ? `NonNullable<${ops(op.operationId)}['parameters']['query']>` : 'Record<string, never>'};
    body: ${bodyType(op)};
    result:
${resultTypes(op).map((t) => `      | ${t}`).join('\n')};
  };`);
  return `${banner}
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Request, Response } from 'express';
import type { OperationId } from './registry.js';
import type { operations as Ops } from './sdk/src/types.js';

/** A response body that is not JSON: sent as is, or piped when it is a stream. */
export type RawBody = string | Buffer | Readable;

/** Returned by a streaming handler that has written the response itself (x-weir-body.stream). */
export interface Handled {
  handled: true;
}

/** Per operation: what the handler receives and the responses it may return. */
export interface OperationShapes {
${shapes.join('\n')}
}

export interface HandlerContext<K extends OperationId> {
  operationId: K;
  params: OperationShapes[K]['params'];
  query: OperationShapes[K]['query'];
  /** The parsed, validated body; undefined for operations that read the raw stream themselves. */
  body: OperationShapes[K]['body'];
  headers: IncomingHttpHeaders;
  req: Request;
  res: Response;
  /** Aborted when the client disconnects before the response is sent. */
  signal: AbortSignal;
}

export type HandlerResult<K extends OperationId> = OperationShapes[K]['result'];

export type Handler<K extends OperationId> = (ctx: HandlerContext<K>) => HandlerResult<K> | Promise<HandlerResult<K>>;

/** Marks an operation the spec describes but the server does not implement yet: it answers 501. */
export const notImplemented: unique symbol = Symbol.for('weir.notImplemented');

/** Every operation must be listed: a missing, misspelt or mistyped handler fails \`tsc\`. */
export type HandlerMap = { readonly [K in OperationId]: Handler<K> | typeof notImplemented };
`;
}

function bodyType(op: OperationModel): string {
  if (!op.requestBody || op.extensions.body?.stream) return 'undefined';
  const base = `NonNullable<${ops(op.operationId)}['requestBody']>['content']`;
  const types = op.requestBody.contentTypes.map((ct) => `${base}['${ct}']`);
  if (!op.requestBody.required) types.push('undefined');
  return types.join(' | ') || 'undefined';
}

function resultTypes(op: OperationModel): string[] {
  const out: string[] = [];
  for (const r of op.responses) {
    if (r.problem) continue;
    const headers = 'headers?: Record<string, string | string[]>';
    if (r.contentTypes.length === 0) {
      out.push(`{ status: ${r.status}; body?: undefined; ${headers} }`);
      continue;
    }
    const json = r.contentTypes.filter((ct) => isJsonMediaType(ct) && ct !== 'application/problem+json');
    const raw = r.contentTypes.filter((ct) => !isJsonMediaType(ct));
    for (const ct of json) {
      const body = `${ops(op.operationId)}['responses'][${r.status}]['content']['${ct}']`;
      const contentType = json.length > 1 || ct !== 'application/json' ? `contentType: '${ct}'` : `contentType?: 'application/json'`;
      out.push(`{ status: ${r.status}; ${contentType}; body: ${body}; ${headers} }`);
    }
    if (raw.length) out.push(`{ status: ${r.status}; contentType: ${raw.map((c) => `'${c}'`).join(' | ')}; body: RawBody; ${headers} }`);
  }
  if (op.extensions.body?.stream) out.push('Handled');
  return out;
}
