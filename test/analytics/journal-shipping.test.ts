import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GroupCommitter, type GroupCommitOptions } from '../../src/analytics/group-commit.js';
import { frameHeader } from '../../src/analytics/hit-journal-frame.js';
import { newInstanceName, parseInstanceName } from '../../src/analytics/hit-journal-owner.js';
import { createAnalyticsTables, type HitRow, type SessionRow } from '../../src/analytics/warehouse-tables.js';
import { openStores, type Stores, type StoreConfig } from '../../src/stores/index.js';
import { cleanupTestStores, testStoreConfig } from '../helpers/store-env.js';

const logger = pino({ level: 'silent' });
let config: StoreConfig;
let stores: Stores;
let root: string;
const committers: GroupCommitter[] = [];

beforeAll(async () => {
  config = testStoreConfig('analytics_journal_ship');
  stores = await openStores(config, logger);
  await createAnalyticsTables(stores.warehouse);
  root = path.join(config.dataDir, 'analytics-journal');
}, 60_000);
afterAll(async () => {
  for (const c of committers) await c.close();
  await stores?.close();
  if (config) await cleanupTestStores(config);
});

async function open(options: Partial<GroupCommitOptions>): Promise<GroupCommitter> {
  const c = await GroupCommitter.open(stores.warehouse, { maxQueuedRows: 10_000, maxJournalRows: 100_000, journalRoot: root, shipIntervalMs: 60_000, shipBatchRows: 1_000_000, logger, ...options });
  committers.push(c);
  return c;
}

/** A new visitor's first hit: its hit row and its session row (2 rows). */
function firstHit(websiteId: string, page: string): [HitRow, SessionRow] {
  const session = randomUUID();
  const time = new Date().toISOString();
  const hit = { website_id: websiteId, time, hit_type: 'pageview', visitor: '7', client_id: '', user_id: '', session_id: session, session_hit_number: 1, is_new_visitor: 1, is_interaction: 1, page, hostname: 'x.example', title: '', referrer: '', source: '(direct)', medium: '(none)', campaign: '', keyword: '', content: '', event_category: '', event_action: '', event_label: '', event_value: null, country: 'DE', device_type: 'desktop', browser: 'Chrome', os: 'Linux', language: '', screen_resolution: '', goal_ids: [] } satisfies HitRow;
  const row = { website_id: websiteId, session_id: session, sign: 1, version: 1, start_time: time, end_time: time, visitor: '7', is_new_visitor: 1, hits: 1, pageviews: 1, interactions: 1, entry_page: page, entry_hostname: 'x.example', referrer: '', source: '(direct)', medium: '(none)', campaign: '', country: 'DE', device_type: 'desktop', browser: 'Chrome', os: 'Linux', goal_ids: [], goal_values: [] };
  return [hit, row as SessionRow];
}

const count = async (table: string, websiteId: string, expr = 'count()') => {
  const rs = await stores.warehouse.client.query({ query: `SELECT ${expr} AS n FROM ${table} WHERE website_id = {w:UUID}`, query_params: { w: websiteId }, format: 'JSONEachRow' });
  return Number((await rs.json<{ n: string }>())[0]!.n);
};

async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; !(await condition()); i++) {
    if (i > 3000) throw new Error('condition not met in 30 s');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('shipping journaled hits to the warehouse', () => {
  it('ships once the journal holds the batch size, not before', async () => {
    const c = await open({ shipBatchRows: 6 });
    const site = randomUUID();
    await c.write(...split(firstHit(site, '/a')));
    await c.write(...split(firstHit(site, '/b')));
    // Acknowledged (journaled), 4 rows: below the batch size, and the interval is a minute away.
    expect(c.shipped.inserts).toBe(0);
    expect(await count('analytics_hits', site)).toBe(0);
    await c.write(...split(firstHit(site, '/c')));
    await until(() => c.shipped.inserts === 1);
    expect(c.shipped.rows).toBe(6);
    expect(await count('analytics_hits', site)).toBe(3);
    expect(await count('analytics_sessions', site, 'sum(sign)')).toBe(3);
  });

  it('ships at the interval when the batch size is not reached', async () => {
    const c = await open({ shipIntervalMs: 200 });
    const site = randomUUID();
    await c.write(...split(firstHit(site, '/t')));
    await until(() => c.shipped.inserts === 1);
    expect(await count('analytics_hits', site)).toBe(1);
  });

  it('completes an insert cut short halfway through the views when it is shipped again, doubling nothing', async () => {
    const c = await open({});
    const site = randomUUID();
    await c.write(...split(firstHit(site, '/p1')));
    await c.write(...split(firstHit(site, '/p2')));
    // The sessions rollup refuses the insert: the hits (and maybe others) are written, it is not.
    await stores.warehouse.client.command({ query: 'ALTER TABLE analytics_sessions_15m ADD CONSTRAINT journal_test CHECK sessions > 100' });
    try {
      await expect(c.flush()).rejects.toThrow(/journal_test/);
    } finally {
      await stores.warehouse.client.command({ query: 'ALTER TABLE analytics_sessions_15m DROP CONSTRAINT journal_test' });
    }
    expect(await count('analytics_sessions_15m', site)).toBe(0);
    await c.flush();
    expect(await count('analytics_hits', site)).toBe(2);
    expect(await count('analytics_sessions', site, 'sum(sign)')).toBe(2);
    expect(await count('analytics_hits_15m', site, 'sum(hits)')).toBe(2);
    expect(await count('analytics_pages_15m', site, 'sum(hits)')).toBe(2);
    expect(await count('analytics_sessions_15m', site, 'sumIf(sessions, grain = 0)')).toBe(2);
  });

  it('replays an exited process\'s segment that was shipped but not yet removed without inserting it twice', async () => {
    const site = randomUUID();
    const me = parseInstanceName(newInstanceName())!;
    const dead = `${me.host}~${me.scope}~${spawnSync(process.execPath, ['-e', '']).pid}~0~fedcba987654`;
    const segment = path.join(root, dead, '000000000001.wal');
    // A segment as a gateway writes it: two acknowledged hits (a frame of ingest rows).
    const rows = [firstHit(site, '/r1'), firstHit(site, '/r2')].flat().map((r, i) => `{"kind":${i % 2},${JSON.stringify(r).slice(1)}\n`);
    const payload = Buffer.from(rows.join(''));
    const bytes = Buffer.concat([frameHeader([payload]), payload]);
    mkdirSync(path.dirname(segment), { recursive: true });
    writeFileSync(segment, bytes);
    // A restart adopts and ships it...
    const first = await open({});
    await first.flush();
    await first.close();
    expect(await count('analytics_hits', site)).toBe(2);
    // ... and dies before removing the file: the next one ships it again.
    mkdirSync(path.dirname(segment), { recursive: true });
    writeFileSync(segment, bytes);
    const second = await open({});
    await second.flush();
    expect(second.shipped.rows).toBe(4);
    expect(await count('analytics_hits', site)).toBe(2);
    expect(await count('analytics_sessions', site, 'sum(sign)')).toBe(2);
    expect(await count('analytics_hits_15m', site, 'sum(hits)')).toBe(2);
  });
});

const split = ([hit, session]: [HitRow, SessionRow]): [HitRow[], SessionRow[]] => [[hit], [session]];
