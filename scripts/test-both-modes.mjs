#!/usr/bin/env node
// `npm test`: the whole suite on the embedded stores (PGlite, chDB, in-process shared state), then
// again against real PostgreSQL and Redis (TEST_DATABASE_URL / TEST_REDIS_URL, defaulting to the
// local servers). Without those servers the second pass is skipped with a notice, unless CI=true or
// WEIR_TEST_REQUIRE_REAL=1, where it fails. Extra arguments go to vitest (e.g. a file filter).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';

const args = process.argv.slice(2);
const only = args.includes('--embedded-only') ? 'embedded' : args.includes('--real-only') ? 'real' : undefined;
const vitestArgs = args.filter((a) => a !== "--embedded-only" && a !== "--real-only");
const databaseUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const requireReal = process.env.CI === 'true' || process.env.WEIR_TEST_REQUIRE_REAL === '1';

function reachable(url) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: u.hostname, port: Number(u.port) }, () => {
      socket.end();
      resolve(true);
    });
    socket.setTimeout(1500, () => {
      socket.destroy();
      resolve(false);
    });
    socket.on('error', () => resolve(false));
  });
}

function run(mode) {
  mkdirSync('test/.tmp', { recursive: true });
  const report = `test/.tmp/vitest-${mode}.json`;
  console.log(`\n=== tests on ${mode === 'real' ? `real PostgreSQL (${databaseUrl}) and Redis (${redisUrl})` : 'embedded stores'} ===\n`);
  const env = { ...process.env, WEIR_TEST_STORES: mode, TEST_DATABASE_URL: databaseUrl, TEST_REDIS_URL: redisUrl };
  const r = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...vitestArgs], {
    stdio: 'inherit',
    env,
  });
  let passed = 0;
  let failed = 0;
  try {
    const json = JSON.parse(readFileSync(report, 'utf8'));
    passed = json.numPassedTests;
    failed = json.numFailedTests + (json.numRuntimeErrorTestSuites ?? 0);
  } catch {
    failed += 1;
  }
  return { ok: r.status === 0, passed, failed };
}

const results = [];
if (only !== 'real') results.push(run('embedded'));
if (only !== 'embedded') {
  const [pg, redis] = await Promise.all([reachable(databaseUrl), reachable(redisUrl)]);
  if (pg && redis) results.push(run('real'));
  else {
    const missing = [!pg && `PostgreSQL at ${databaseUrl}`, !redis && `Redis at ${redisUrl}`].filter(Boolean).join(' and ');
    const msg = `real-store pass: ${missing} not reachable (set TEST_DATABASE_URL / TEST_REDIS_URL)`;
    if (requireReal) {
      console.error(`\n${msg}; failing because CI=true or WEIR_TEST_REQUIRE_REAL=1`);
      results.push({ ok: false, passed: 0, failed: 1 });
    } else console.warn(`\nSkipped the ${msg}.`);
  }
}
const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
const ok = results.every((r) => r.ok);
console.log(`\ntests: ${passed} passed, ${failed} failed`);
process.exit(ok && failed === 0 ? 0 : 1);
