/**
 * `npx tsx bench/chain-throughput.ts`: the full gateway chain against the bare handler, in one run.
 * Both serve GET /healthz from their own process; this process drives them in turns over N
 * keep-alive connections (bounded in time), then at half of the full chain's peak rate, and prints
 * throughput, p50/p99 and the ratios. Uses real PostgreSQL/Redis when BENCH_DATABASE_URL /
 * BENCH_REDIS_URL are set (defaults: the local test servers if reachable), else embedded stores.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { serverCommand } from './compiled.js';
import { reachable } from './reachable.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = 2;
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Side { url: string; child: ChildProcess; agent: Agent }

async function start(mode: 'bare' | 'full', env: Record<string, string>): Promise<Side> {
  // BENCH_PROFILE=<dir>: each server writes V8 CPU profiles under <dir>/bare and <dir>/full when it
  // exits (the largest is the main thread's); BENCH_HEAP_PROFILE=<dir>: the full chain's allocations (see chain-server.ts).
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.join(process.env.BENCH_PROFILE, mode)}`] : [];
  const child = spawn(process.execPath, [...profile, ...serverCommand('bench/chain-server.ts'), mode], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode} server did not start`)), 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('listening ')) (clearTimeout(timer), resolve(line.slice(10)));
    });
    child.once('exit', (code) => reject(new Error(`${mode} server exited with ${code}`)));
  });
  return { url, child, agent: new Agent({ keepAlive: true, maxSockets: CONNECTIONS }) };
}

function get(side: Side): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${side.url}/healthz`, { agent: side.agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(res.statusCode) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Result { rps: number; p50: number; p99: number; n: number; cpuUs?: number }

/** The server process's CPU time so far (user + system, µs), from /proc; undefined where there is none. */
function cpuTimeUs(side: Side): number | undefined {
  try {
    const fields = readFileSync(`/proc/${side.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6;
  } catch {
    return undefined;
  }
}
const CLOCK_TICKS = 100;

/** N connections for `seconds`; with `rate`, requests are paced to that many per second in total. */
async function load(side: Side, seconds: number, rate?: number): Promise<Result> {
  const latencies: number[] = [];
  const cpuBefore = cpuTimeUs(side);
  const started = performance.now();
  const end = started + seconds * 1000;
  const worker = async (w: number) => {
    for (let k = 0; ; k++) {
      if (rate) {
        const due = started + ((k * CONNECTIONS + w) / rate) * 1000;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      if (performance.now() >= end) return;
      const t = performance.now();
      await get(side);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, (_, w) => worker(w)));
  const elapsed = (performance.now() - started) / 1000;
  const cpuAfter = cpuTimeUs(side);
  const cpuUs = cpuBefore === undefined || cpuAfter === undefined ? undefined : (cpuAfter - cpuBefore) / latencies.length;
  latencies.sort((a, b) => a - b);
  const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { rps: latencies.length / elapsed, p50: pct(0.5), p99: pct(0.99), n: latencies.length, cpuUs };
}

// Server CPU per request (from /proc, so it is there on Linux): steadier than throughput on a shared machine.
const fmt = (r: Result) =>
  `${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  (${r.n} requests${r.cpuUs === undefined ? '' : `, server CPU ${r.cpuUs.toFixed(0)} µs/request`})`;

async function main(): Promise<void> {
  const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const [pgUp, redisUp] = await Promise.all([reachable(databaseUrl), reachable(redisUrl)]);
  const schema = `weir_bench_${process.pid}`;
  const dataDirs = ['bare', 'full'].map((m) => mkdtempSync(path.join(os.tmpdir(), `weir-bench-${m}-`)));
  const env = (i: number): Record<string, string> => ({
    DATA_DIR: dataDirs[i]!,
    DATABASE_SCHEMA: schema,
    REDIS_KEY_PREFIX: `weir:bench:${process.pid}:`,
    RATE_LIMIT_POLICIES: JSON.stringify({ probe: { burst: 1_000_000_000, rate: 1_000_000 } }),
    ...(pgUp && { DATABASE_URL: databaseUrl }),
    ...(redisUp && { REDIS_URL: redisUrl }),
  });
  console.log(`stores: ${pgUp ? 'PostgreSQL' : 'PGlite'} (audit), ${redisUp ? 'Redis' : 'in-process'} (rate limits); ${CONNECTIONS} keep-alive connections, ${SECONDS} s per measurement, ${os.cpus().length} CPUs`);
  const bare = await start('bare', env(0));
  const full = await start('full', env(1));
  try {
    for (const side of [bare, full]) await load(side, 1); // warm-up (JIT, connections)
    const peak: Record<'bare' | 'full', Result[]> = { bare: [], full: [] };
    for (let round = 0; round < ROUNDS; round++) {
      peak.bare.push(await load(bare, SECONDS));
      peak.full.push(await load(full, SECONDS));
    }
    const best = (rs: Result[]) => rs.reduce((a, b) => (b.rps > a.rps ? b : a));
    const [b, f] = [best(peak.bare), best(peak.full)];
    console.log(`\npeak (closed loop, best of ${ROUNDS})`);
    console.log(`  bare handler  ${fmt(b)}`);
    console.log(`  full chain    ${fmt(f)}`);
    console.log(`  throughput ratio full/bare: ${((f.rps / b.rps) * 100).toFixed(1)}%  (target >= 70%)`);
    if (f.cpuUs && b.cpuUs) console.log(`  server CPU per request: full ${f.cpuUs.toFixed(0)} µs, bare ${b.cpuUs.toFixed(0)} µs`);

    const half = f.rps / 2;
    const hb = await load(bare, SECONDS, half);
    const hf = await load(full, SECONDS, half);
    console.log(`\nat half of the full chain's peak (${half.toFixed(0)} req/s, paced)`);
    console.log(`  bare handler  ${fmt(hb)}`);
    console.log(`  full chain    ${fmt(hf)}`);
    console.log(`  added latency: p50 +${(hf.p50 - hb.p50).toFixed(2)} ms, p99 +${(hf.p99 - hb.p99).toFixed(2)} ms  (target <= 1 ms at p99)`);
  } finally {
    await Promise.all([bare, full].map((s) => new Promise((r) => (s.child.once('exit', r), s.child.kill('SIGTERM')))));
    for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
    if (pgUp) {
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    }
  }
}

await main();
