// NDJSON ingest through the whole gateway (plugins, validation, group commit) beside a direct
// INSERT of the same file into the same warehouse, in one process, one run; prints the ratio and
// peak RSS. `npx tsx bench/ingest-throughput.ts` (BENCH_ROWS, BENCH_CONCURRENCY).
import { createReadStream } from 'node:fs';
import { appendFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { buildApp, storeConfig } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { openStores } from '../src/stores/index.js';
import { asTenant, pluginsWithTestPrincipal } from '../test/helpers/test-principal.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);

const dir = await mkdtemp(path.join(os.tmpdir(), 'weir-bench-ingest-'));
const config = loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'silent', DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1' });
const logger = pino({ level: 'silent' });
const stores = await openStores(storeConfig(config), logger);
const app = await buildApp(config, { logger, stores, plugins: pluginsWithTestPrincipal() });
const server = app.listen(0, '127.0.0.1');
await new Promise((r) => server.once('listening', r));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);

// ~100-byte rows, one file per request slice so each request streams from disk.
const row = (i: number) =>
  `{"event_time":"2026-01-08T10:30:${String(i % 60).padStart(2, '0')}.123Z","region":"eu-west-${i % 7}","user_id":"u_${i}","amount":${(i % 1000) / 4},"qty":${i % 100}}\n`;
const files: string[] = [];
for (let s = 0; s < CONCURRENCY; s++) {
  const file = path.join(dir, `slice-${s}.ndjson`);
  await writeFile(file, '');
  for (let from = s; from < ROWS; from += 10_000 * CONCURRENCY) {
    let text = '';
    for (let i = from; i < Math.min(ROWS, from + 10_000 * CONCURRENCY); i += CONCURRENCY) text += row(i);
    await appendFile(file, text);
  }
  files.push(file);
}
const baselineRss = process.memoryUsage().rss;
peakRss = baselineRss;
const bytes = (await Promise.all(files.map((f) => stat(f)))).reduce((n, s) => n + s.size, 0);

const definition = {
  name: 'bench',
  columns: [
    { name: 'event_time', type: 'timestamp', nullable: false },
    { name: 'region', type: 'string', nullable: false },
    { name: 'user_id', type: 'string' },
    { name: 'amount', type: 'float' },
    { name: 'qty', type: 'int' },
  ],
  time_column: 'event_time',
  sort_key: ['region', 'event_time'],
};
const create = async (name: string) => {
  const res = await fetch(`${base}/v1/datasets`, { method: 'POST', headers: asTenant('bench', { 'content-type': 'application/json' }), body: JSON.stringify({ ...definition, name }) });
  return ((await res.json()) as { id: string }).id;
};
const viaGateway = await create('via_gateway');
const direct = await create('direct');

function post(file: string, size: number): Promise<{ accepted: number }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}/v1/datasets/${viaGateway}/ingest`,
      { method: 'POST', headers: asTenant('bench', { 'content-type': 'application/x-ndjson', 'content-length': String(size) }) },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${res.statusCode} ${text}`))));
      },
    );
    req.on('error', reject);
    createReadStream(file).pipe(req);
  });
}

const sizes = await Promise.all(files.map(async (f) => (await stat(f)).size));
let t0 = performance.now();
const results = await Promise.all(files.map((f, i) => post(f, sizes[i]!)));
const gatewaySeconds = (performance.now() - t0) / 1000;
const accepted = results.reduce((n, r) => n + r.accepted, 0);
const gatewayPeak = peakRss;

t0 = performance.now();
await Promise.all(
  files.map(async (f) => {
    const res = await stores.warehouse.client.exec({ query: `INSERT INTO \`${direct}\` FORMAT JSONEachRow`, values: createReadStream(f) });
    res.stream.resume();
  }),
);
const directSeconds = (performance.now() - t0) / 1000;
clearInterval(sampler);

const count = async (t: string) => Number((await (await stores.warehouse.client.query({ query: `SELECT count() AS c FROM \`${t}\``, format: 'JSONEachRow' })).json<{ c: string }>())[0]!.c);
const [gwRows, directRows] = await Promise.all([count(viaGateway), count(direct)]);
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;
console.log(`rows: ${ROWS} (${(bytes / ROWS).toFixed(0)} bytes each, ${mb(bytes)}), ${CONCURRENCY} concurrent requests`);
console.log(`gateway: ${Math.round(accepted / gatewaySeconds).toLocaleString('en')} rows/s (${gatewaySeconds.toFixed(2)} s, ${gwRows} rows in the table)`);
console.log(`direct : ${Math.round(ROWS / directSeconds).toLocaleString('en')} rows/s (${directSeconds.toFixed(2)} s, ${directRows} rows in the table)`);
console.log(`ratio  : ${((directSeconds / gatewaySeconds) * 100).toFixed(0)}% of the direct insert`);
console.log(`peak RSS: ${mb(gatewayPeak)} during the gateway run (${mb(baselineRss)} before it, chDB included), ${mb(peakRss)} overall`);

server.close();
await app.weir.close();
await stores.close();
await rm(dir, { recursive: true, force: true });
