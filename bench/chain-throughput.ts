/**
 * `npx tsx bench/chain-throughput.ts`: the full gateway chain against the bare handler, in one run.
 * Both serve GET /healthz from their own process; the load generator (load.ts, a process of its own)
 * drives them in turns over N keep-alive connections (bounded in time), then at half of the full
 * chain's peak rate, and prints throughput, p50/p99 and the ratios. BENCH_AA=1 runs two identical
 * bare servers instead, to show how far apart two equal p99s come out on this machine. Uses real
 * PostgreSQL/Redis when BENCH_DATABASE_URL / BENCH_REDIS_URL are set (defaults: the local test
 * servers if reachable), else embedded stores.
 * BENCH_PIN (see pinModes) repeats it with the servers on one core and the rest on the other.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { serverCommand } from './compiled.js';
import { LATENCY_NOTE, LoadGenerator, percentiles, type LoadSample } from './load.js';
import { cpuBusyUs, processCpuUs } from './load-machine.js';
import { Pinning, postgresPids, redisPids } from './pinning.js';
import { reachable } from './reachable.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const HALF_SECONDS = Number(process.env.BENCH_HALF_SECONDS ?? 10);
const ROUNDS = 2;
const AA = process.env.BENCH_AA === '1';
const NAMES = AA ? ['bare A', 'bare B'] : ['bare handler', 'full chain'];
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Side { url: string; child: ChildProcess; requests: number }

async function start(mode: 'bare' | 'full', env: Record<string, string>, label: string = mode): Promise<Side> {
  // BENCH_PROFILE=<dir>: each server writes V8 CPU profiles under <dir>/bare and <dir>/full when it
  // exits (the largest is the main thread's); BENCH_HEAP_PROFILE=<dir>: the full chain's allocations (see chain-server.ts).
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.join(process.env.BENCH_PROFILE, label)}`] : [];
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
  return { url, child, requests: 0 };
}

interface Result { rps: number; p50: number; p99: number; n: number; cpuUs?: number; clientCpuUs: number; lateP99?: number; timerLateP99?: number }

/** The server process's CPU time so far (user + system, µs), from /proc; undefined where there is none. */
const cpuTimeUs = (side: Side): number | undefined => processCpuUs(side.child.pid!);

interface Sample { load: LoadSample; cpuUs?: number }

let generator: LoadGenerator;

/** N connections for `seconds`; with `rate`, requests are paced to that many per second in total. */
async function run(side: Side, seconds: number, rate?: number): Promise<Sample> {
  const cpuBefore = cpuTimeUs(side);
  const answers = await generator.run({ url: side.url, request: { method: 'GET', path: '/healthz' }, connections: CONNECTIONS, seconds, rate });
  const cpuAfter = cpuTimeUs(side);
  if (answers.other || answers.failed) throw new Error(`${side.url}/healthz: ${answers.other} answers other than 2xx, ${answers.failed} unanswered`);
  side.requests += answers.ok;
  return { load: answers, cpuUs: cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore };
}

function summarise(samples: Sample[]): Result {
  const [p50, p99] = percentiles(samples.map((s) => s.load.latencyMs), [0.5, 0.99]) as [number, number];
  const n = samples.reduce((t, s) => t + s.load.latencyMs.length, 0);
  const seconds = samples.reduce((t, s) => t + s.load.seconds, 0);
  const cpu = samples.every((s) => s.cpuUs !== undefined) ? samples.reduce((t, s) => t + s.cpuUs!, 0) : undefined;
  const clientCpu = samples.reduce((t, s) => t + s.load.clientCpuUs, 0);
  const paced = samples.some((s) => s.load.lagMs.length);
  const lateP99 = paced ? percentiles(samples.map((s) => s.load.lagMs), [0.99])[0] : undefined;
  const timerLateP99 = paced ? percentiles(samples.map((s) => s.load.timerLateMs), [0.99])[0] : undefined;
  return { rps: n / seconds, p50, p99, n, cpuUs: cpu === undefined ? undefined : cpu / n, clientCpuUs: clientCpu / n, lateP99, timerLateP99 };
}

const load = async (side: Side, seconds: number, rate?: number): Promise<Result> => summarise([await run(side, seconds, rate)]);

/**
 * Both sides paced at `rate`, in alternating one-second slices (`seconds` each in all), so a burst
 * of other work on the machine lands on both rather than on whichever side ran then.
 */
async function interleaved(bare: Side, full: Side, seconds: number, rate: number): Promise<[Result, Result, number, OtherWork | undefined]> {
  const samples: [Sample[], Sample[]] = [[], []];
  // CPU time so far: each CPU busy; the two servers; everything the bench runs itself (servers, load generator, this process).
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const servers = () => sum([bare, full].map((s) => cpuTimeUs(s) ?? NaN));
  const ours = () => servers() + (processCpuUs(generator.pid) ?? NaN) + (processCpuUs(process.pid) ?? NaN);
  const before = { busy: cpuBusyUs(), servers: servers(), ours: ours(), at: performance.now() };
  for (let i = 0; i < seconds; i++) {
    for (const k of i % 2 ? [1, 0] : [0, 1]) samples[k]!.push(await run(k ? full : bare, 1, rate));
  }
  const after = { busy: cpuBusyUs(), servers: servers(), ours: ours(), at: performance.now() };
  const spanUs = (after.at - before.at) * 1000;
  const serverCpu = Number(Pinning.serverCpu);
  const other: OtherWork = {
    machine: (sum(after.busy) - sum(before.busy) - (after.ours - before.ours)) / spanUs,
    serverCpu: (after.busy[serverCpu]! - before.busy[serverCpu]! - (after.servers - before.servers)) / spanUs,
  };
  // Each second's p99 against the other side's in the same pair of seconds: the median of those differences
  // leaves out the seconds a burst of other work hit one side only.
  const slicesP99 = (side: Sample[]) => side.map((s) => percentiles([s.load.latencyMs], [0.99])[0]!);
  const [bareSlices, fullSlices] = [slicesP99(samples[0]), slicesP99(samples[1])];
  const pairedP99 = median(fullSlices.map((f, i) => f - bareSlices[i]!));
  return [summarise(samples[0]), summarise(samples[1]), pairedP99, Number.isFinite(other.machine + other.serverCpu) ? other : undefined];
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** CPU time (in cores) not the bench's own over the half-load phase: on the whole machine, and on CPU 0 less the servers' (the rest when pinned). */
interface OtherWork { machine: number; serverCpu: number }

// Server CPU per request (from /proc, so it is there on Linux): steadier than throughput on a shared machine.
// The load generator's CPU per request and, paced, how late its p99 request went out (part of every paced latency:
// the client's own lateness, or all connections busy) and how late its timer woke (the client's alone).
const fmt = (r: Result) =>
  `${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  (${r.n} requests${r.cpuUs === undefined ? '' : `, server CPU ${r.cpuUs.toFixed(0)} µs/request, ${((r.cpuUs * r.rps) / 1e4).toFixed(0)}% of a core`}; client ${r.clientCpuUs.toFixed(1)} µs/request${r.lateP99 === undefined ? '' : `, sent late p99 ${r.lateP99.toFixed(2)} ms, timer late p99 ${r.timerLateP99!.toFixed(2)} ms`})`;

const pct = (cores: number) => `${(cores * 100).toFixed(0)}%`;
const signed = (ms: number) => `${ms >= 0 ? '+' : ''}${ms.toFixed(2)}`;

interface Figures { ratio: number; cpu?: { bare: number; full: number }; addedP50: number; addedP99: number; pairedP99: number; bareP99: number; bareBusy?: number }

/** Peak (closed loop, best of ROUNDS) then both sides paced at half the full chain's peak. */
async function measure(bare: Side, full: Side, pinned: boolean): Promise<Figures> {
  for (const side of [bare, full]) await load(side, 1); // warm-up (JIT, connections; again after pinning)
  const peak: Record<'bare' | 'full', Result[]> = { bare: [], full: [] };
  for (let round = 0; round < ROUNDS; round++) {
    peak.bare.push(await load(bare, SECONDS));
    peak.full.push(await load(full, SECONDS));
  }
  const best = (rs: Result[]) => rs.reduce((a, b) => (b.rps > a.rps ? b : a));
  const [b, f] = [best(peak.bare), best(peak.full)];
  console.log(`peak (closed loop, best of ${ROUNDS})`);
  console.log(`  ${NAMES[0]!.padEnd(12)}  ${fmt(b)}`);
  console.log(`  ${NAMES[1]!.padEnd(12)}  ${fmt(f)}`);
  console.log(`  throughput ratio ${AA ? 'B/A' : 'full/bare'}: ${((f.rps / b.rps) * 100).toFixed(1)}%  (${AA ? 'identical servers' : 'target >= 70%'})`);
  const cpu = f.cpuUs && b.cpuUs ? { bare: b.cpuUs, full: f.cpuUs } : undefined;
  if (cpu) console.log(`  server CPU per request: ${AA ? 'B' : 'full'} ${cpu.full.toFixed(0)} µs, ${AA ? 'A' : 'bare'} ${cpu.bare.toFixed(0)} µs (${AA ? 'A/B' : 'bare/full'} ${((cpu.bare / cpu.full) * 100).toFixed(1)}%)`);

  // BENCH_HALF_RATE fixes it, e.g. to the full chain's half load in an A/A run.
  const half = Number(process.env.BENCH_HALF_RATE) || f.rps / 2;
  const [hb, hf, pairedP99, other] = await interleaved(bare, full, HALF_SECONDS, half);
  const at = process.env.BENCH_HALF_RATE ? 'at BENCH_HALF_RATE' : `at half of the ${AA ? 'second' : 'full chain'}'s peak`;
  console.log(`${at} (${half.toFixed(0)} req/s, paced, the sides alternating second by second)`);
  console.log(`  ${NAMES[0]!.padEnd(12)}  ${fmt(hb)}`);
  console.log(`  ${NAMES[1]!.padEnd(12)}  ${fmt(hf)}`);
  console.log(`  added latency: p50 ${signed(hf.p50 - hb.p50)} ms, p99 ${signed(hf.p99 - hb.p99)} ms  (${AA ? 'B - A, identical servers: the noise floor' : 'target <= 1 ms at p99'})`);
  console.log(`  p99 added second by second (median over ${HALF_SECONDS} pairs of seconds): ${signed(pairedP99)} ms`);
  // What a tail may have waited behind: other processes (other benches' and tests' too), interrupts, the VM's steal time.
  if (other) {
    // /proc/stat's ticks and the processes' own counts disagree by up to ~20% of a core: a rough figure, not below 0.
    const about = (cores: number) => `about ${pct(Math.max(0, cores))}`;
    const onServerCpu = pinned ? `; on the servers' CPU ${Pinning.serverCpu}, ${about(other.serverCpu)} of it was not theirs` : '';
    console.log(`  other work meanwhile: ${about(other.machine)} of a core on the machine (Redis and PostgreSQL included)${onServerCpu}`);
  }
  return { ratio: f.rps / b.rps, cpu, addedP50: hf.p50 - hb.p50, addedP99: hf.p99 - hb.p99, pairedP99, bareP99: hb.p99, bareBusy: b.cpuUs && (b.cpuUs * b.rps) / 1e6 };
}

/**
 * BENCH_PIN: `both` (the default where there are 2+ CPUs and taskset), `on`, or `off`. Unpinned,
 * the load generator, Redis and PostgreSQL share every core with the server, so a tail latency
 * partly measures the server waiting for a core behind them. Pinned, the server under test has
 * the first core (other work on the machine may still run there) and this process, the load
 * generator, Redis and PostgreSQL (when local) the others, the same for both sides.
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
  console.log(`stores: ${pgUp ? 'PostgreSQL' : 'PGlite'} (audit), ${redisUp ? 'Redis' : 'in-process'} (rate limits); ${CONNECTIONS} keep-alive connections, ${SECONDS} s per measurement (${HALF_SECONDS} s per side at half load), ${os.cpus().length} CPUs`);
  if (AA) console.log('BENCH_AA=1: two identical bare servers (A, B) in place of bare and full: their differences are what this machine cannot resolve');
  console.log(`load generator: raw sockets in its own process; ${LATENCY_NOTE}`);
  const bare = await start('bare', env(0), AA ? 'bare-a' : 'bare');
  const full = AA ? await start('bare', env(1), 'bare-b') : await start('full', env(1));
  generator = LoadGenerator.start();
  const pinning = new Pinning();
  const results: Partial<Record<'unpinned' | 'pinned', Figures>> = {};
  try {
    // BENCH_NICE=-10: everything a measured request passes through runs at that priority (restored
    // afterwards), so other work on a shared machine gets less of the servers' cores.
    if (process.env.BENCH_NICE) {
      const stores = [...(redisUp ? await redisPids(redisUrl) : []), ...(pgUp ? await postgresPids(databaseUrl) : [])];
      for (const pid of [bare.child.pid!, full.child.pid!, generator.pid, ...stores]) pinning.prioritise(pid, Number(process.env.BENCH_NICE));
      console.log(`priority: servers, load generator, Redis and PostgreSQL at nice ${process.env.BENCH_NICE}`);
    }
    for (const mode of pinModes()) {
      if (mode === 'pinned') {
        for (const side of [bare, full]) pinning.pin(side.child.pid!, Pinning.serverCpu);
        pinning.pin(process.pid, Pinning.otherCpus);
        pinning.pin(generator.pid, Pinning.otherCpus);
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
      results[mode] = await measure(bare, full, mode === 'pinned');
    }
    summary(results);
  } finally {
    pinning.restore();
    await generator.close();
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
    const cpu = r.cpu ? `; server CPU ${AA ? 'A/B' : 'bare/full'} ${((r.cpu.bare / r.cpu.full) * 100).toFixed(1)}% (${r.cpu.full.toFixed(0)} vs ${r.cpu.bare.toFixed(0)} µs/request)` : '';
    console.log(`  ${mode.padEnd(8)}  throughput ratio ${(r.ratio * 100).toFixed(1)}%${cpu}; at half load ${AA ? 'B - A' : 'added'} p50 ${signed(r.addedP50)} ms, p99 ${signed(r.addedP99)} ms, second by second ${signed(r.pairedP99)} ms (${AA ? 'A' : 'bare'} p99 ${r.bareP99.toFixed(2)} ms)`);
  }
  const pinned = results.pinned;
  if (pinned?.bareBusy !== undefined && pinned.bareBusy < 0.9) {
    console.log(`  note: pinned, the bare server used only ${(pinned.bareBusy * 100).toFixed(0)}% of its core at peak: something else (the load generator's core,`);
    console.log('  other work on the machine) held it back, so the pinned throughput ratio flatters the chain; the server CPU ratio is the fairer figure there.');
  }
  if (pinned && process.env.BENCH_PIN_STORES !== 'server') console.log("  pinned, Redis's and PostgreSQL's work is on the load generator's core: in neither server's CPU; unpinned it competes with the server.");
  console.log("  p99 at half load: compare it with the bare handler's p99 beside it, the machine's own tail (GC, other work, the load generator);");
  console.log('  where that is many ms, the difference of two such tails cannot resolve a 1 ms target (BENCH_HALF_SECONDS raises the sample count;');
  console.log('  BENCH_AA=1 measures the spread between two identical servers). "Second by second" pairs each second of one side with the');
  console.log("  adjacent second of the other and takes the median of their p99s' differences: a burst of other work that hits one side drops out.");
}

await main();
