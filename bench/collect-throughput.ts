/**
 * `npx tsx bench/collect-throughput.ts`: single-hit POST /collect through the whole gateway against
 * a bare Express endpoint taking the same body, in one run. Each side runs in its own process; the
 * load generator (load.ts, a process of its own) drives them in turns over N keep-alive
 * connections (closed loop, bounded in time, best of two rounds) and prints req/s, p50/p99 and the
 * ratio, at each of several concurrencies (BENCH_CONNECTIONS, default 64,256,1024: tracking traffic
 * is many independent browsers). The
 * gateway acknowledges a hit once it is in its local journal (group-committed: one write and
 * fdatasync for every hit queued meanwhile) and ships the journal to ClickHouse in large inserts
 * (ANALYTICS_SHIP_INTERVAL_MS / ANALYTICS_SHIP_BATCH_ROWS from the environment, defaults 1 s /
 * 50,000 rows), so the insert's fixed cost is spread over a second's hits rather than over the
 * hits of one round trip. Both sides are driven the same way. Afterwards the gateway ships what is
 * left, counts the hits it stored: every acknowledged (2xx) hit must be there. Uses the local test PostgreSQL and Redis when
 * reachable (BENCH_DATABASE_URL / BENCH_REDIS_URL override them), else embedded PGlite and
 * in-process state; chDB unless BENCH_CLICKHOUSE_URL. BENCH_WITHOUT=audit leaves plugins out.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { serverCommand } from './compiled.js';
import { LoadGenerator, percentiles } from './load.js';
import { reachable } from './reachable.js';

const CONCURRENCIES = (process.env.BENCH_CONNECTIONS ?? '64,256,1024').split(',').map(Number);
const MAX_CONNECTIONS = Math.max(...CONCURRENCIES);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = 2;
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';

interface Side { url: string; trackingId: string; child: ChildProcess; lines: string[] }

async function start(mode: 'bare' | 'full', env: Record<string, string>): Promise<Side> {
  const profile = process.env.BENCH_PROFILE && mode === 'full' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const child = spawn(process.execPath, [...profile, ...serverCommand('bench/collect-server.ts'), mode], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const [url, trackingId] = await new Promise<[string, string]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode} server did not start`)), 90_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      if (line.startsWith('listening ')) {
        clearTimeout(timer);
        const [, u, t] = line.split(' ');
        resolve([u!, t!]);
      }
    });
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
  });
  return { url, trackingId, child, lines };
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

/** CPU seconds (user + system) a process, or one of its threads, has used so far, from /proc (Linux). */
function cpuSeconds(pid: number, thread?: number): number {
  try {
    const fields = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

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

async function main(): Promise<void> {
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const [pgUp, redisUp] = await Promise.all([reachable(databaseUrl), reachable(redisUrl)]);
  const schema = `weir_bench_collect_${process.pid}`;
  const dataDirs = ['bare', 'full'].map((m) => mkdtempSync(path.join(os.tmpdir(), `weir-bench-collect-${m}-`)));
  const env = (i: number): Record<string, string> => ({
    DATA_DIR: dataDirs[i]!,
    DATABASE_SCHEMA: schema,
    CLICKHOUSE_DATABASE: `weir_bench_collect_${process.pid}`,
    REDIS_KEY_PREFIX: `weir:bench:collect:${process.pid}:`,
    // The limiter still runs on every hit; it just never refuses one here.
    RATE_LIMIT_POLICIES: JSON.stringify({ tracking: { burst: 1_000_000_000, rate: 1_000_000 } }),
    ...(pgUp && { DATABASE_URL: databaseUrl }),
    ...(redisUp && { REDIS_URL: redisUrl }),
    ...(process.env.BENCH_CLICKHOUSE_URL && { CLICKHOUSE_URL: process.env.BENCH_CLICKHOUSE_URL }),
  });
  const stores = `${pgUp ? 'PostgreSQL' : 'PGlite'} (websites, audit), ${redisUp ? 'Redis' : 'in-process'} (sessions, rate limits), ${process.env.BENCH_CLICKHOUSE_URL ? 'ClickHouse' : 'chDB'} (hits)`;
  const ship = `journal shipped every ${process.env.ANALYTICS_SHIP_INTERVAL_MS ?? 1000} ms or ${process.env.ANALYTICS_SHIP_BATCH_ROWS ?? 50_000} rows`;
  console.log(`stores: ${stores}; ${ship}; ${CONCURRENCIES.join(', ')} keep-alive connections, ${SECONDS} s per measurement, ${os.cpus().length} CPUs${process.env.BENCH_WITHOUT ? `; without ${process.env.BENCH_WITHOUT}` : ''}`);
  const bare = await start('bare', env(0));
  const full = await start('full', env(1));
  generator = LoadGenerator.start();
  let acknowledged = 0;
  try {
    for (const side of [bare, full]) acknowledged += (await load(side, 1, MAX_CONNECTIONS)).ok * (side === full ? 1 : 0); // warm-up, opening every connection
    const best = (rs: Result[]) => rs.reduce((a, b) => (b.rps > a.rps ? b : a));
    const summary: string[] = [];
    for (const connections of CONCURRENCIES) {
      const runs: Record<'bare' | 'full', Result[]> = { bare: [], full: [] };
      for (let round = 0; round < ROUNDS; round++) {
        runs.bare.push(await load(bare, SECONDS, connections));
        const f = await load(full, SECONDS, connections);
        acknowledged += f.ok;
        runs.full.push(f);
      }
      const [b, f] = [best(runs.bare), best(runs.full)];
      const ratio = (f.rps / b.rps) * 100;
      console.log(`\nsingle-hit POST /collect, ${connections} connections (closed loop, best of ${ROUNDS})`);
      console.log(`  bare Express  ${fmt(b)}`);
      console.log(`  gateway       ${fmt(f)}`);
      console.log(`  ratio gateway/bare: ${ratio.toFixed(1)}%  (target >= 70%)`);
      summary.push(`${connections}: ${ratio.toFixed(1)}%${ratio >= 70 ? ' (met)' : ''}`);
    }
    console.log(`\nratio by connections: ${summary.join(', ')}`);
  } finally {
    await generator.close();
    const exited = (s: Side) => new Promise((r) => (s.child.once('exit', r), s.child.kill('SIGTERM')));
    await Promise.all([exited(bare), exited(full)]);
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
    if (pgUp) {
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    }
  }
  const stored = Number(full.lines.find((l) => l.startsWith('stored '))?.slice(7) ?? NaN);
  console.log(`\ndurability: ${acknowledged} hits acknowledged, ${stored} stored ${stored === acknowledged ? '(all of them)' : '(MISMATCH)'}`);
  if (stored !== acknowledged) process.exitCode = 1;
}

await main();
