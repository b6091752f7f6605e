import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testStoreConfig } from '../../test/helpers/store-env.js';
import { openSharedState, type SharedState } from '../stores/shared-state.js';
import { QueryCache } from './cache.js';
import type { QueryPage } from './execute.js';
import type { CompiledQuery } from './types.js';

const cfg = testStoreConfig('qcache');
let shared: SharedState;
beforeAll(async () => {
  shared = await openSharedState({ redisUrl: cfg.redisUrl, keyPrefix: cfg.redisKeyPrefix, logger: pino({ level: 'silent' }) });
});
afterAll(async () => {
  for (const ds of ['ds_a', 'ds_b', 'ds_d']) await shared?.del(`qcache-gen:${ds}`);
  await shared?.close();
});

const query = (sql: string, params: Record<string, unknown> = {}): CompiledQuery => ({ sql, countSql: `count ${sql}`, params, columns: [], limit: 10, offset: 0, fingerprint: 'f' });
const page = (n: number): QueryPage => ({ rows: [{ n }], columns: [], total_rows: 1, next_cursor: null, query_time_ms: 1, sampled: false });

describe('QueryCache', () => {
  it('serves a repeated query from the cache until ingest invalidates the dataset', async () => {
    const cache = new QueryCache(shared, 60_000, pino({ level: 'silent' }));
    let runs = 0;
    const run = async () => page(++runs);
    expect(await cache.getOrRun('ds_a', 1, query('q1'), true, run)).toMatchObject({ rows: [{ n: 1 }], cached: false });
    expect(await cache.getOrRun('ds_a', 1, query('q1'), true, run)).toMatchObject({ rows: [{ n: 1 }], cached: true });
    await cache.invalidate('ds_a');
    expect(await cache.getOrRun('ds_a', 1, query('q1'), true, run)).toMatchObject({ rows: [{ n: 2 }], cached: false });
    expect(runs).toBe(2);
  });

  it('keys by parameters (masks and row rules differ per caller) and schema version', async () => {
    const cache = new QueryCache(shared, 60_000, pino({ level: 'silent' }));
    let runs = 0;
    const run = async () => page(++runs);
    await cache.getOrRun('ds_b', 1, query('q', { rr0: 'eu' }), true, run);
    expect((await cache.getOrRun('ds_b', 1, query('q', { rr0: 'us' }), true, run)).cached).toBe(false);
    expect((await cache.getOrRun('ds_b', 2, query('q', { rr0: 'eu' }), true, run)).cached).toBe(false);
    expect((await cache.getOrRun('ds_b', 1, query('q', { rr0: 'eu' }), true, run)).cached).toBe(true);
    expect(runs).toBe(3);
  });

  it('runs the query when shared state fails, and when caching is off', async () => {
    const broken = { get: async () => { throw new Error('down'); }, set: async () => { throw new Error('down'); } } as unknown as SharedState;
    const cache = new QueryCache(broken, 60_000, pino({ level: 'silent' }));
    expect(await cache.getOrRun('ds_c', 1, query('q'), true, async () => page(7))).toMatchObject({ rows: [{ n: 7 }], cached: false });
    const off = new QueryCache(shared, 0, pino({ level: 'silent' }));
    let runs = 0;
    await off.getOrRun('ds_d', 1, query('q'), true, async () => page(++runs));
    await off.getOrRun('ds_d', 1, query('q'), true, async () => page(++runs));
    expect(runs).toBe(2);
  });
});
