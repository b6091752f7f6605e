import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { pino } from 'pino';
import { buildApp, storeConfig, type AppOverrides, type WeirApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { openStores, type Stores } from '../../src/stores/index.js';
import { attachUpgrades } from '../../src/server.js';
import { cleanupTestStores, testStoreConfig } from './store-env.js';

export interface TestGateway {
  url: string;
  app: WeirApp;
  config: Config;
  stores: Stores;
  close(): Promise<void>;
}

/** Config for a test: isolated stores (embedded or real, per WEIR_TEST_STORES), quiet logs. */
export function testConfig(name: string, env: Record<string, string> = {}): Config {
  const stores = testStoreConfig(name);
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: stores.dataDir,
    DATABASE_URL: stores.databaseUrl,
    DATABASE_SCHEMA: stores.databaseSchema,
    CLICKHOUSE_DATABASE: stores.clickhouseDatabase,
    REDIS_URL: stores.redisUrl,
    REDIS_KEY_PREFIX: stores.redisKeyPrefix,
    ...env,
  });
}

/** Builds the app on its own stores and listens on a free port of 127.0.0.1. */
export async function startGateway(
  name: string,
  options: { env?: Record<string, string>; overrides?: Omit<AppOverrides, 'stores'>; stores?: Stores } = {},
): Promise<TestGateway> {
  const config = testConfig(name, options.env);
  const logger = pino({ level: process.env.WEIR_TEST_LOG_LEVEL ?? "silent" });
  // chDB binds one data directory per process: a second gateway in the same test file shares the stores.
  const stores = options.stores ?? (await openStores(storeConfig(config), logger));
  const app = await buildApp(config, { logger, ...options.overrides, stores });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  attachUpgrades(server, app);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    config,
    stores,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await app.weir.close();
      if (!options.stores) {
        await stores.close();
        await cleanupTestStores(storeConfig(config));
      }
    },
  };
}
