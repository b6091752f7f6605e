import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCursor, keysetPage, type KeysetList } from '../src/list-cursor.js';
import { ProblemError } from '../src/problem.js';
import { openMetadataStore, type MetadataStore } from '../src/stores/metadata.js';
import { cleanupTestStores, testStoreConfig } from './helpers/store-env.js';

const cfg = testStoreConfig('list_cursor');
let db: MetadataStore;

// Rows 'a'..'e' share one created_at; 'f' and 'g' fall in one millisecond, apart only in microseconds.
const ROWS: Array<[id: string, createdAt: string]> = [
  ['c', '2026-01-01 00:00:00+00'],
  ['a', '2026-01-01 00:00:00+00'],
  ['e', '2026-01-01 00:00:00+00'],
  ['b', '2026-01-01 00:00:00+00'],
  ['d', '2026-01-01 00:00:00+00'],
  ['g', '2026-01-01 00:00:01.123456+00'],
  ['f', '2026-01-01 00:00:01.123400+00'],
  ['h', '2026-01-01 00:00:02+00'],
  ['other', '2026-01-01 00:00:00+00'],
];
const ASCENDING = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];

beforeAll(async () => {
  // No migrations: the helper is tried on a table of its own.
  db = await openMetadataStore({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, schema: cfg.databaseSchema, logger: pino({ level: 'silent' }), migrationsDir: mkdtempSync(path.join(os.tmpdir(), 'weir-no-migrations-')) });
  await db.query('CREATE TABLE items (id text NOT NULL, owner text NOT NULL, created_at timestamptz NOT NULL)');
  for (const [id, at] of ROWS) await db.query('INSERT INTO items (id, owner, created_at) VALUES ($1, $2, $3)', [id, id === 'other' ? 'someone-else' : 'me', at]);
});
afterAll(async () => {
  await db?.close();
  await cleanupTestStores(cfg);
});

const list = (order: 'asc' | 'desc', extra: Partial<KeysetList> = {}): KeysetList => ({ select: 'id', from: 'items', where: 'owner = $1', params: ['me'], order, ...extra });

/** Every page, following next_cursor until there is none. */
async function walk(order: 'asc' | 'desc', limit: number) {
  const pages: Array<{ items: Array<{ id: string }>; next_cursor: string | null }> = [];
  let cursor: string | undefined;
  do {
    const page = await keysetPage<{ id: string }>(db, list(order), { cursor, limit });
    pages.push(page);
    cursor = page.next_cursor ?? undefined;
  } while (cursor && pages.length < 20);
  return pages;
}

describe('keysetPage', () => {
  it.each([1, 2, 3, 8])('walks every row once in (created_at, id) order, ties included, %i at a time', async (limit) => {
    for (const order of ['asc', 'desc'] as const) {
      const pages = await walk(order, limit);
      expect(pages.flatMap((p) => p.items.map((r) => r.id))).toEqual(order === 'asc' ? ASCENDING : [...ASCENDING].reverse());
      expect(pages.length).toBe(Math.ceil(ASCENDING.length / limit));
    }
  });

  it('gives no next_cursor on the last page, even when it is exactly full', async () => {
    const pages = await walk('asc', 4);
    expect(pages.map((p) => [p.items.length, p.next_cursor === null])).toEqual([
      [4, false],
      [4, true],
    ]);
    expect((await keysetPage(db, list('asc', { params: ['nobody'] }), { limit: 5 })).next_cursor).toBeNull();
  });

  it('passes the list filter alone; a filter with OR does not leak past the cursor', async () => {
    const page = await keysetPage<{ id: string }>(db, list('asc', { where: "owner = $1 OR id = 'other'" }), { limit: 2 });
    const next = await keysetPage<{ id: string }>(db, list('asc', { where: "owner = $1 OR id = 'other'" }), { cursor: page.next_cursor!, limit: 20 });
    expect([...page.items, ...next.items].map((r) => r.id)).toEqual(['a', 'b', 'c', 'd', 'e', 'other', 'f', 'g', 'h']);
  });

  it('accepts a cursor that ends at milliseconds (as they were given out before)', async () => {
    const page = await keysetPage<{ id: string }>(db, list('asc'), { cursor: encodeCursor({ c: '2026-01-01T00:00:00.000Z', i: 'c' }), limit: 2 });
    expect(page.items.map((r) => r.id)).toEqual(['d', 'e']);
  });

  const tampered: Record<string, string> = {
    'not base64 JSON': 'not-a-cursor',
    'JSON but not an object': Buffer.from('42').toString('base64url'),
    'a missing id': encodeCursor({ c: '2026-01-01T00:00:00.000000Z' }),
    'a number for the time': encodeCursor({ c: 1767225600000, i: 'a' }),
    'a number for the id': encodeCursor({ c: '2026-01-01T00:00:00.000000Z', i: 7 }),
    'a date that does not exist': encodeCursor({ c: '2026-02-30T00:00:00.000000Z', i: 'a' }),
    'an hour past 23': encodeCursor({ c: '2026-01-01T24:00:00.000000Z', i: 'a' }),
    'a time in another format': encodeCursor({ c: '2026-01-01 00:00:00+00', i: 'a' }),
    'a time before 1970': encodeCursor({ c: '0000-01-01T00:00:00.000000Z', i: 'a' }),
    'SQL in the time': encodeCursor({ c: "2026-01-01T00:00:00.000000Z'; DROP TABLE items; --", i: 'a' }),
  };
  it.each(Object.entries(tampered))('answers 400 naming the cursor for %s', async (_, cursor) => {
    const err = await keysetPage(db, list('asc'), { cursor, limit: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProblemError);
    expect((err as ProblemError).status).toBe(400);
    expect((err as ProblemError).errors).toEqual([{ in: 'query', parameter: 'cursor', detail: 'invalid cursor' }]);
  });

  it('checks the id with validId before it reaches SQL', async () => {
    const isUuid = (id: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id);
    const cursor = encodeCursor({ c: '2026-01-01T00:00:00.000000Z', i: 'a' });
    const err = await keysetPage(db, list('asc', { validId: isUuid }), { cursor, limit: 2 }).catch((e: unknown) => e);
    expect((err as ProblemError).status).toBe(400);
    expect((await keysetPage(db, list('asc', { validId: (id) => id === 'a' }), { cursor, limit: 2 })).items).toHaveLength(2);
  });
});
