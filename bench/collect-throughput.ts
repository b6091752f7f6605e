/**
 * `npx tsx bench/collect-throughput.ts`: single-hit POST /collect through the whole gateway against
 * a bare Express endpoint taking the same body, in one run. Each side runs in its own process
 * (collect-server.ts); the load generator (load.ts, a process of its own) drives them in turns over
 * N keep-alive connections (closed loop, bounded in time, best of two rounds) and prints req/s,
 * p50/p99, server CPU per hit and each side's ratio to bare, at each of several concurrencies
 * (BENCH_CONNECTIONS, default 64,256,1024: tracking traffic is many independent browsers).
 * BENCH_SIDES (default bare,full; must start with bare) may add `floor`: the bare endpoint plus only
 * the work required of every hit (the per-IP and per-site rate limits in one Redis script call, one
 * compare-and-set of the visitor's session state, an audit record through the audit plugin's writer,
 * a group-committed fdatasync'ed journal append), the lowest a /collect can cost on this machine;
 * and `full-without-<plugin>[+<plugin>...]`: the gateway with those plugins left out, to see what
 * they cost. The gateway acknowledges a hit once it is in its local journal (group-committed: one
 * write and fdatasync for every hit queued meanwhile) and ships the journal to ClickHouse in large
 * inserts (ANALYTICS_SHIP_INTERVAL_MS / ANALYTICS_SHIP_BATCH_ROWS from the environment, defaults
 * 1 s / 50,000 rows), so the insert's fixed cost is spread over a second's hits rather than over
 * the hits of one round trip. Afterwards every side but bare counts the hits it stored (shipped, or
 * journaled for floor): every acknowledged (2xx) hit must be there, else exit code 1. Uses the local
 * test PostgreSQL and Redis when reachable (BENCH_DATABASE_URL / BENCH_REDIS_URL override them),
 * else embedded PGlite and in-process state, and then skips floor, which needs both; chDB unless
 * BENCH_CLICKHOUSE_URL. Each side has its own schema, ClickHouse database and Redis key prefix,
 * removed at the end. BENCH_WITHOUT=audit leaves plugins out of the `full` side.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { serverCommand } from './compiled.js';
import { LoadGenerator, percentiles } from './load.js';
import { processCpuUs } from './load-machine.js';
import { reachable } from './reachable.js';

const CONCURRENCIES = (process.env.BENCH_CONNECTIONS ?? '64,256,1024').split(',').map(Number);
const MAX_CONNECTIONS = Math.max(...CONCURRENCIES);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = 2;
const WITHOUT = 'full-without-';
const REQUESTED_SIDES = (process.env.BENCH_SIDES ?? 'bare,full').split(',').filter(Boolean);
if (REQUESTED_SIDES[0] !== 'bare') throw new Error('BENCH_SIDES must start with bare');
for (const name of REQUESTED_SIDES) {
  if (!['bare', 'floor', 'full'].includes(name) && !(name.startsWith(WITHOUT) && name.length > WITHOUT.length)) {
    throw new Error(`BENCH_SIDES: unknown side ${name} (bare, floor, full, ${WITHOUT}<plugin>[+<plugin>...])`);
  }
}
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';

interface Side { name: string; url: string; trackingId: string; child: ChildProcess; lines: string[] }

/** How a side is named in the output. */
const label = (name: string) =>
  name === 'bare' ? 'bare Express' : name === 'full' ? 'gateway' : name.startsWith(WITHOUT) ? `gateway without ${name.slice(WITHOUT.length).replaceAll('+', ', ')}` : name;

async function start(name: string, env: Record<string, string>): Promise<Side> {
  const mode = name.startsWith(WITHOUT) ? 'full' : name;
  // full-without-a+b leaves plugins a and b out; plain `full` leaves out BENCH_WITHOUT's, if any.
  const without = name.startsWith(WITHOUT) ? { BENCH_WITHOUT: name.slice(WITHOUT.length).replaceAll('+', ',') } : {};
  const profile = process.env.BENCH_PROFILE && mode === 'full' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const child = spawn(process.execPath, [...profile, ...serverCommand('bench/collect-server.ts'), mode], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production', LOG_LEVEL: 'warn', ...without, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const [url, trackingId] = await new Promise<[string, string]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} server did not start`)), 90_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      if (line.startsWith('listening ')) {
        clearTimeout(timer);
        const [, u, t] = line.split(' ');
        resolve([u!, t!]);
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} server exited with ${code}`)));
  });
  return { name, url, trackingId, child, lines };
}

/** Stands for the client id in the body: the load generator puts a new UUID in its place in every hit, as real traffic has. */
const CLIENT_ID = '00000000-0000-4000-8000-000000000000';

/** One hit as an analytics.js-style JSON body. */
const hit = (side: Side) => ({
  method: 'POST' as const,
  path: '/collect',
  headers: { 'content-type': 'application/json', 'user-agent': UA },
  body: JSON.stringify({ v: '1', tid: side.trackingId, cid: CLIENT_ID, t: 'pageview', dh: 'bench.example', dp: '/products/kettle', dt: 'Kettle', dr: 'https://www.google.com/' }),
  uniqueToken: CLIENT_ID,
});

let generator: LoadGenerator;

interface Result { rps: number; p50: number; p99: number; ok: number; other: number; cpuPerHit: number; mainCpuPerHit: number; clientCpuUsPerHit: number }

/** CPU seconds (user + system) a process, or one of its threads, has used so far (NaN once it has gone). */
const cpuSeconds = (pid: number, thread?: number): number => (processCpuUs(pid, thread) ?? NaN) / 1e6;

/** Closed loop; `ok` counts the 2xx answers (the acknowledged hits), `other` the rest and requests left unanswered. */
async function load(side: Side, seconds: number, connections: number): Promise<Result> {
  const cpu0 = cpuSeconds(side.child.pid!);
  // The main (JavaScript) thread apart: the rest is libuv's pool and, on the gateway, chDB's insert and merge threads.
  const main0 = cpuSeconds(side.child.pid!, side.child.pid!);
  const sample = await generator.run({ url: side.url, request: hit(side), connections, seconds });
  const cpu = cpuSeconds(side.child.pid!) - cpu0;
  const main = cpuSeconds(side.child.pid!, side.child.pid!) - main0;
  const { ok } = sample;
  const other = sample.other + sample.failed;
  const [p50, p99] = percentiles([sample.latencyMs], [0.5, 0.99]).map((p) => (Number.isNaN(p) ? 0 : p)) as [number, number];
  return { rps: ok / sample.seconds, p50, p99, ok, other, cpuPerHit: (cpu * 1000) / (ok + other), mainCpuPerHit: (main * 1000) / (ok + other), clientCpuUsPerHit: sample.clientCpuUs / (ok + other) };
}

const fmt = (r: Result) => `${r.rps.toFixed(0).padStart(6)} acknowledged hits/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  server CPU ${r.cpuPerHit.toFixed(2)} ms/hit (main thread ${r.mainCpuPerHit.toFixed(2)}), load generator ${r.clientCpuUsPerHit.toFixed(1)} µs/hit  (${r.ok} ok, ${r.other} other)`;

/** Removes what the run left in Redis: sessions' first-visit flags live for two years, and runs piled up hundreds of thousands of keys. */
async function dropRedisKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  for await (const keys of redis.scanStream({ match: `${prefix}*`, count: 1000 }) as AsyncIterable<string[]>) if (keys.length) await redis.unlink(...keys);
  await redis.quit();
}

async function main(): Promise<void> {
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const [pgUp, redisUp] = await Promise.all([reachable(databaseUrl), reachable(redisUrl)]);
  const names = REQUESTED_SIDES.filter((name) => name !== 'floor' || (pgUp && redisUp));
  const schema = `weir_bench_collect_${process.pid}`;
  const redisPrefix = `weir:bench:collect:${process.pid}:`;
  const env = (i: number): Record<string, string> => ({
    DATA_DIR: dataDirs[i]!,
    DATABASE_SCHEMA: `${schema}_${i}`,
    CLICKHOUSE_DATABASE: `${schema}_${i}`,
    REDIS_KEY_PREFIX: `${redisPrefix}${i}:`,
    // The limiter still runs on every hit; it just never refuses one here.
    RATE_LIMIT_POLICIES: JSON.stringify({ tracking: { burst: 1_000_000_000, rate: 1_000_000 } }),
    ...(pgUp && { DATABASE_URL: databaseUrl }),
    ...(redisUp && { REDIS_URL: redisUrl }),
    ...(process.env.BENCH_CLICKHOUSE_URL && { CLICKHOUSE_URL: process.env.BENCH_CLICKHOUSE_URL }),
  });
  const stores = `${pgUp ? 'PostgreSQL' : 'PGlite'} (websites, audit), ${redisUp ? 'Redis' : 'in-process'} (sessions, rate limits), ${process.env.BENCH_CLICKHOUSE_URL ? 'ClickHouse' : 'chDB'} (hits)`;
  const ship = `journal shipped every ${process.env.ANALYTICS_SHIP_INTERVAL_MS ?? 1000} ms or ${process.env.ANALYTICS_SHIP_BATCH_ROWS ?? 50_000} rows`;
  const sideList = names.length > 2 || names[1] !== 'full' ? `; sides ${names.join(', ')}` : '';
  console.log(`stores: ${stores}; ${ship}; ${CONCURRENCIES.join(', ')} keep-alive connections, ${SECONDS} s per measurement, ${os.cpus().length} CPUs${sideList}${process.env.BENCH_WITHOUT ? `; without ${process.env.BENCH_WITHOUT}` : ''}`);
  if (names.length < REQUESTED_SIDES.length) {
    const down = [!pgUp && `PostgreSQL (${databaseUrl})`, !redisUp && `Redis (${redisUrl})`].filter(Boolean).join(' and ');
    console.log(`skipping floor: it needs PostgreSQL and Redis, and ${down} cannot be reached`);
  }
  if (names.length < 2) throw new Error('BENCH_SIDES: nothing to compare with bare');
  const dataDirs = names.map((name) => mkdtempSync(path.join(os.tmpdir(), `weir-bench-collect-${name}-`)));
  const sides: Side[] = [];
  const acknowledged = new Map<string, number>(names.map((name) => [name, 0]));
  try {
    for (const [i, name] of names.entries()) sides.push(await start(name, env(i)));
    generator = LoadGenerator.start();
    // Warm-up, opening every connection; what it acknowledges must be stored too.
    for (const side of sides) acknowledged.set(side.name, (await load(side, 1, MAX_CONNECTIONS)).ok);
    const best = (rs: Result[]) => rs.reduce((a, b) => (b.rps > a.rps ? b : a));
    const width = Math.max(14, ...names.map((name) => label(name).length + 2));
    const summary = new Map<string, string[]>(names.slice(1).map((name) => [name, []]));
    for (const connections of CONCURRENCIES) {
      const runs = new Map<string, Result[]>(names.map((name) => [name, []]));
      for (let round = 0; round < ROUNDS; round++) {
        for (const side of sides) {
          const r = await load(side, SECONDS, connections);
          acknowledged.set(side.name, acknowledged.get(side.name)! + r.ok);
          runs.get(side.name)!.push(r);
        }
      }
      const bare = best(runs.get('bare')!);
      console.log(`\nsingle-hit POST /collect, ${connections} connections (closed loop, best of ${ROUNDS})`);
      for (const name of names) console.log(`  ${label(name).padEnd(width)}${fmt(best(runs.get(name)!))}`);
      for (const name of names.slice(1)) {
        const ratio = (best(runs.get(name)!).rps / bare.rps) * 100;
        const target = name === 'full' ? '  (target >= 70%)' : '';
        console.log(`  ratio ${label(name)}/bare: ${ratio.toFixed(1)}%${target}`);
        summary.get(name)!.push(`${connections}: ${ratio.toFixed(1)}%${name === 'full' && ratio >= 70 ? ' (met)' : ''}`);
      }
    }
    console.log('');
    for (const [name, ratios] of summary) console.log(`ratio by connections${name === 'full' ? '' : ` (${label(name)})`}: ${ratios.join(', ')}`);
  } finally {
    await generator?.close();
    await Promise.all(sides.map((s) => new Promise((r) => (s.child.once('exit', r), s.child.kill('SIGTERM')))));
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
    if (pgUp) {
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      for (const i of names.keys()) await c.query(`DROP SCHEMA IF EXISTS "${schema}_${i}" CASCADE`);
      await c.end();
    }
    if (redisUp) await dropRedisKeys(redisUrl, redisPrefix);
  }
  console.log('');
  for (const side of sides.slice(1)) {
    const stored = Number(side.lines.find((l) => l.startsWith('stored '))?.slice(7) ?? NaN);
    const ack = acknowledged.get(side.name)!;
    const which = names.length > 2 || side.name !== 'full' ? ` (${side.name})` : '';
    console.log(`durability${which}: ${ack} hits acknowledged, ${stored} stored ${stored === ack ? '(all of them)' : '(MISMATCH)'}`);
    if (stored !== ack) process.exitCode = 1;
  }
}

await main();
