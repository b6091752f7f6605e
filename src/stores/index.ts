import type { Logger } from 'pino';
import { describeMetadata, openMetadataStore, type MetadataStore } from './metadata.js';
import { describeSharedState, openSharedState, type SharedState } from './shared-state.js';
import { describeWarehouse, openWarehouse, type Warehouse } from './warehouse.js';

export type { MetadataStore, Queryable } from './metadata.js';
export type { SharedState } from './shared-state.js';
export type { Warehouse } from './warehouse.js';

export interface Stores {
  metadata: MetadataStore;
  warehouse: Warehouse;
  shared: SharedState;
  /** Closes all three; an error in one is logged and the others still close. Idempotent. */
  close(): Promise<void>;
}

export interface StoreConfig {
  databaseUrl?: string;
  databaseSchema: string;
  clickhouseUrl?: string;
  clickhouseDatabase: string;
  redisUrl?: string;
  redisKeyPrefix: string;
  dataDir: string;
}

export type StoreKind = MetadataStore['kind'] | Warehouse['kind'] | SharedState['kind'];
export interface StoreCheck { status: 'up' | 'down'; kind: StoreKind; latency_ms: number; error?: string }

type Closable = { close(): Promise<void> };

async function closeAll(named: Array<[string, Closable]>, logger: Logger): Promise<void> {
  await Promise.all(
    named.map(async ([name, store]) => {
      try {
        await store.close();
      } catch (err) {
        logger.error({ err }, `${name}: close failed`);
      }
    }),
  );
}

export async function openStores(cfg: StoreConfig, logger: Logger): Promise<Stores> {
  const names = ['metadata', 'warehouse', 'shared'] as const;
  const results = await Promise.allSettled([
    openMetadataStore({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, schema: cfg.databaseSchema, logger }),
    openWarehouse({ clickhouseUrl: cfg.clickhouseUrl, dataDir: cfg.dataDir, database: cfg.clickhouseDatabase, logger }),
    openSharedState({ redisUrl: cfg.redisUrl, keyPrefix: cfg.redisKeyPrefix, logger }),
  ]);
  const [m, w, s] = results;
  if (m.status === 'rejected' || w.status === 'rejected' || s.status === 'rejected') {
    const opened: Array<[string, Closable]> = [];
    let first: unknown;
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') opened.push([names[i]!, r.value]);
      else if (first === undefined) first = r.reason;
      else logger.error({ err: r.reason }, `${names[i]}: failed to open`);
    });
    await closeAll(opened, logger);
    throw first;
  }

  logger.info(`metadata: ${describeMetadata(cfg)}`);
  logger.info(`warehouse: ${describeWarehouse({ ...cfg, database: cfg.clickhouseDatabase })}`);
  logger.info(`shared state: ${describeSharedState(cfg)}`);

  const stores = { metadata: m.value, warehouse: w.value, shared: s.value };
  let closing: Promise<void> | undefined;
  return {
    ...stores,
    close() {
      closing ??= closeAll(Object.entries(stores), logger);
      return closing;
    },
  };
}

async function check(store: { kind: StoreKind; ping(): Promise<void> }, timeoutMs: number): Promise<StoreCheck> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(() => store.ping()),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`ping timed out after ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { status: 'up', kind: store.kind, latency_ms: Math.round(performance.now() - started) };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    return { status: 'down', kind: store.kind, latency_ms: Math.round(performance.now() - started), error };
  } finally {
    clearTimeout(timer);
  }
}

/** Pings each store with a timeout; never throws. */
export async function checkStores(
  stores: Stores,
  timeoutMs = 2000,
): Promise<{ ready: boolean; stores: { metadata: StoreCheck; warehouse: StoreCheck; shared: StoreCheck } }> {
  const [metadata, warehouse, shared] = await Promise.all([
    check(stores.metadata, timeoutMs),
    check(stores.warehouse, timeoutMs),
    check(stores.shared, timeoutMs),
  ]);
  const ready = metadata.status === 'up' && warehouse.status === 'up' && shared.status === 'up';
  return { ready, stores: { metadata, warehouse, shared } };
}
