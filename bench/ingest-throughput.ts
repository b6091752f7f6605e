// NDJSON ingest through the whole gateway (plugins, validation, group commit) beside a direct
// INSERT of the same file into the same warehouse, in one process, one run; prints the ratio and
// peak RSS. `npx tsx bench/ingest-throughput.ts` (BENCH_ROWS, BENCH_CONCURRENCY).
import { createReadStream, readFileSync } from 'node:fs';
import { appendFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { Session } from 'node:inspector';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { buildApp, storeConfig } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { openStores } from '../src/stores/index.js';
import { asTenant, pluginsWithTestPrincipal } from '../test/helpers/test-principal.js';
import { benchDataset } from './bench-dataset.js';

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;
const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);

const dir = await mkdtemp(path.join(os.tmpdir(), 'weir-bench-ingest-'));
// Embedded chDB always; metadata in embedded PGlite unless DATABASE_URL names a PostgreSQL
// (PGlite alone holds ~650 MB of RSS, see bench/README.md).
const config = loadConfig({
  NODE_ENV: 'production', LOG_LEVEL: 'silent', DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1',
  ...(process.env.DATABASE_URL && { DATABASE_URL: process.env.DATABASE_URL, DATABASE_SCHEMA: `bench_ingest_${process.pid}` }),
});
const logger = pino({ level: 'silent' });
const stores = await openStores(storeConfig(config), logger);
const app = await buildApp(config, { logger, stores, plugins: pluginsWithTestPrincipal() });
const server = app.listen(0, '127.0.0.1');
await new Promise((r) => server.once('listening', r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const startupRss = process.memoryUsage().rss;
let peakRss = 0;
let atPeak = '';
/** Where the memory is: V8 heap, Buffers (arrayBuffers), and the rest (chDB, PGlite's wasm, code). */
const breakdown = (smaps = false) => {
  const m = process.memoryUsage();
  let anon = '';
  // smaps_rollup walks every mapping (slow with chDB's): not in the sampler.
  if (smaps) try {
    const kb = /Anonymous:\s+(\d+) kB/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
    if (kb) anon = `, anonymous ${mb(Number(kb[1]) * 1024)}`;
  } catch {
    // not Linux
  }
  return `heap ${mb(m.heapUsed)}/${mb(m.heapTotal)}, buffers ${mb(m.arrayBuffers)}, external ${mb(m.external)}${anon}`;
};
let lastBreakdown = 0;
const sampler = setInterval(() => {
  const rss = process.memoryUsage.rss();
  if (rss > peakRss) {
    peakRss = rss;
    // The full breakdown costs more: at most 4 times a second.
    if (performance.now() - lastBreakdown > 250) {
      atPeak = breakdown();
      lastBreakdown = performance.now();
    }
  }
}, 100);

// ~100-byte rows, one file per request slice so each request streams from disk (written as
// Buffers, so making them leaves no garbage-filled heap behind to blur the RSS figures).
const row = (i: number) =>
  `{"event_time":"2026-01-08T10:30:${String(i % 60).padStart(2, '0')}.123Z","region":"eu-west-${i % 7}","user_id":"u_${i}","amount":${(i % 1000) / 4},"qty":${i % 100}}\n`;
const files: string[] = [];
for (let s = 0; s < CONCURRENCY; s++) {
  const file = path.join(dir, `slice-${s}.ndjson`);
  await writeFile(file, '');
  for (let from = s; from < ROWS; from += 10_000 * CONCURRENCY) {
    const lines: string[] = [];
    for (let i = from; i < Math.min(ROWS, from + 10_000 * CONCURRENCY); i += CONCURRENCY) lines.push(row(i));
    await appendFile(file, Buffer.from(lines.join('')));
  }
  files.push(file);
}
(globalThis as { gc?: () => void }).gc?.();
const baselineRss = process.memoryUsage().rss;
const baselineBreakdown = breakdown(true);
peakRss = baselineRss;
const bytes = (await Promise.all(files.map((f) => stat(f)))).reduce((n, s) => n + s.size, 0);

const create = async (name: string) => {
  const res = await fetch(`${base}/v1/datasets`, { method: 'POST', headers: asTenant('bench', { 'content-type': 'application/json' }), body: JSON.stringify(benchDataset(name)) });
  return ((await res.json()) as { id: string }).id;
};
const viaGateway = await create('via_gateway');
const direct = await create('direct');

// The client is another process (as producers are): the gateway's process only serves. It
// streams each file as one request, all at once, and reports the time from the first byte sent
// to the last answer.
const CLIENT = `
const { request } = require('node:http');
const { createReadStream } = require('node:fs');
const { url, headers, files, sizes } = JSON.parse(process.argv[1]);
const post = (file, size) => new Promise((resolve, reject) => {
  const req = request(url, { method: 'POST', headers: { ...headers, 'content-length': String(size) } }, (res) => {
    let text = '';
    res.on('data', (d) => (text += d));
    res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(res.statusCode + ' ' + text))));
  });
  req.on('error', reject);
  createReadStream(file, { highWaterMark: 256 * 1024 }).pipe(req);
});
const t0 = performance.now();
Promise.all(files.map((f, i) => post(f, sizes[i]))).then(
  (results) => process.stdout.write(JSON.stringify({ results, seconds: (performance.now() - t0) / 1000 })),
  (err) => { console.error(err.message); process.exit(1); },
);`;
function runClient(files: string[], sizes: number[]): Promise<{ results: { accepted: number }[]; seconds: number }> {
  const args = { url: `${base}/v1/datasets/${viaGateway}/ingest`, headers: asTenant('bench', { 'content-type': 'application/x-ndjson' }), files, sizes };
  const child = spawn(process.execPath, ['-e', CLIENT, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`client exited with ${code}`)))));
}

/** Waits (up to 30 s) until the warehouse's background merges are done, so neither run pays for the other's. */
async function settle(): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const res = await stores.warehouse.client.query({ query: 'SELECT count() AS c FROM system.merges', format: 'JSONEachRow' });
    if (Number((await res.json<{ c: string }>())[0]!.c) === 0) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const sizes = await Promise.all(files.map(async (f) => (await stat(f)).size));
await settle();
// BENCH_PROFILE=file.cpuprofile: a CPU profile of the main thread during the gateway run only.
const profiler = process.env.BENCH_PROFILE ? new Session() : undefined;
const post_ = (method: string, params?: object) => new Promise<unknown>((resolve, reject) => profiler!.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
if (profiler) {
  profiler.connect();
  await post_('Profiler.enable');
  await post_('Profiler.start');
}
let t0 = performance.now();
let cpu0 = process.cpuUsage();
const cpuSeconds = (from: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1e6;
};
const { results, seconds: gatewaySeconds } = await runClient(files, sizes);
const accepted = results.reduce((n, r) => n + r.accepted, 0);
const gatewayCpu = cpuSeconds(cpu0);
if (profiler) {
  const { profile } = (await post_('Profiler.stop')) as { profile: object };
  await writeFile(process.env.BENCH_PROFILE!, JSON.stringify(profile));
  profiler.disconnect();
}
const gatewayPeak = peakRss;
const gatewayPeakBreakdown = atPeak;
const afterGateway = breakdown(true);

// The direct baseline: the best way we found to put these files into that table. Each file is
// streamed into the warehouse's raw insert (chDB gets the bytes as they are, no JS string) in
// blocks of DIRECT_BLOCK bytes cut at newlines, all files at once; same insert settings as the
// gateway's group commit (best-effort date-times for the ISO 'Z' timestamps).
const DIRECT_BLOCK = Number(process.env.BENCH_DIRECT_BLOCK ?? 8 * 1024 * 1024);
const settings = { input_format_skip_unknown_fields: 0, date_time_input_format: 'best_effort' };
await settle();
t0 = performance.now();
cpu0 = process.cpuUsage();
await Promise.all(
  files.map(async (f) => {
    let parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of createReadStream(f, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
      parts.push(chunk);
      size += chunk.length;
      if (size < DIRECT_BLOCK) continue;
      const whole = Buffer.concat(parts, size);
      const cut = whole.lastIndexOf(10) + 1;
      await stores.warehouse.insertRaw(direct, 'JSONEachRow', whole.subarray(0, cut), settings);
      parts = [whole.subarray(cut)];
      size = whole.length - cut;
    }
    if (size) await stores.warehouse.insertRaw(direct, 'JSONEachRow', Buffer.concat(parts, size), settings);
  }),
);
const directSeconds = (performance.now() - t0) / 1000;
const directCpu = cpuSeconds(cpu0);
clearInterval(sampler);

const count = async (t: string) => Number((await (await stores.warehouse.client.query({ query: `SELECT count() AS c FROM \`${t}\``, format: 'JSONEachRow' })).json<{ c: string }>())[0]!.c);
const [gwRows, directRows] = await Promise.all([count(viaGateway), count(direct)]);
console.log(`rows: ${ROWS} (${(bytes / ROWS).toFixed(0)} bytes each, ${mb(bytes)}), ${CONCURRENCY} concurrent requests`);
const perCpu = (rows: number, s: number) => `${Math.round(rows / s).toLocaleString('en')} rows per CPU-second`;
console.log(`metadata: ${stores.metadata.kind}, warehouse: ${stores.warehouse.kind}, ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)}`);
console.log(`gateway: ${Math.round(accepted / gatewaySeconds).toLocaleString('en')} rows/s (${gatewaySeconds.toFixed(2)} s, ${gwRows} rows in the table; ${gatewayCpu.toFixed(2)} CPU-s, ${perCpu(accepted, gatewayCpu)})`);
console.log(`direct : ${Math.round(ROWS / directSeconds).toLocaleString('en')} rows/s (${directSeconds.toFixed(2)} s, ${directRows} rows in the table; ${directCpu.toFixed(2)} CPU-s, ${perCpu(ROWS, directCpu)})`);
console.log(`ratio  : ${((directSeconds / gatewaySeconds) * 100).toFixed(0)}% of the direct insert`);
console.log(`peak RSS: ${mb(gatewayPeak)} during the gateway run (at the peak: ${gatewayPeakBreakdown}; after it: ${afterGateway}), ${mb(peakRss)} overall`);
console.log(`baseline RSS: ${mb(startupRss)} after startup, ${mb(baselineRss)} before the gateway run (${baselineBreakdown})`);

server.close();
await app.weir.close();
if (stores.metadata.kind === 'postgres') await stores.metadata.query(`DROP SCHEMA IF EXISTS bench_ingest_${process.pid} CASCADE`);
await stores.close();
await rm(dir, { recursive: true, force: true });
