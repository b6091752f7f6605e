/**
 * `npx tsx bench/chain-throughput.ts`: the full gateway chain against the bare handler, in one run.
 * Both serve GET /healthz from their own process; this process drives them in turns over N
 * keep-alive connections (bounded in time), then at half of the full chain's peak rate, and prints
 * throughput, p50/p99 and the ratios. Uses real PostgreSQL/Redis when BENCH_DATABASE_URL /
 * BENCH_REDIS_URL are set (defaults: the local test servers if reachable), else embedded stores.
 * BENCH_PIN (see pinModes) repeats it with the servers on one core and the rest on the other.
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
import { Pinning, postgresPids, redisPids } from './pinning.js';
import { reachable } from './reachable.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const ROUNDS = 2;
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Side { url: string; child: ChildProcess; agent: Agent; requests: number }

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
  return { url, child, agent: new Agent({ keepAlive: true, maxSockets: CONNECTIONS }), requests: 0 };
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

interface Sample { latencies: number[]; seconds: number; cpuUs?: number }

/** N connections for `seconds`; with `rate`, requests are paced to that many per second in total. */
async function run(side: Side, seconds: number, rate?: number): Promise<Sample> {
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
  side.requests += latencies.length;
  const cpuAfter = cpuTimeUs(side);
  return { latencies, seconds: elapsed, cpuUs: cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore };
}

function summarise(samples: Sample[]): Result {
  const latencies = samples.flatMap((s) => s.latencies).sort((a, b) => a - b);
  const seconds = samples.reduce((t, s) => t + s.seconds, 0);
  const cpu = samples.every((s) => s.cpuUs !== undefined) ? samples.reduce((t, s) => t + s.cpuUs!, 0) : undefined;
  const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { rps: latencies.length / seconds, p50: pct(0.5), p99: pct(0.99), n: latencies.length, cpuUs: cpu === undefined ? undefined : cpu / latencies.length };
}

const load = async (side: Side, seconds: number, rate?: number): Promise<Result> => summarise([await run(side, seconds, rate)]);

/**
 * Both sides paced at `rate`, in alternating one-second slices (`seconds` each in all), so a burst
 * of other work on the machine lands on both rather than on whichever side ran then.
 */
async function interleaved(bare: Side, full: Side, seconds: number, rate: number): Promise<[Result, Result]> {
  const samples: [Sample[], Sample[]] = [[], []];
  for (let i = 0; i < seconds; i++) {
    for (const k of i % 2 ? [1, 0] : [0, 1]) samples[k]!.push(await run(k ? full : bare, 1, rate));
  }
  return [summarise(samples[0]), summarise(samples[1])];
}

// Server CPU per request (from /proc, so it is there on Linux): steadier than throughput on a shared machine.
const fmt = (r: Result) =>
  `${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  (${r.n} requests${r.cpuUs === undefined ? '' : `, server CPU ${r.cpuUs.toFixed(0)} µs/request, ${((r.cpuUs * r.rps) / 1e4).toFixed(0)}% of a core`})`;

const signed = (ms: number) => `${ms >= 0 ? '+' : ''}${ms.toFixed(2)}`;

interface Figures { ratio: number; cpu?: { bare: number; full: number }; addedP50: number; addedP99: number; bareP99: number; bareBusy?: number }

/** Peak (closed loop, best of ROUNDS) then both sides paced at half the full chain's peak. */
async function measure(bare: Side, full: Side): Promise<Figures> {
  for (const side of [bare, full]) await load(side, 1); // warm-up (JIT, connections; again after pinning)
  const peak: Record<'bare' | 'full', Result[]> = { bare: [], full: [] };
  for (let round = 0; round < ROUNDS; round++) {
    peak.bare.push(await load(bare, SECONDS));
    peak.full.push(await load(full, SECONDS));
  }
  const best = (rs: Result[]) => rs.reduce((a, b) => (b.rps > a.rps ? b : a));
  const [b, f] = [best(peak.bare), best(peak.full)];
  console.log(`peak (closed loop, best of ${ROUNDS})`);
  console.log(`  bare handler  ${fmt(b)}`);
  console.log(`  full chain    ${fmt(f)}`);
  console.log(`  throughput ratio full/bare: ${((f.rps / b.rps) * 100).toFixed(1)}%  (target >= 70%)`);
  const cpu = f.cpuUs && b.cpuUs ? { bare: b.cpuUs, full: f.cpuUs } : undefined;
  if (cpu) console.log(`  server CPU per request: full ${cpu.full.toFixed(0)} µs, bare ${cpu.bare.toFixed(0)} µs (bare/full ${((cpu.bare / cpu.full) * 100).toFixed(1)}%)`);

  const half = f.rps / 2;
  const [hb, hf] = await interleaved(bare, full, SECONDS, half);
  console.log(`at half of the full chain's peak (${half.toFixed(0)} req/s, paced, the sides alternating second by second)`);
  console.log(`  bare handler  ${fmt(hb)}`);
  console.log(`  full chain    ${fmt(hf)}`);
  console.log(`  added latency: p50 ${signed(hf.p50 - hb.p50)} ms, p99 ${signed(hf.p99 - hb.p99)} ms  (target <= 1 ms at p99)`);
  return { ratio: f.rps / b.rps, cpu, addedP50: hf.p50 - hb.p50, addedP99: hf.p99 - hb.p99, bareP99: hb.p99, bareBusy: b.cpuUs && (b.cpuUs * b.rps) / 1e6 };
}

/**
 * BENCH_PIN: `both` (the default where there are 2+ CPUs and taskset), `on`, or `off`. Unpinned,
 * the load generator, Redis and PostgreSQL share every core with the server, so a tail latency
 * partly measures the server waiting for a core behind them. Pinned, the server under test has
 * the first core (other work on the machine may still run there) and this process, Redis and
 * PostgreSQL (when local) the others, the same for both sides.
 */
function pinModes(): ('unpinned' | 'pinned')[] {
  const wanted = process.env.BENCH_PIN ?? 'both';
  if (wanted === 'off') return ['unpinned'];
  if (!Pinning.available()) {
    console.log('pinning: unavailable (needs 2+ CPUs and taskset); unpinned only');
    return ['unpinned'];
  }
  return wanted === 'on' ? ['pinned'] : ['unpinned', 'pinned'];
}

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
  const pinning = new Pinning();
  const results: Partial<Record<'unpinned' | 'pinned', Figures>> = {};
  try {
    for (const mode of pinModes()) {
      if (mode === 'pinned') {
        for (const side of [bare, full]) pinning.pin(side.child.pid!, Pinning.serverCpu);
        pinning.pin(process.pid, Pinning.otherCpus);
        // BENCH_PIN_STORES=server puts Redis and PostgreSQL on the servers' core instead: they answer
        // without queueing behind the load generator, but their CPU then competes with the server's.
        const storesCpu = process.env.BENCH_PIN_STORES === 'server' ? Pinning.serverCpu : Pinning.otherCpus;
        const stores = [...(redisUp ? await redisPids(redisUrl) : []), ...(pgUp ? await postgresPids(databaseUrl) : [])];
        const pinned = stores.filter((pid) => pinning.pin(pid, storesCpu)).length;
        const where = pinned ? `; Redis and PostgreSQL (${pinned} processes) on CPU ${storesCpu}` : '';
        console.log(`\n== pinned: servers on CPU ${Pinning.serverCpu}; load generator on CPU ${Pinning.otherCpus}${where}`);
      } else {
        console.log('\n== unpinned: servers, load generator, Redis and PostgreSQL share all CPUs');
      }
      results[mode] = await measure(bare, full);
    }
    summary(results);
  } finally {
    pinning.restore();
    // A profile's per-request figures: its samples over the requests its server answered.
    if (process.env.BENCH_PROFILE) console.log(`\nrequests answered (profiled, warm-up included): bare ${bare.requests}, full ${full.requests}`);
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

/** The figures side by side, with what each means. */
function summary(results: Partial<Record<'unpinned' | 'pinned', Figures>>): void {
  console.log('\n== summary');
  for (const [mode, r] of Object.entries(results)) {
    const cpu = r.cpu ? `; server CPU bare/full ${((r.cpu.bare / r.cpu.full) * 100).toFixed(1)}% (${r.cpu.full.toFixed(0)} vs ${r.cpu.bare.toFixed(0)} µs/request)` : '';
    console.log(`  ${mode.padEnd(8)}  throughput ratio ${(r.ratio * 100).toFixed(1)}%${cpu}; at half load p50 ${signed(r.addedP50)} ms, p99 ${signed(r.addedP99)} ms (bare p99 ${r.bareP99.toFixed(2)} ms)`);
  }
  const pinned = results.pinned;
  if (pinned?.bareBusy !== undefined && pinned.bareBusy < 0.9) {
    console.log(`  note: pinned, the bare server used only ${(pinned.bareBusy * 100).toFixed(0)}% of its core at peak: something else (the load generator's core,`);
    console.log('  other work on the machine) held it back, so the pinned throughput ratio flatters the chain; the server CPU ratio is the fairer figure there.');
  }
  if (pinned && process.env.BENCH_PIN_STORES !== 'server') console.log("  pinned, Redis's and PostgreSQL's work is on the load generator's core: in neither server's CPU; unpinned it competes with the server.");
  console.log("  p99 at half load: compare it with the bare handler's p99 beside it, the machine's own tail (GC, other work, the load generator);");
  console.log('  where that is many ms, the difference of two such tails cannot resolve a 1 ms target (BENCH_SECONDS raises the sample count).');
}

await main();
