/**
 * One side of bench/collect-throughput.ts: POST /collect either through the
 * whole gateway (`full`: every plugin, then the tracking pipeline, acknowledged once group-committed
 * to the hit journal, which is shipped to ClickHouse/chDB in batches), as a bare Express endpoint
 * that parses the same JSON body and answers the same JSON (`bare`), or as the bare endpoint plus
 * only the work the issues require of every hit (`floor`, see floorApp). Prints
 * `listening <url> <trackingId>`; on SIGTERM the full and floor sides print `stored <n>` (hits
 * shipped and counted, or journaled) so the driver can check that every acknowledged hit is durable.
 */
import express from 'express';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { pino } from 'pino';
import { operations } from '../generated/registry.js';
import { auditRecord, auditSettings, requestStart } from '../plugins/audit/record.js';
import { createPlugins } from '../plugins/index.js';
import { RedisLimiter } from '../plugins/rate-limit/redis-limiter.js';
import { newRequestId } from '../plugins/request-id/request-id.js';
import { HitJournal } from '../src/analytics/hit-journal.js';
import { buildApp, storeConfig } from '../src/app.js';
import { WebsiteRepository } from '../src/analytics/websites.js';
import { createAuditLog } from '../src/audit/index.js';
import { loadConfig } from '../src/config.js';
import { createGatewayMetrics } from '../src/observability/metrics.js';
import { openStores } from '../src/stores/index.js';

const mode = process.argv[2];
if (mode !== 'bare' && mode !== 'full' && mode !== 'floor') throw new Error('usage: collect-server.ts bare|full|floor');
const config = loadConfig();
const logger = pino({ level: 'warn' });

let app: express.Express;
let trackingId = 'WA-BARE000000';
let finish = async () => {};
if (mode === 'full') {
  const stores = await openStores(storeConfig(config), logger);
  // BENCH_WITHOUT=audit,metrics: leave plugins out, to see what each one costs.
  const without = new Set((process.env.BENCH_WITHOUT ?? '').split(',').filter(Boolean));
  // A plugin left out stays registered (the app gives some, e.g. validation, options) but applies to no operation.
  const plugins = createPlugins().map((p) => (without.has(p.name) ? { ...p, forOperation: () => undefined, global: undefined } : p));
  const weir = await buildApp(config, { logger, stores, plugins });
  const website = await new WebsiteRepository(stores.metadata).create('bench', 'bench', { domain: 'bench.example', name: 'Bench' });
  trackingId = website.trackingId;
  app = weir;
  finish = async () => {
    await weir.weir.close();
    const r = await stores.warehouse.client.query({ query: 'SELECT count() AS n FROM analytics_hits WHERE website_id = {w:UUID}', query_params: { w: website.id }, format: 'JSONEachRow' });
    console.log(`stored ${(await r.json<{ n: string }>())[0]!.n}`);
    await stores.close();
  };
} else if (mode === 'floor') {
  ({ app, finish } = await floorApp());
} else {
  app = express();
  app.post('/collect', express.json({ limit: '8kb' }), (req, res) => {
    res.json({ status: 'ok', received: typeof req.body?.tid === 'string' ? 1 : 0 });
  });
}
/**
 * The bare endpoint plus only what the issues require of each hit, through the gateway's own
 * modules: the rate limits as one Redis round trip (the per-IP and per-website GCRA decisions,
 * batched by RedisLimiter into one script call), one compare-and-set of the visitor's session state
 * in shared state (one round trip), an audit record (the audit plugin's record and writer), and a
 * durable append to a hit journal (write + fdatasync shared by the requests queued meanwhile),
 * answered once on disk. No validation, enrichment, sessions logic, goals or shipping: the floor a
 * /collect implementation can't go under on this machine.
 */
async function floorApp(): Promise<{ app: express.Express; finish: () => Promise<void> }> {
  const stores = await openStores(storeConfig(config), logger);
  if (!stores.shared.redis) throw new Error('the floor mode needs Redis (REDIS_URL)');
  const limiter = RedisLimiter.for(stores.shared.redis);
  const bucket = { burst: 1_000_000_000, intervalUs: 1 };
  const audit = createAuditLog({ metadata: stores.metadata, config, metrics: createGatewayMetrics(stores), logger });
  const settings = auditSettings(operations.collectHit, new Set());
  const journal = await HitJournal.open({ root: path.join(config.dataDir, 'floor-journal'), logger });
  const floor = express();
  floor.post('/collect', express.json({ limit: '8kb' }), (req, res, next) => {
    // As the audit plugin: a request waits for room in the audit buffer before it goes on.
    const admitted = audit.writer.admit();
    if (admitted === true) return record(req, res, next);
    admitted.then((ok) => (ok ? record(req, res, next) : next(new Error('the audit log is not keeping up'))), next);
  });
  const record: express.RequestHandler = (req, res, next) => {
    req.id = newRequestId(Date.now());
    const at = requestStart(req);
    res.on('close', () => audit.writer.add(auditRecord(settings, req, res, at)));
    const body = req.body as Record<string, unknown>;
    const cid = String(body.cid);
    let limits = 2;
    const limited = (err: unknown) => {
      if (err) return next(err);
      if (--limits > 0) return;
      stores.shared
        .compareAndSet([[`floor:s:${cid}`, null]], [{ key: `floor:s:${cid}`, value: JSON.stringify({ t: Date.now(), hits: 1 }), ttlMs: 1_800_000 }])
        .then(() => journal.append(Buffer.from(`${JSON.stringify({ time: Date.now(), ...body })}\n`), 1, [String(body.tid)]))
        .then(() => {
          res.json({ status: 'ok', received: 1 });
        }, next);
    };
    limiter.decide(`floor:ip:${at.clientIp}`, bucket, 1, false, limited);
    limiter.decide(`floor:site:${String(body.tid)}`, bucket, 1, false, limited);
  };
  return {
    app: floor,
    finish: async () => {
      await journal.close();
      await audit.writer.close();
      let stored = 0;
      for (const file of await readdir(journal.dir)) stored += (await readFile(path.join(journal.dir, file), 'utf8')).split('"tid":').length - 1;
      console.log(`stored ${stored}`);
      await stores.close();
    },
  };
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
