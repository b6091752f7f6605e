import { afterAll, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { cleanupTestStores, testStoreConfig, testStoreMode } from '../../test/helpers/store-env.js';
import { checkStores, openStores, type Stores } from './index.js';
import type { SharedState } from './shared-state.js';

// Lets one test make the warehouse fail to open, to check that openStores cleans up the others.
const fault = vi.hoisted(() => ({ warehouse: false, closed: [] as string[] }));
vi.mock('./warehouse.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('./warehouse.js')>();
  return {
    ...orig,
    openWarehouse: async (o: Parameters<typeof orig.openWarehouse>[0]) => {
      if (fault.warehouse) throw new Error('warehouse down');
      return orig.openWarehouse(o);
    },
  };
});
vi.mock('./shared-state.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('./shared-state.js')>();
  return {
    ...orig,
    openSharedState: async (o: Parameters<typeof orig.openSharedState>[0]) => {
      const s = await orig.openSharedState(o);
      const close = s.close.bind(s);
      return Object.assign(s, { close: () => (fault.closed.push('shared'), close()) });
    },
  };
});

vi.mock('./metadata.js', async (importOriginal) => {
  const orig = await importOriginal<typeof import('./metadata.js')>();
  return {
    ...orig,
    openMetadataStore: async (o: Parameters<typeof orig.openMetadataStore>[0]) => {
      const m = await orig.openMetadataStore(o);
      return { ...m, close: () => (fault.closed.push('metadata'), m.close()) };
    },
  };
});

const real = testStoreMode() === 'real';
const lines: string[] = [];
const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
const cfg = testStoreConfig('index'); // one config (one chDB path) for the whole file

afterAll(async () => {
  await cleanupTestStores(cfg);
});

describe('openStores / checkStores', () => {
  it('closes what it already opened when one store fails, and rethrows', async () => {
    fault.warehouse = true;
    try {
      await expect(openStores(cfg, logger)).rejects.toThrow('warehouse down');
      expect(fault.closed.sort()).toEqual(['metadata', 'shared']);
    } finally {
      fault.warehouse = false;
    }
  });

  let stores: Stores;

  it('opens all three stores and logs which kind each one is, without passwords', async () => {
    stores = await openStores(cfg, logger);
    expect(stores.metadata.kind).toBe(real ? 'postgres' : 'pglite');
    expect(stores.warehouse.kind).toBe('chdb');
    expect(stores.shared.kind).toBe(real ? 'redis' : 'memory');
    const msgs = lines.map((l) => JSON.parse(l).msg as string);
    expect(msgs).toContain(
      real ? 'metadata: PostgreSQL at 127.0.0.1:5432/test' : `metadata: embedded PGlite at ${cfg.dataDir}/pglite`,
    );
    expect(msgs.some((m) => m.startsWith(`warehouse: embedded chDB at ${cfg.dataDir}/chdb`))).toBe(true);
    expect(msgs).toContain(real ? 'shared state: Redis at redis://127.0.0.1:6379' : 'shared state: in-process memory (single instance only)');
  });

  it('reports every store up with its kind and latency', async () => {
    const res = await checkStores(stores);
    expect(res.ready).toBe(true);
    for (const c of Object.values(res.stores)) {
      expect(c.status).toBe('up');
      expect(c.latency_ms).toBeGreaterThanOrEqual(0);
      expect(c.error).toBeUndefined();
    }
    expect(res.stores.metadata.kind).toBe(stores.metadata.kind);
  });

  it('reports a store whose ping fails as down with the error, without throwing', async () => {
    const broken: SharedState = { ...stores.shared, kind: 'memory', ping: () => Promise.reject(new Error('connection refused')) };
    const res = await checkStores({ ...stores, shared: broken });
    expect(res.ready).toBe(false);
    expect(res.stores.shared).toMatchObject({ status: 'down', kind: 'memory', error: 'connection refused' });
    expect(res.stores.metadata.status).toBe('up');
  });

  it('reports a hanging store as down after the timeout', async () => {
    const hanging = { ...stores.warehouse, ping: () => new Promise<void>(() => {}) };
    const started = Date.now();
    const res = await checkStores({ ...stores, warehouse: hanging }, 100);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(res.stores.warehouse).toMatchObject({ status: 'down', kind: 'chdb', error: 'ping timed out after 100 ms' });
    expect(res.ready).toBe(false);
  });

  it('reports a real store that was closed as down', async () => {
    await stores.shared.close();
    const res = await checkStores(stores);
    expect(res.ready).toBe(false);
    expect(res.stores.shared.status).toBe('down');
    expect(res.stores.shared.error).toBeTruthy();
  });

  it('closes all stores idempotently, tolerating a failing close', async () => {
    stores.shared.close = () => Promise.reject(new Error('already gone'));
    lines.length = 0;
    await stores.close();
    await stores.close();
    expect(lines.some((l) => l.includes('shared: close failed'))).toBe(true);
    await expect(stores.metadata.ping()).rejects.toThrow();
    await expect(stores.warehouse.ping()).rejects.toThrow();
  });
});
