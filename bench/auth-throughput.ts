/**
 * Authenticated + authorized throughput against the same handler with the auth plugins off, as a
 * ratio, for API keys and for JWTs (target: at least 0.85).
 *
 *   npx tsx bench/auth-throughput.ts [--seconds 3] [--rounds 3] [--connections 32]
 *
 * The gateway runs in a child process (so the load generator doesn't share its event loop) with two
 * apps on the same embedded stores: one with the auth and authz plugins, one without. Both serve
 * GET /v1/datasets/{datasetId} with the same trivial handler, the dataset resolved from memory, and
 * the same other plugins (request id, body, validation). Rounds alternate between the variants so
 * drift on a noisy machine hits them alike. Loopback only.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { serverCommand } from './compiled.js';

const DATASET = 'ds_BenchDataset0001';
const PATH = `/v1/datasets/${DATASET}`;

interface Ready {
  bare: number;
  authed: number;
  apiKey: string;
  jwt: string;
}

if (process.argv[2] === 'serve') await serve();
else await main();

async function serve(): Promise<void> {
  const { pino } = await import('pino');
  const { notImplemented } = await import('../generated/handlers.js');
  const { operationIds } = await import('../generated/registry.js');
  const { createPlugins } = await import('../plugins/index.js');
  const { buildApp, storeConfig } = await import('../src/app.js');
  const { loadConfig } = await import('../src/config.js');
  const { createAdminKey } = await import('../src/identity/bootstrap.js');
  const { openStores } = await import('../src/stores/index.js');

  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'weir-bench-auth-'));
  const config = loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'silent', DATA_DIR: dataDir, BOOTSTRAP_ADMIN: 'false', API_KEY_PEPPER: 'bench-pepper-'.padEnd(40, 'x') });
  const logger = pino({ level: 'silent' });
  const stores = await openStores(storeConfig(config), logger);
  const body = { id: DATASET, name: 'bench' };
  const handlers = Object.fromEntries(operationIds.map((id) => [id, notImplemented])) as Record<string, unknown>;
  handlers.getDataset = () => ({ status: 200, body });
  const kept = new Set(['request-id', 'deprecation', 'body', 'validation']);
  const common = {
    logger,
    stores,
    handlers: handlers as never,
    resourceResolvers: { dataset: async (id: string) => (id === DATASET ? { tenant: 'bench' } : undefined) },
  };
  const authed = await buildApp(config, { ...common, plugins: createPlugins().filter((p) => kept.has(p.name) || p.name === 'auth' || p.name === 'authz') });
  const bare = await buildApp(config, { ...common, plugins: createPlugins().filter((p) => kept.has(p.name)) });
  const identity = authed.weir.deps.identity;
  const apiKey = (await identity.apiKeys.create({ tenant: 'bench', name: 'bench', roles: ['viewer'], scopes: [], expiresAt: null, createdBy: 'bench' })).secret;
  const client = (await identity.clients.create({ clientId: 'bench-client', tenant: 'bench', roles: ['viewer'], scopes: [] })).client;
  const jwt = (await identity.tokens.issue(client, [])).accessToken;
  const listen = (app: typeof bare) =>
    new Promise<number>((resolve) => {
      const server = app.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
  const ready: Ready = { bare: await listen(bare), authed: await listen(authed), apiKey, jwt };
  process.send!(ready);
  // CPU time per request is steadier than throughput on a shared machine: the parent asks around each measurement.
  process.on('message', () => {
    const { user, system } = process.cpuUsage();
    process.send!({ cpuMicros: user + system });
  });
  process.on('disconnect', () => {
    rmSync(dataDir, { recursive: true, force: true });
    process.exit(0);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: 'string', default: '3' }, rounds: { type: 'string', default: '3' }, connections: { type: 'string', default: '32' } },
  });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const connections = Number(values.connections);
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const server = serverCommand('bench/auth-throughput.ts');
  const child = fork(server.at(-1)!, ['serve'], { execArgv: [...server.slice(0, -1), ...profile], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = await new Promise<Ready>((resolve, reject) => {
    child.once('message', (m) => resolve(m as Ready));
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });

  const variants = {
    bare: { port: ready.bare, headers: {} },
    apiKey: { port: ready.authed, headers: { 'x-api-key': ready.apiKey } },
    jwt: { port: ready.authed, headers: { authorization: `Bearer ${ready.jwt}` } },
  };
  // BENCH_ONLY=apiKey (for a CPU profile of one variant, with BENCH_CPU_PROF=<dir>).
  const names = (Object.keys(variants) as (keyof typeof variants)[]).filter((n) => !process.env.BENCH_ONLY || n === process.env.BENCH_ONLY || n === 'bare');
  const perRound: Record<keyof typeof variants, number>[] = [];
  const cpuPerRequest = { bare: [] as number[], apiKey: [] as number[], jwt: [] as number[] };
  const serverCpu = () =>
    new Promise<number>((resolve) => {
      child.once('message', (m) => resolve((m as { cpuMicros: number }).cpuMicros));
      child.send('cpu');
    });
  // Warm-up: JIT, caches (API key lookup, verified token, decision).
  for (const v of Object.values(variants)) await load(v.port, v.headers, 1, connections);
  for (let round = 0; round < rounds; round++) {
    // The order rotates each round, and each measurement starts on warm connections (an uncounted
    // half second), since the first moments after switching variants measure connection churn.
    const counts = { bare: 0, apiKey: 0, jwt: 0 };
    for (const name of names.map((_, i) => names[(i + round) % names.length]!)) {
      const v = variants[name];
      await load(v.port, v.headers, 0.5, connections);
      const cpuBefore = await serverCpu();
      counts[name] = await load(v.port, v.headers, seconds, connections);
      cpuPerRequest[name].push(((await serverCpu()) - cpuBefore) / counts[name]);
    }
    perRound.push(counts);
  }
  child.disconnect();
  // Ratios within a round compare measurements seconds apart; their median shrugs off a noisy round.
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const ratios = (name: keyof typeof variants) => perRound.map((r) => r[name] / r.bare);
  const rate = (name: keyof typeof variants) => median(perRound.map((r) => r[name] / seconds));
  const line = (label: string, name: keyof typeof variants) => {
    const rs = ratios(name);
    const ratio = name === 'bare' ? '' : `   ratio ${median(rs).toFixed(3)} (median; rounds ${Math.min(...rs).toFixed(2)}-${Math.max(...rs).toFixed(2)})`;
    const cpu = median(cpuPerRequest[name]);
    const cpuRatio = name === 'bare' ? '' : `, CPU ratio ${(median(cpuPerRequest.bare) / cpu).toFixed(3)}`;
    return `${label.padEnd(22)} ${rate(name).toFixed(0).padStart(8)} req/s, ${cpu.toFixed(0).padStart(4)} µs server CPU/request${ratio}${cpuRatio}`;
  };
  console.log(`auth throughput: GET ${PATH}, ${connections} keep-alive connections, ${rounds} rounds x ${seconds} s per variant, loopback`);
  console.log(line('bare handler', 'bare'));
  if (names.includes('apiKey')) console.log(line('API key + authz', 'apiKey'));
  if (names.includes('jwt')) console.log(line('JWT (EdDSA) + authz', 'jwt'));
  console.log('target: ratio >= 0.85 (CPU ratio: bare CPU per request / this CPU per request, the throughput ratio of a CPU-bound server)');
}

/** Requests over `connections` keep-alive connections for `seconds`; answers how many came back 200. */
async function load(port: number, headers: Record<string, string>, seconds: number, connections: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const until = performance.now() + seconds * 1000;
  let ok = 0;
  let failed = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: PATH, agent, headers }, (res) => {
        if (res.statusCode === 200) ok++;
        else failed++;
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < until) await one();
    }),
  );
  agent.destroy();
  if (failed) throw new Error(`${failed} requests did not answer 200 on port ${port}`);
  return ok;
}
