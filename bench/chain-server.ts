/**
 * One side of bench/chain-throughput.ts: serves GET /healthz either through the full gateway chain
 * (`full`: every plugin in createPlugins(), rate limits in Redis when REDIS_URL is set, audit to
 * PostgreSQL/PGlite, metrics) or as the bare handler (`bare`: Express and the same handler, nothing
 * else). Prints `listening <url>` when ready.
 */
import express from 'express';
import { pino } from 'pino';
import { operations } from '../generated/registry.js';
import { createPlugins } from '../plugins/index.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { adaptHandler } from '../src/gateway/handler-adapter.js';
import { operationsHandlers } from '../src/handlers/operations.js';
import { openStores } from '../src/stores/index.js';
import { storeConfig } from '../src/app.js';

const mode = process.argv[2];
if (mode !== 'bare' && mode !== 'full') throw new Error('usage: chain-server.ts bare|full');
const config = loadConfig();
const logger = pino({ level: 'warn' });
const stores = await openStores(storeConfig(config), logger);

let app: express.Express;
if (mode === 'full') {
  // BENCH_WITHOUT=audit,metrics: leave plugins out, to see what each one costs.
  const without = new Set((process.env.BENCH_WITHOUT ?? '').split(',').filter(Boolean));
  app = await buildApp(config, { logger, stores, plugins: createPlugins().filter((p) => !without.has(p.name)) });
} else {
  app = express();
  const { getHealth } = operationsHandlers({ stores, version: 'bench', startedAt: Date.now() });
  app.get('/healthz', adaptHandler(operations.getHealth, getHealth as never));
}
const server = app.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  console.log(`listening http://127.0.0.1:${port}`);
});
server.keepAliveTimeout = 60_000;
// BENCH_HEAP_PROFILE=<dir>: sample allocations, garbage included (what the GC has to clear), and
// write them as a .heapprofile (Chrome DevTools' Memory tab) on exit.
const heapProfile = mode === 'full' && process.env.BENCH_HEAP_PROFILE ? await startAllocationSampling() : undefined;
async function startAllocationSampling() {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  return async () => {
    const { profile } = await session.post('HeapProfiler.stopSampling');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${process.env.BENCH_HEAP_PROFILE}/full-${process.pid}.heapprofile`, JSON.stringify(profile));
  };
}
process.on('SIGTERM', () => {
  const profiled = heapProfile?.();
  server.closeAllConnections();
  server.close(async () => {
    await profiled;
    await (app as { weir?: { close(): Promise<void> } }).weir?.close();
    await stores.close();
    process.exit(0);
  });
});
