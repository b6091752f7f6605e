/**
 * One side of bench/collect-throughput.ts: POST /collect either through the whole gateway (`full`:
 * every plugin, then the tracking pipeline, acknowledged once group-committed to the hit journal,
 * which is shipped to ClickHouse/chDB in batches) or as a bare Express endpoint that parses the
 * same JSON body and answers the same JSON (`bare`). Prints `listening <url> <trackingId>`; on
 * SIGTERM the full side ships its journal, counts the stored hits and prints `stored <n>` so the
 * driver can check that every acknowledged hit is durable.
 */
import express from 'express';
import { createServer } from 'node:http';
import { pino } from 'pino';
import { createPlugins } from '../plugins/index.js';
import { buildApp, storeConfig } from '../src/app.js';
import { WebsiteRepository } from '../src/analytics/websites.js';
import { loadConfig } from '../src/config.js';
import { openStores } from '../src/stores/index.js';

const mode = process.argv[2];
if (mode !== 'bare' && mode !== 'full') throw new Error('usage: collect-server.ts bare|full');
const config = loadConfig();
const logger = pino({ level: 'warn' });

let app: express.Express;
let trackingId = 'WA-BARE000000';
let finish = async () => {};
if (mode === 'full') {
  const stores = await openStores(storeConfig(config), logger);
  // BENCH_WITHOUT=audit,metrics: leave plugins out, to see what each one costs.
  const without = new Set((process.env.BENCH_WITHOUT ?? '').split(',').filter(Boolean));
  const weir = await buildApp(config, { logger, stores, plugins: createPlugins().filter((p) => !without.has(p.name)) });
  const website = await new WebsiteRepository(stores.metadata).create('bench', 'bench', { domain: 'bench.example', name: 'Bench' });
  trackingId = website.trackingId;
  app = weir;
  finish = async () => {
    await weir.weir.close();
    const r = await stores.warehouse.client.query({ query: 'SELECT count() AS n FROM analytics_hits WHERE website_id = {w:UUID}', query_params: { w: website.id }, format: 'JSONEachRow' });
    console.log(`stored ${(await r.json<{ n: string }>())[0]!.n}`);
    await stores.close();
  };
} else {
  app = express();
  app.post('/collect', express.json({ limit: '8kb' }), (req, res) => {
    res.json({ status: 'ok', received: typeof req.body?.tid === 'string' ? 1 : 0 });
  });
}
// A backlog above Node's default 511, so a thousand clients connecting at once queue rather than
// have their SYNs dropped (and retried a second or more later).
const server = createServer(app).listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  const { port } = server.address() as { port: number };
  console.log(`listening http://127.0.0.1:${port} ${trackingId}`);
});
server.keepAliveTimeout = 60_000;
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(async () => {
    await finish();
    process.exit(0);
  });
});
