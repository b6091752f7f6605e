import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(root, '.bench-dist');
let compiled = false;

/**
 * The node arguments that run a bench server script (`bench/x.ts`). By default the servers run as
 * what ships: the project compiled by tsc (the Docker image runs `node dist/src/main.js`), into
 * .bench-dist/ once per bench run. tsx, which the benches themselves run under, transpiles with
 * esbuild's keep-names helper: every named function made per request costs a
 * defineProperty call, which inflates the fuller chain's cost. BENCH_RUNTIME=tsx runs the sources
 * through tsx instead (quicker to start, e.g. while iterating with profiles).
 */
export function serverCommand(script: string): string[] {
  const source = path.join(root, script);
  if (process.env.BENCH_RUNTIME === 'tsx') return ['--import', 'tsx', source];
  if (!compiled) {
    console.error('compiling the gateway with tsc into .bench-dist/ (BENCH_RUNTIME=tsx skips this) ...');
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json'), '--noEmit', 'false', '--outDir', OUT], { stdio: 'inherit' });
    compiled = true;
  }
  return [path.join(OUT, script.replace(/\.ts$/, '.js'))];
}
