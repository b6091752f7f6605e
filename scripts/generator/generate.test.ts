import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../generate.js';
import { readSpec, SpecError } from './model.js';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const fixture = join(root, 'scripts/generator/fixtures/mini.yaml');
let work: string;

beforeAll(async () => {
  await mkdir(join(root, 'test/.tmp'), { recursive: true });
  work = await mkdtemp(join(root, 'test/.tmp/gen-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Generates from `spec` text into `${work}/<name>/generated` and type-checks `handlers` against it. */
async function typecheck(name: string, spec: string, handlers: string): Promise<{ ok: boolean; output: string }> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'spec.yaml'), spec);
  const files = await generate({ specPath: join(dir, 'spec.yaml') });
  for (const [path, contents] of files) {
    await mkdir(dirname(join(dir, 'generated', path)), { recursive: true });
    await writeFile(join(dir, 'generated', path), contents);
  }
  await writeFile(join(dir, 'impl.ts'), handlers);
  await writeFile(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', noEmit: true, skipLibCheck: true, types: ['node'] },
      files: ['impl.ts', 'generated/sdk/src/index.ts'],
    }),
  );
  try {
    const r = await run(join(root, 'node_modules/.bin/tsc'), ['-p', join(dir, 'tsconfig.json')], { cwd: dir });
    return { ok: true, output: r.stdout };
  } catch (err) {
    return { ok: false, output: String((err as { stdout?: string }).stdout) };
  }
}

const goodHandlers = `
import { notImplemented, type HandlerMap } from './generated/handlers.js';
export const handlers: HandlerMap = {
  listThings: ({ query }) => ({ status: 200, body: { items: [{ name: 'a', size: query.limit ?? 1 }], next_cursor: null } }),
  createThing: ({ body }) => ({ status: 201, body: { name: body.name, size: 3 } }),
  deleteThing: notImplemented,
};
`;

describe('npm run generate', () => {
  it('is deterministic', async () => {
    const a = await generate({ specPath: fixture });
    const b = await generate({ specPath: fixture });
    expect([...a.keys()]).toEqual([...b.keys()]);
    for (const [k, v] of a) expect(b.get(k), k).toBe(v);
  });

  it('types handlers so that a spec change which breaks one fails tsc', async () => {
    const spec = await readFile(fixture, 'utf8');
    const before = await typecheck('before', spec, goodHandlers);
    expect(before.output).toBe('');
    expect(before.ok).toBe(true);

    // Thing.size becomes a string: the handlers returning a number no longer fit.
    const changed = spec.replace('size: { type: integer }', 'size: { type: string }');
    expect(changed).not.toBe(spec);
    const after = await typecheck('after', changed, goodHandlers);
    expect(after.ok).toBe(false);
    expect(after.output).toMatch(/impl\.ts\(\d+,\d+\): error TS2322/);
  }, 120_000);

  it('fails tsc on a missing or misspelt handler', async () => {
    const spec = await readFile(fixture, 'utf8');
    const missing = await typecheck('missing', spec, goodHandlers.replace('deleteThing: notImplemented,', ''));
    expect(missing.ok).toBe(false);
    expect(missing.output).toContain("Property 'deleteThing' is missing");
    const misspelt = await typecheck('misspelt', spec, goodHandlers.replace('deleteThing:', 'delete_thing:'));
    expect(misspelt.ok).toBe(false);
    expect(misspelt.output).toContain('delete_thing');
  }, 120_000);
});

describe('reading the spec', () => {
  const base = {
    openapi: '3.1.0',
    info: { title: 't', version: '1' },
    components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
  };
  const withOp = (op: Record<string, unknown>) => ({
    ...base,
    paths: { '/x/{id}': { get: { operationId: 'getX', parameters: [{ name: 'id', in: 'path', required: true }], responses: { '200': { description: 'ok' } }, ...op } } },
  });
  const problems = (doc: object) => {
    try {
      readSpec(doc);
      return [];
    } catch (err) {
      expect(err).toBeInstanceOf(SpecError);
      return (err as SpecError).problems;
    }
  };

  it('reads extensions under camelCase names', () => {
    const spec = readSpec(withOp({ 'x-weir-authz': { resource: 'x', action: 'read', id: 'id' }, 'x-weir-rate-limit': { policy: 'default', cost: 2 } }));
    expect(spec.operations[0]).toMatchObject({ extensions: { authz: { resource: 'x', action: 'read', id: 'id' }, rateLimit: { policy: 'default', cost: 2 } }, expressPath: '/x/:id' });
  });

  it('refuses unknown and malformed x-weir extensions', () => {
    expect(problems(withOp({ security: [], 'x-weir-authz': { resource: 'x' } }))).toEqual([expect.stringContaining('x-weir-authz.action')]);
    expect(problems(withOp({ security: [], 'x-weir-ratelimit': { policy: 'a' } }))).toEqual([expect.stringContaining('unknown extension x-weir-ratelimit')]);
    expect(problems(withOp({ 'x-weir-authz': { resource: 'x', action: 'read', id: 'nope' } }))).toEqual([expect.stringContaining('not a path parameter')]);
  });

  it('refuses a deprecation without its date, an unknown security scheme, and a protected operation without x-weir-authz', () => {
    const authz = { 'x-weir-authz': { resource: 'x', action: 'read', id: 'id' } };
    expect(problems(withOp({ ...authz, deprecated: true }))).toEqual([expect.stringContaining('x-weir-deprecated-at')]);
    expect(problems(withOp({ ...authz, security: [{ nope: [] }] }))).toEqual([expect.stringContaining('unknown security scheme nope')]);
    expect(problems(withOp({ security: [{ bearerAuth: [] }] }))).toEqual([expect.stringContaining('has no x-weir-authz')]);
    expect(problems(withOp({ security: [] }))).toEqual([]);
  });
});
