import { banner } from './emit-registry.js';
import { isJsonMediaType, type OperationModel, type SpecModel } from './model.js';

const pascal = (id: string) => id[0]!.toUpperCase() + id.slice(1);

/** generated/sdk/src/client.ts: one method per operationId, plus `<op>Pages` for cursor lists. */
export function emitClient(spec: SpecModel): string {
  const apiKey = spec.securitySchemes.find((s) => s.type === 'apiKey' && s.in === 'header');
  const types: string[] = [];
  const methods: string[] = [];
  for (const op of spec.operations) {
    const name = pascal(op.operationId);
    const o = `Ops['${op.operationId}']`;
    const fields: string[] = [];
    if (op.params.path.length) fields.push(`params: ${o}['parameters']['path'];`);
    if (op.params.query.length) {
      const required = op.params.query.some((p) => p.required);
      fields.push(`query${required ? '' : '?'}: NonNullable<${o}['parameters']['query']>;`);
    }
    fields.push('headers?: Record<string, string>;');
    const contentTypes = op.requestBody?.contentTypes ?? [];
    const json = contentTypes.find((ct) => isJsonMediaType(ct));
    const others = contentTypes.filter((ct) => !isJsonMediaType(ct));
    if (json) {
      const optional = !op.requestBody?.required || others.length > 0;
      fields.push(`body${optional ? '?' : ''}: NonNullable<${o}['requestBody']>['content']['${json}'];`);
    }
    if (others.length) {
      fields.push(`/** The body as bytes or text, for ${others.join(', ')}. */`);
      fields.push(`raw${json || !op.requestBody?.required ? '?' : ''}: { contentType: ${others.map((c) => `'${c}'`).join(' | ')} | (string & {}); data: string | Uint8Array | Blob };`);
    }
    const argsRequired = op.params.path.length > 0 || op.params.query.some((p) => p.required) || (op.requestBody?.required && !(json && others.length));
    types.push(`export interface ${name}Args {\n${fields.map((f) => `  ${f}`).join('\n')}\n}`);
    types.push(`export type ${name}Result = ${successType(op)};`);
    const ref = JSON.stringify({ operationId: op.operationId, method: op.method.toUpperCase(), path: op.path });
    const doc = `  /** ${op.summary || op.operationId}${op.deprecated ? '\n   * @deprecated' : ''} (${op.method.toUpperCase()} ${op.path}) */`;
    methods.push(`${doc}
  ${op.operationId}(args${argsRequired ? '' : '?'}: ${name}Args, options?: RequestOptions): Promise<${name}Result> {
    return this.request(${ref}, args, options) as Promise<${name}Result>;
  }`);
    if (op.paginated) {
      methods.push(`  /** Every page of ${op.operationId}, following next_cursor. */
  ${op.operationId}Pages(args${argsRequired ? '' : '?'}: ${name}Args, options?: RequestOptions): AsyncGenerator<${name}Result, void, undefined> {
    return this.paginate((a: ${name}Args) => this.${op.operationId}(a, options), args ?? ({} as ${name}Args));
  }`);
    }
  }
  return `${banner}
import { BaseClient, type ClientOptions, type RequestOptions } from './runtime.js';
import type { components, operations as Ops } from './types.js';

export type Schemas = components['schemas'];

${types.join('\n\n')}

/** A typed client for ${spec.title} ${spec.version}. */
export class WeirClient extends BaseClient {
  constructor(options: ClientOptions) {
    super(options, ${JSON.stringify(apiKey?.paramName ?? 'X-API-Key')});
  }

${methods.join('\n\n')}
}
`;
}

function successType(op: OperationModel): string {
  const out = new Set<string>();
  for (const r of op.responses) {
    if (r.status >= 300) continue;
    if (r.contentTypes.length === 0) out.add('void');
    for (const ct of r.contentTypes) {
      if (isJsonMediaType(ct)) out.add(`Ops['${op.operationId}']['responses'][${r.status}]['content']['${ct}']`);
      else if (ct.startsWith('text/')) out.add('string');
      else out.add('Response');
    }
  }
  return [...out].join(' | ') || 'void';
}

export function emitSdkIndex(): string {
  return `${banner}
export { WeirClient } from './client.js';
export type * from './client.js';
export { WeirHttpError, WeirProblemError, items, retryDelay } from './runtime.js';
export type { ClientOptions, ProblemDocument, RequestOptions } from './runtime.js';
export type { components, operations, paths } from './types.js';
`;
}

export function emitSdkPackageJson(spec: SpecModel): string {
  return `${JSON.stringify(
    {
      name: '@weir/sdk',
      version: spec.version,
      description: `Typed TypeScript client for ${spec.title}, generated from its OpenAPI document.`,
      type: 'module',
      license: 'Apache-2.0',
      exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } },
      types: './dist/index.d.ts',
      files: ['dist', 'src', 'README.md'],
      engines: { node: '>=20.19' },
      scripts: { build: 'tsc -p .', prepare: 'tsc -p .' },
      devDependencies: { typescript: '^5.9.0' },
    },
    null,
    2,
  )}\n`;
}

export function emitSdkTsconfig(): string {
  return `${JSON.stringify(
    {
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2023', 'DOM'],
        strict: true,
        declaration: true,
        skipLibCheck: true,
        rootDir: 'src',
        outDir: 'dist',
      },
      include: ['src'],
    },
    null,
    2,
  )}\n`;
}

export function emitSdkReadme(spec: SpecModel): string {
  const list = spec.operations.map((op) => `| \`${op.operationId}\` | ${op.method.toUpperCase()} ${op.path} | ${op.summary} |`);
  return `<!-- Generated by \`npm run generate\` from openapi/. Do not edit. -->
# @weir/sdk

A typed client for ${spec.title} ${spec.version}: one method per operationId, bearer or API-key
authentication, RFC 9457 problems raised as \`WeirProblemError\`, retries of 429/503 that honour
\`Retry-After\`, and \`<operation>Pages()\` async iterators over cursor-paginated lists. It needs only
\`fetch\` (Node.js 20.19 or later, or a browser).

\`\`\`ts
import { WeirClient, WeirProblemError, items } from '@weir/sdk';

const weir = new WeirClient({ baseUrl: 'http://localhost:8080', apiKey: process.env.WEIR_API_KEY });
const health = await weir.getHealth();
try {
  for await (const dataset of items(weir.listDatasetsPages({ query: { limit: 100 } }))) console.log(dataset.name);
} catch (err) {
  if (err instanceof WeirProblemError) console.error(err.problem.detail, err.requestId);
  else throw err;
}
\`\`\`

Build it with \`npm install && npm run build\` in this folder (or \`npm run build:sdk\` at the repository's
root); a client project then depends on it with \`npm install <path to this folder>\`.

| method | route | summary |
|---|---|---|
${list.join('\n')}
`;
}
