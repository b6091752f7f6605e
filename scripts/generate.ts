/**
 * `npm run generate`: bundles openapi/ and writes generated/ (the bundled spec, TypeScript types,
 * the route registry, the typed handler map and the client SDK). Deterministic: the same spec gives
 * the same bytes. `npm run generate -- --check` writes nothing and fails when generated/ is stale.
 */
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle, createConfig } from '@redocly/openapi-core';
import openapiTS, { astToString } from 'openapi-typescript';
import { banner, emitRegistry } from './generator/emit-registry.js';
import { emitHandlers } from './generator/emit-handlers.js';
import { emitClient, emitSdkIndex, emitSdkPackageJson, emitSdkReadme, emitSdkTsconfig } from './generator/emit-sdk.js';
import { readSpec, SpecError } from './generator/model.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface GenerateOptions {
  specPath?: string;
  outDir?: string;
}

/** Everything generated/ should hold, path (relative to generated/) to contents. */
export async function generate(options: GenerateOptions = {}): Promise<Map<string, string>> {
  const specPath = options.specPath ?? join(root, 'openapi/openapi.yaml');
  const doc = await bundleSpec(specPath);
  const spec = readSpec(doc);
  const ast = await openapiTS(doc as never, { alphabetize: true, defaultNonNullable: false });
  const runtime = await readFile(join(root, 'scripts/generator/sdk-runtime.ts'), 'utf8');
  return new Map([
    ['openapi.json', `${JSON.stringify(doc, null, 2)}\n`],
    ['registry.ts', emitRegistry(spec)],
    ['handlers.ts', emitHandlers(spec)],
    ['types.ts', `${banner}\nexport type * from './sdk/src/types.js';\n`],
    ['sdk/src/types.ts', `${banner}\n${astToString(ast)}`],
    ['sdk/src/runtime.ts', `${banner}\n${runtime}`],
    ['sdk/src/client.ts', emitClient(spec)],
    ['sdk/src/index.ts', emitSdkIndex()],
    ['sdk/package.json', emitSdkPackageJson(spec)],
    ['sdk/tsconfig.json', emitSdkTsconfig()],
    ['sdk/README.md', emitSdkReadme(spec)],
  ]);
}

/** Bundles a multi-file spec into one document with local refs only, components sorted by name. */
export async function bundleSpec(specPath: string): Promise<Record<string, any>> {
  const config = await createConfig({});
  const result = await bundle({ ref: specPath, config, dereference: false });
  const errors = result.problems.filter((p) => p.severity === 'error');
  if (errors.length) {
    throw new SpecError(
      errors.map((p) => `${p.message} (${p.location.map((l) => `${relative(root, l.source.absoluteRef)}${l.pointer}`).join(', ')})`),
    );
  }
  const doc = result.bundle.parsed as Record<string, any>;
  for (const [kind, map] of Object.entries<Record<string, unknown>>(doc.components ?? {})) {
    doc.components[kind] = Object.fromEntries(Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
  return doc;
}

async function listFiles(dir: string, base = dir): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    const full = join(dir, e.name);
    const rel = relative(base, full);
    if (rel === 'sdk/dist' || rel === 'sdk/node_modules') continue;
    if (e.isDirectory()) out.push(...(await listFiles(full, base)));
    else out.push(rel);
  }
  return out;
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const outDir = join(root, 'generated');
  let files: Map<string, string>;
  try {
    files = await generate();
  } catch (err) {
    if (err instanceof SpecError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const existing = await listFiles(outDir);
  const stale: string[] = [];
  for (const [path, contents] of files) {
    const current = await readFile(join(outDir, path), 'utf8').catch(() => undefined);
    if (current === contents) continue;
    stale.push(path);
    if (!check) {
      await mkdir(dirname(join(outDir, path)), { recursive: true });
      await writeFile(join(outDir, path), contents);
    }
  }
  const extra = existing.filter((p) => !files.has(p));
  if (!check) for (const p of extra) await rm(join(outDir, p));
  if (check) {
    if (stale.length || extra.length) {
      console.error(
        `generated/ is out of date with openapi/ (changed: ${stale.join(', ') || 'none'}; not generated any more: ${extra.join(', ') || 'none'}).\nRun \`npm run generate\` and commit the result.`,
      );
      process.exit(1);
    }
    console.log(`generated/ is up to date (${files.size} files).`);
    return;
  }
  console.log(`generated/: ${stale.length} of ${files.size} files written${extra.length ? `, ${extra.length} removed` : ''}.`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
