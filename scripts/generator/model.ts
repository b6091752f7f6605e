import { readOperationExtensions, websocketSchema, type OperationExtensions } from './extensions.js';

/** What the emitters need to know of one operation, read from the bundled document. */
export interface OperationModel {
  operationId: string;
  method: HttpMethod;
  path: string;
  expressPath: string;
  tags: string[];
  summary: string;
  deprecated: boolean;
  /** Effective security requirements: OR'ed list of AND'ed scheme names. Empty list = public. */
  security: string[][];
  extensions: OperationExtensions;
  params: { path: ParamModel[]; query: ParamModel[]; header: ParamModel[] };
  requestBody?: { required: boolean; contentTypes: string[] };
  responses: ResponseModel[];
  paginated: boolean;
}

export interface ParamModel {
  name: string;
  required: boolean;
}

export interface ResponseModel {
  status: number;
  contentTypes: string[];
  problem: boolean;
}

export interface SecuritySchemeModel {
  name: string;
  type: 'http' | 'apiKey' | 'oauth2' | 'openIdConnect' | 'mutualTLS';
  scheme?: string;
  in?: 'header' | 'query' | 'cookie';
  paramName?: string;
}

export interface SpecModel {
  title: string;
  version: string;
  operations: OperationModel[];
  securitySchemes: SecuritySchemeModel[];
  websockets: unknown[];
}

export const httpMethods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
export type HttpMethod = (typeof httpMethods)[number];

type Json = Record<string, any>;

export class SpecError extends Error {
  constructor(readonly problems: string[]) {
    super(`The spec cannot be used:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'SpecError';
  }
}

export function isJsonMediaType(contentType: string): boolean {
  return contentType === 'application/json' || /^application\/[\w.+-]+\+json$/.test(contentType);
}

/** Reads the operations of a bundled (single-document, local refs only) OpenAPI 3.1 document. */
export function readSpec(doc: Json): SpecModel {
  const problems: string[] = [];
  const operations: OperationModel[] = [];
  const seen = new Map<string, string>();
  const rootSecurity = toSecurity(doc.security ?? []);

  for (const [path, rawItem] of Object.entries<Json>(doc.paths ?? {})) {
    const item = deref(doc, rawItem);
    for (const method of httpMethods) {
      const op = item[method] as Json | undefined;
      if (!op) continue;
      const where = `${method.toUpperCase()} ${path}`;
      const operationId = op.operationId as string | undefined;
      if (!operationId || !/^[a-z][A-Za-z0-9]*$/.test(operationId)) {
        problems.push(`${where}: needs a camelCase operationId`);
        continue;
      }
      if (seen.has(operationId)) problems.push(`${where}: operationId ${operationId} is already used by ${seen.get(operationId)}`);
      seen.set(operationId, where);
      const ext = readOperationExtensions(`${operationId} (${where})`, op);
      problems.push(...ext.problems);
      if (ext.value.sunset && !op.deprecated) problems.push(`${operationId}: x-weir-sunset needs deprecated: true`);
      if (op.deprecated && !ext.value.deprecatedAt) {
        problems.push(`${operationId}: deprecated: true needs x-weir-deprecated-at (when it was deprecated) for the Deprecation header`);
      }

      const params: OperationModel['params'] = { path: [], query: [], header: [] };
      for (const raw of [...(item.parameters ?? []), ...(op.parameters ?? [])]) {
        const p = deref(doc, raw);
        const list = params[p.in as keyof typeof params];
        if (!list) continue;
        const existing = list.findIndex((q) => q.name === p.name);
        const model = { name: p.name as string, required: Boolean(p.required) };
        if (existing >= 0) list[existing] = model;
        else list.push(model);
      }
      for (const name of path.match(/\{([^}]+)\}/g) ?? []) {
        const bare = name.slice(1, -1);
        if (!params.path.some((p) => p.name === bare)) problems.push(`${operationId}: path parameter ${bare} is not declared`);
      }
      const security = op.security ? toSecurity(op.security) : rootSecurity;
      if (security.length > 0 && !ext.value.authz) {
        problems.push(`${operationId}: requires authentication but has no x-weir-authz, so authorization would be skipped`);
      }
      if (ext.value.authz?.id && !params.path.some((p) => p.name === ext.value.authz?.id)) {
        problems.push(`${operationId}: x-weir-authz.id names ${ext.value.authz.id}, which is not a path parameter`);
      }

      const body = op.requestBody ? deref(doc, op.requestBody) : undefined;
      const responses: ResponseModel[] = [];
      for (const [status, rawResponse] of Object.entries<Json>(op.responses ?? {})) {
        if (!/^\d{3}$/.test(status)) continue;
        const response = deref(doc, rawResponse);
        const contentTypes = Object.keys(response.content ?? {});
        responses.push({
          status: Number(status),
          contentTypes,
          problem: contentTypes.length > 0 && contentTypes.every((c) => c === 'application/problem+json'),
        });
      }
      if (!responses.some((r) => r.status < 400)) problems.push(`${operationId}: declares no success response`);

      operations.push({
        operationId,
        method,
        path,
        expressPath: path.replace(/\{([^}]+)\}/g, ':$1'),
        tags: op.tags ?? [],
        summary: op.summary ?? '',
        deprecated: Boolean(op.deprecated),
        security,
        extensions: ext.value,
        params,
        requestBody: body
          ? { required: Boolean(body.required), contentTypes: Object.keys(body.content ?? {}) }
          : undefined,
        responses,
        paginated: isPaginated(doc, op, params),
      });
    }
  }

  const securitySchemes: SecuritySchemeModel[] = Object.entries<Json>(doc.components?.securitySchemes ?? {}).map(
    ([name, s]) => ({ name, type: s.type, scheme: s.scheme, in: s.in, paramName: s.name }),
  );
  for (const op of operations) {
    for (const name of op.security.flat()) {
      if (!securitySchemes.some((s) => s.name === name)) problems.push(`${op.operationId}: unknown security scheme ${name}`);
    }
  }

  const websockets: unknown[] = [];
  for (const [i, ws] of (doc['x-weir-websockets'] ?? []).entries()) {
    const parsed = websocketSchema.safeParse(ws);
    if (parsed.success) websockets.push(parsed.data);
    else problems.push(...parsed.error.issues.map((e) => `x-weir-websockets[${i}].${e.path.join('.')}: ${e.message}`));
  }

  if (problems.length) throw new SpecError(problems);
  operations.sort((a, b) => a.operationId.localeCompare(b.operationId));
  return { title: doc.info?.title ?? 'API', version: doc.info?.version ?? '0', operations, securitySchemes, websockets };
}

function toSecurity(reqs: Json[]): string[][] {
  return reqs.map((r) => Object.keys(r));
}

function deref(doc: Json, value: Json): Json {
  let current = value;
  for (let depth = 0; current && typeof current.$ref === 'string'; depth++) {
    if (depth > 20 || !current.$ref.startsWith('#/')) throw new SpecError([`cannot resolve ${current.$ref}`]);
    current = current.$ref
      .slice(2)
      .split('/')
      .map((s: string) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((node: Json | undefined, key: string) => node?.[key], doc) as Json;
  }
  return current;
}

function isPaginated(doc: Json, op: Json, params: OperationModel['params']): boolean {
  if (!params.query.some((p) => p.name === 'cursor')) return false;
  const ok = op.responses?.['200'] && deref(doc, op.responses['200']);
  const schema = ok?.content?.['application/json']?.schema;
  const props = schema ? deref(doc, schema).properties : undefined;
  return Boolean(props?.items && props?.next_cursor);
}
