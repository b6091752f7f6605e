/**
 * `npx tsx bench/export-10m.ts`: a 10-million-row CSV export through the export jobs (POST export,
 * poll, GET download counted and dropped), with the gateway in a child process so the sampler
 * (/proc/<pid>/status every 20 ms) measures only the gateway. Target: RSS under 256 MB.
 *
 * The dataset is made through the datasets API and filled inside ClickHouse (INSERT ... SELECT FROM
 * numbers()) by a first gateway process, which then exits; the export runs in a fresh one, so its
 * baseline isn't inflated by the fill. Embedded chDB runs inside the gateway process, so its RSS
 * includes the mapped native library: the script prints the baseline, the peak and the growth, each
 * split into anonymous memory and file-backed pages (mostly libchdb.so, shared with every process
 * that maps it, and reclaimable). BENCH_ROWS (10000000).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { reachable } from './reachable.js';
import { benchDataset, fillSql } from './bench-dataset.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 10_000_000);
const TARGET = 256 * 1024 * 1024;
const TENANT = 'bench';

type Message = { port: number } | { filled: number } | { memory: NodeJS.MemoryUsage } | { error: string };

/** The gateway (child process): listens, fills a dataset when asked, and stops when told. */
async function serve(): Promise<void> {
  const [{ pino }, { buildApp, storeConfig }, { loadConfig }, { openStores }, { pluginsWithTestPrincipal }] = await Promise.all([
    import('pino'),
    import('../src/app.js'),
    import('../src/config.js'),
    import('../src/stores/index.js'),
    import('../test/helpers/test-principal.js'),
  ]);
  const config = loadConfig({
    NODE_ENV: 'production',
    LOG_LEVEL: 'silent',
    DATA_DIR: process.env.BENCH_DATA_DIR!,
    ...(process.env.BENCH_PG && { DATABASE_URL: process.env.BENCH_PG, DATABASE_SCHEMA: process.env.BENCH_PG_SCHEMA! }),
    ...(process.env.BENCH_REDIS && { REDIS_URL: process.env.BENCH_REDIS, REDIS_KEY_PREFIX: `weir:bench-export:${process.ppid}:` }),
    PORT: '0',
    HOST: '127.0.0.1',
    RATE_LIMIT_POLICIES: JSON.stringify({ default: { burst: 100_000, rate: 100_000 }, export: { burst: 100_000, rate: 100_000 } }),
  });
  const logger = pino({ level: 'silent' });
  const stores = await openStores(storeConfig(config), logger);
  const app = await buildApp(config, { logger, stores, plugins: pluginsWithTestPrincipal() });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  process.on('message', async (msg: { fill?: string; stop?: true; memory?: true }) => {
    try {
      if (msg.memory) process.send!({ memory: process.memoryUsage() });
      if (msg.fill) {
        const table = `\`${stores.warehouse.database}\`.\`${msg.fill}\``;
        await stores.warehouse.client.command({
          query: fillSql(table, ROWS, 28),
        });
        await stores.warehouse.client.command({ query: `OPTIMIZE TABLE ${table} FINAL` });
        process.send!({ filled: ROWS });
      }
      if (msg.stop) {
        server.closeAllConnections();
        server.close();
        await app.weir.close();
        await stores.close();
        process.exit(0);
      }
    } catch (err) {
      process.send!({ error: String((err as Error).stack ?? err) });
    }
  });
  process.send!({ port: (server.address() as AddressInfo).port });
}

const databaseUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const pgSchema = `weir_bench_export_${process.pid}`;
let storesEnv: Record<string, string> = {};

function startGateway(dataDir: string): Promise<{ child: ChildProcess; port: number; next: () => Promise<Message> }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...storesEnv, BENCH_DATA_DIR: dataDir },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const inbox: Message[] = [];
  const waiting: ((m: Message) => void)[] = [];
  child.on('message', (m: Message) => (waiting.length ? waiting.shift()!(m) : inbox.push(m)));
  child.on('exit', (code) => code && waiting.splice(0).forEach((w) => w({ error: `gateway exited with ${code}` })));
  const next = () =>
    new Promise<Message>((resolve, reject) => {
      const take = (m: Message) => ('error' in m ? reject(new Error(m.error)) : resolve(m));
      if (inbox.length) take(inbox.shift()!);
      else waiting.push(take);
    });
  return next().then((m) => ({ child, port: (m as { port: number }).port, next }));
}

async function stopGateway(g: { child: ChildProcess }): Promise<void> {
  const exited = new Promise((r) => g.child.once('exit', r));
  g.child.send({ stop: true });
  await exited;
}

function call(port: number, method: string, urlPath: string, body?: unknown): Promise<{ status: number; json: any }> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path: urlPath, headers: { 'x-test-tenant': TENANT, ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Streams a download, keeping only its size and line count. */
function download(port: number, urlPath: string): Promise<{ status: number; bytes: number; lines: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'GET', path: urlPath, headers: { 'x-test-tenant': TENANT } }, (res) => {
      let bytes = 0;
      let lines = 0;
      res.on('data', (d: Buffer) => {
        bytes += d.length;
        for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) lines++;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, lines }));
    });
    req.on('error', reject);
    req.end();
  });
}

interface Memory {
  rss: number;
  anon: number;
  file: number;
}
async function memoryOf(pid: number): Promise<Memory> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem') };
}
/** Unique memory (USS) and proportional (PSS): file pages shared with other processes count once, or split. */
async function rollupOf(pid: number): Promise<{ pss: number; uss: number }> {
  const text = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { pss: kb('Pss'), uss: kb('Private_Clean') + kb('Private_Dirty') };
}
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;
const describe = (m: Memory) => `${mb(m.rss)} (anonymous ${mb(m.anon)}, file-backed ${mb(m.file)})`;

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'weir-bench-export-'));
  // Metadata in the local PostgreSQL and Redis when they answer, as in production: embedded PGlite
  // (PostgreSQL in WebAssembly) would add its own large heap to the gateway's RSS.
  const [pgUp, redisUp] = await Promise.all([reachable(databaseUrl), reachable(redisUrl)]);
  storesEnv = { ...(pgUp && { BENCH_PG: databaseUrl, BENCH_PG_SCHEMA: pgSchema }), ...(redisUp && { BENCH_REDIS: redisUrl }) };
  console.log(`stores: embedded chDB, ${pgUp ? 'PostgreSQL' : 'PGlite'}, ${redisUp ? 'Redis' : 'in-process shared state'}`);
  try {
    // 1. Make and fill the dataset in a first gateway process.
    let t0 = performance.now();
    const setup = await startGateway(dir);
    const created = await call(setup.port, 'POST', '/v1/datasets', benchDataset('bench_export'));
    if (created.status !== 201) throw new Error(`create dataset: ${created.status} ${JSON.stringify(created.json)}`);
    const id = created.json.id as string;
    setup.child.send({ fill: id });
    await setup.next();
    await stopGateway(setup);
    console.log(`${ROWS.toLocaleString('en')} rows made in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // 2. A fresh gateway process: its idle baseline, then the export with the sampler on.
    const gw = await startGateway(dir);
    const pid = gw.child.pid!;
    await new Promise((r) => setTimeout(r, 1000));
    const baseline = await memoryOf(pid);
    const baseRollup = await rollupOf(pid);
    gw.child.send({ memory: true });
    const heap = ((await gw.next()) as { memory: NodeJS.MemoryUsage }).memory;
    let peak = baseline;
    let phase: 'write' | 'download' = 'write';
    const peaks: Record<'write' | 'download', Memory> = { write: baseline, download: baseline };
    const sampler = setInterval(() => {
      void memoryOf(pid).then((m) => {
        if (m.rss > peak.rss) peak = m;
        if (m.rss > peaks[phase].rss) peaks[phase] = m;
      }, () => {});
    }, 20);

    t0 = performance.now();
    const started = await call(gw.port, 'POST', `/v1/datasets/${id}/export`, { format: 'csv' });
    if (started.status !== 202) throw new Error(`export: ${started.status} ${JSON.stringify(started.json)}`);
    const exportId = started.json.export_id as string;
    let job: any;
    for (;;) {
      job = (await call(gw.port, 'GET', `/v1/exports/${exportId}`)).json;
      if (job.status === 'succeeded' || job.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    if (job.status !== 'succeeded') throw new Error(`export failed: ${JSON.stringify(job)}`);
    const writeSeconds = (performance.now() - t0) / 1000;
    phase = 'download';
    t0 = performance.now();
    const file = await download(gw.port, `/v1/exports/${exportId}/download`);
    const downloadSeconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    const endRollup = await rollupOf(pid);
    await stopGateway(gw);

    if (file.status !== 200 || file.bytes !== job.bytes || file.lines !== ROWS + 1) {
      throw new Error(`download: ${file.status}, ${file.bytes} bytes (job says ${job.bytes}), ${file.lines} lines`);
    }
    console.log(`export : ${job.rows.toLocaleString('en')} rows, ${mb(job.bytes)} CSV, written in ${writeSeconds.toFixed(1)} s (job, polled), downloaded in ${downloadSeconds.toFixed(1)} s (${mb(file.bytes / downloadSeconds)}/s)`);
    console.log(`\ngateway process RSS (sampled every 20 ms from /proc/${pid}/status):`);
    console.log(`baseline     : ${describe(baseline)}; PSS ${mb(baseRollup.pss)}, unique ${mb(baseRollup.uss)}`);
    console.log(`  of which V8: heap ${mb(heap.heapTotal)} (${mb(heap.heapUsed)} used), external ${mb(heap.external)}, array buffers ${mb(heap.arrayBuffers)}`);
    console.log(`peak (write) : ${describe(peaks.write)}`);
    console.log(`peak (dl)    : ${describe(peaks.download)}`);
    console.log(`after        : PSS ${mb(endRollup.pss)}, unique ${mb(endRollup.uss)}`);
    console.log(`growth       : ${mb(peak.rss - baseline.rss)} RSS (${mb(peak.anon - baseline.anon)} anonymous) over the baseline`);
    console.log(`verdict      : peak RSS ${mb(peak.rss)} ${peak.rss < TARGET ? '<' : '>='} 256 MB: ${peak.rss < TARGET ? 'PASS' : 'FAIL'}; ` +
      `without the file-backed pages (the mapped chDB library and files) ${mb(peak.anon)}: ${peak.anon < TARGET ? 'PASS' : 'FAIL'}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
    if (pgUp) {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${pgSchema} CASCADE`).finally(() => client.end());
    }
  }
}

if (process.argv[2] === '--serve') await serve();
else await main();
