import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTestStores, testStoreConfig } from '../../test/helpers/store-env.js';
import { ProblemError } from '../problem.js';
import { openWarehouse, type Warehouse } from '../stores/warehouse.js';
import { compileQuery } from './compile.js';
import { runQuery } from './execute.js';
import type { AccessView, Mask, QueryableDataset, QueryRequest } from './types.js';

const cfg = testStoreConfig('query');
let wh: Warehouse;
const limits = { maxExecutionSeconds: 10, maxMemoryBytes: 1e9 };

const dataset: QueryableDataset = {
  table: '',
  timeColumn: 'event_time',
  columns: [
    { name: 'id', type: 'int', nullable: false },
    { name: 'event_time', type: 'timestamp', nullable: false },
    { name: 'day', type: 'date', nullable: false },
    { name: 'region', type: 'string', nullable: false },
    { name: 'amount', type: 'float', nullable: false },
    { name: 'qty', type: 'int', nullable: false },
    { name: 'active', type: 'bool', nullable: false },
    { name: 'user_id', type: 'string', nullable: true },
    { name: 'card', type: 'string', nullable: true },
    { name: 'tags', type: 'array', nullable: false, element: 'string' },
    { name: 'secret', type: 'string', nullable: true },
  ],
};

// 23:30 UTC on Jan 8 is Jan 9 in Berlin and still Jan 8 in New York.
const rows = [
  { id: 1, event_time: '2026-01-08 10:00:00.000', day: '2026-01-08', region: 'eu-west', amount: 10.5, qty: 1, active: true, user_id: 'u1', card: '4111111111111111', tags: ['a', 'b'], secret: 's1' },
  { id: 2, event_time: '2026-01-08 23:30:00.000', day: '2026-01-08', region: 'eu-central', amount: 99.25, qty: 3, active: false, user_id: null, card: '5500000000000004', tags: ['b'], secret: 's2' },
  { id: 3, event_time: '2026-01-09 05:00:00.250', day: '2026-01-09', region: 'us-east', amount: 500, qty: 10, active: true, user_id: 'u2', card: null, tags: [], secret: 's3' },
  { id: 4, event_time: '2026-01-10 12:00:00.000', day: '2026-01-10', region: "o'brien; DROP TABLE x", amount: -3, qty: 0, active: false, user_id: 'u1', card: '340000000000009', tags: ['c'], secret: 's4' },
];

const allVisible = (): AccessView => ({ columns: new Map(dataset.columns.map((c) => [c.name, null])) });

beforeAll(async () => {
  wh = await openWarehouse({ dataDir: cfg.dataDir, database: cfg.clickhouseDatabase, logger: pino({ level: 'silent' }) });
  dataset.table = `\`${cfg.clickhouseDatabase}\`.\`events\``;
  await wh.client.command({
    query: `CREATE TABLE ${dataset.table} (id Int64, event_time DateTime64(3, 'UTC'), day Date32, region String, amount Float64, qty Int64, active Bool, user_id Nullable(String), card Nullable(String), tags Array(String), secret Nullable(String)) ENGINE = MergeTree ORDER BY (event_time, id)`,
  });
  await wh.client.insert({ table: dataset.table.replace(/`/g, ''), values: rows, format: 'JSONEachRow' });
});
afterAll(async () => {
  await wh?.close();
  await cleanupTestStores(cfg);
});

async function query(req: QueryRequest, view: AccessView = allVisible()) {
  return runQuery(wh, compileQuery(req, dataset, view), limits);
}
const ids = async (filters: QueryRequest['filters'], view?: AccessView) =>
  (await query({ select: ['id'], filters, order_by: [{ column: 'id', direction: 'asc' }] }, view)).rows.map((r) => r.id);

function problemsOf(fn: () => unknown): { pointer?: string; detail: string }[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProblemError);
    expect((err as ProblemError).status).toBe(400);
    return (err as ProblemError).errors ?? [];
  }
  throw new Error('expected a 400 problem');
}

describe('filters: every operator on every type', () => {
  const cases: [string, QueryRequest['filters'], number[]][] = [
    ['string equals', { column: 'region', op: 'equals', value: 'eu-west' }, [1]],
    ['string not_equals', { column: 'region', op: 'not_equals', value: 'eu-west' }, [2, 3, 4]],
    ['string in', { column: 'region', op: 'in', values: ['eu-west', 'us-east'] }, [1, 3]],
    ['string not_in', { column: 'region', op: 'not_in', values: ['eu-west', 'us-east'] }, [2, 4]],
    ['string contains', { column: 'region', op: 'contains', value: 'eu-' }, [1, 2]],
    ['string starts_with', { column: 'region', op: 'starts_with', value: 'us' }, [3]],
    ['string gt (lexical)', { column: 'region', op: 'gt', value: 'eu-west' }, [3, 4]],
    ['int gt', { column: 'qty', op: 'gt', value: 1 }, [2, 3]],
    ['int gte', { column: 'qty', op: 'gte', value: 1 }, [1, 2, 3]],
    ['int lt', { column: 'qty', op: 'lt', value: 1 }, [4]],
    ['int lte', { column: 'qty', op: 'lte', value: 3 }, [1, 2, 4]],
    ['int between', { column: 'qty', op: 'between', values: [1, 3] }, [1, 2]],
    ['float between', { column: 'amount', op: 'between', values: [10, 100] }, [1, 2]],
    ['float equals', { column: 'amount', op: 'equals', value: 99.25 }, [2]],
    ['bool equals', { column: 'active', op: 'equals', value: true }, [1, 3]],
    ['timestamp gte ISO', { column: 'event_time', op: 'gte', value: '2026-01-09T00:00:00Z' }, [3, 4]],
    ['timestamp lt ISO with offset', { column: 'event_time', op: 'lt', value: '2026-01-09T00:00:00-01:00' }, [1, 2]],
    ['timestamp lt ISO with the other offset', { column: 'event_time', op: 'lt', value: '2026-01-09T00:00:00+01:00' }, [1]],
    ['timestamp equals epoch ms', { column: 'event_time', op: 'equals', value: Date.parse('2026-01-09T05:00:00.250Z') }, [3]],
    ['date equals', { column: 'day', op: 'equals', value: '2026-01-08' }, [1, 2]],
    ['date between', { column: 'day', op: 'between', values: ['2026-01-09', '2026-01-10'] }, [3, 4]],
    ['is_null', { column: 'user_id', op: 'is_null' }, [2]],
    ['is_not_null', { column: 'card', op: 'is_not_null' }, [1, 2, 4]],
    ['array contains', { column: 'tags', op: 'contains', value: 'b' }, [1, 2]],
    ['and', { and: [{ column: 'region', op: 'starts_with', value: 'eu' }, { column: 'qty', op: 'gt', value: 1 }] }, [2]],
    ['or', { or: [{ column: 'qty', op: 'equals', value: 0 }, { column: 'qty', op: 'equals', value: 10 }] }, [3, 4]],
    ['not', { not: { column: 'active', op: 'equals', value: true } }, [2, 4]],
    ['nested', { and: [{ not: { column: 'user_id', op: 'is_null' } }, { or: [{ column: 'day', op: 'equals', value: '2026-01-10' }, { column: 'amount', op: 'lt', value: 20 }] }] }, [1, 4]],
    ['empty result', { column: 'region', op: 'equals', value: 'nowhere' }, []],
  ];
  it.each(cases)('%s', async (_name, filters, expected) => {
    expect(await ids(filters)).toEqual(expected);
  });

  it('refuses a value of the wrong type, and an operator the type does not have, pointing at them', () => {
    const errors = problemsOf(() =>
      compileQuery(
        {
          filters: {
            and: [
              { column: 'qty', op: 'equals', value: 'three' },
              { column: 'active', op: 'gt', value: true },
              { column: 'amount', op: 'contains', value: '1' },
              { column: 'event_time', op: 'lt', value: 'yesterday' },
            ],
          },
        },
        dataset,
        allVisible(),
      ),
    );
    expect(errors.map((e) => e.pointer)).toEqual(['#/filters/and/0/value', '#/filters/and/1/op', '#/filters/and/2/op', '#/filters/and/3/value']);
  });

  it('bounds nesting depth', () => {
    let deep: any = { column: 'qty', op: 'equals', value: 1 };
    for (let i = 0; i < 9; i++) deep = { not: deep };
    expect(problemsOf(() => compileQuery({ filters: deep }, dataset, allVisible()))[0]!.detail).toMatch(/deeper than 8/);
  });
});

describe('metrics, dimensions and time zones', () => {
  it('computes each metric', async () => {
    const page = await query({
      metrics: [
        { fn: 'count' },
        { fn: 'count', column: 'user_id', as: 'with_user' },
        { fn: 'count_distinct', column: 'user_id', as: 'users' },
        { fn: 'sum', column: 'qty' },
        { fn: 'avg', column: 'amount' },
        { fn: 'min', column: 'event_time', as: 'first' },
        { fn: 'max', column: 'amount' },
        { fn: 'quantile', column: 'qty', p: 0.5, as: 'median_qty' },
      ],
    });
    expect(page.rows).toEqual([
      { count: 4, with_user: 3, users: 2, sum_qty: 14, avg_amount: (10.5 + 99.25 + 500 - 3) / 4, first: '2026-01-08T10:00:00.000Z', max_amount: 500, median_qty: 2 },
    ]);
    expect(page.columns.map((c) => c.type)).toEqual(['int', 'int', 'int', 'int', 'float', 'timestamp', 'float', 'float']);
    expect(page.total_rows).toBe(1);
  });

  it('refuses a metric on a non-numeric column', () => {
    expect(problemsOf(() => compileQuery({ metrics: [{ fn: 'sum', column: 'region' }] }, dataset, allVisible()))).toEqual([
      expect.objectContaining({ pointer: '#/metrics/0/column', detail: expect.stringContaining('numeric') }),
    ]);
  });

  it('buckets days in the time zone asked for', async () => {
    const day = (timezone: string) =>
      query({ metrics: [{ fn: 'count' }], dimensions: [{ column: 'event_time', bucket: 'day', timezone, as: 'd' }], order_by: [{ column: 'd' }] });
    expect((await day('Europe/Berlin')).rows).toEqual([
      { d: '2026-01-08', count: 1 },
      { d: '2026-01-09', count: 2 },
      { d: '2026-01-10', count: 1 },
    ]);
    expect((await day('America/New_York')).rows).toEqual([
      { d: '2026-01-08', count: 2 },
      { d: '2026-01-09', count: 1 },
      { d: '2026-01-10', count: 1 },
    ]);
  });

  it('buckets hours as RFC 3339 in the zone, weeks from Monday, and groups by columns', async () => {
    const page = await query({
      metrics: [{ fn: 'sum', column: 'qty', as: 'q' }],
      dimensions: [{ column: 'event_time', bucket: 'hour', timezone: 'Asia/Kolkata', as: 'h' }],
      filters: { column: 'id', op: 'equals', value: 2 },
    });
    expect(page.rows).toEqual([{ h: '2026-01-09T05:00:00+05:30', q: 3 }]);
    const weeks = await query({ metrics: [{ fn: 'count' }], dimensions: ['active', { column: 'day', bucket: 'week', as: 'w' }], order_by: [{ column: 'active' }] });
    expect(weeks.rows).toEqual([
      { active: false, w: '2026-01-05', count: 2 },
      { active: true, w: '2026-01-05', count: 2 },
    ]);
  });

  it('applies date ranges: a bare date is midnight in the range zone', async () => {
    const count = async (start: string, end: string, timezone?: string) =>
      (await query({ metrics: [{ fn: 'count' }], date_range: { start, end, timezone } })).rows[0]!.count;
    expect(await count('2026-01-09', '2026-01-10')).toBe(1);
    expect(await count('2026-01-09', '2026-01-10', 'Europe/Berlin')).toBe(2);
    expect(await count('2026-01-08T10:00:00Z', '2026-01-08T10:00:00.001Z')).toBe(1);
    expect(await count('2030-01-01', '2030-01-02')).toBe(0);
  });
});

describe('pagination', () => {
  it('walks pages with next_cursor, and refuses a cursor from another query', async () => {
    const req: QueryRequest = { select: ['id'], order_by: [{ column: 'id', direction: 'desc' }], limit: 3 };
    const first = await query(req);
    expect(first.rows.map((r) => r.id)).toEqual([4, 3, 2]);
    expect(first.total_rows).toBe(4);
    const second = await query({ ...req, cursor: first.next_cursor! });
    expect(second.rows.map((r) => r.id)).toEqual([1]);
    expect(second.next_cursor).toBeNull();
    expect(problemsOf(() => compileQuery({ ...req, order_by: [{ column: 'id' }], cursor: first.next_cursor! }, dataset, allVisible()))[0]!.pointer).toBe('#/cursor');
  });

  it('counts total_rows with a second query only when the page cannot tell it (full, or past the end)', async () => {
    const counted: string[] = [];
    const original = wh.client.query.bind(wh.client);
    const spy = ((args: Parameters<typeof original>[0]) => {
      counted.push(args.query);
      return original(args);
    }) as typeof original;
    wh.client.query = spy;
    try {
      const run = async (req: QueryRequest) => {
        counted.length = 0;
        const page = await runQuery(wh, compileQuery(req, dataset, allVisible()), limits);
        return { total: page.total_rows, queries: counted.length, more: page.next_cursor !== null };
      };
      const req: QueryRequest = { select: ['id'], order_by: [{ column: 'id' }], limit: 3 };
      expect(await run({ ...req, limit: 10 })).toEqual({ total: 4, queries: 1, more: false });
      expect(await run({ metrics: [{ fn: 'count' }], dimensions: ['region'], limit: 10 })).toEqual({ total: 4, queries: 1, more: false });
      expect(await run({ ...req, filters: { column: 'id', op: 'gt', value: 100 } })).toEqual({ total: 0, queries: 1, more: false });
      const first = await run(req);
      expect(first).toEqual({ total: 4, queries: 2, more: true });
      const full = await runQuery(wh, compileQuery(req, dataset, allVisible()), limits);
      counted.length = 0;
      const last = await runQuery(wh, compileQuery({ ...req, cursor: full.next_cursor! }, dataset, allVisible()), limits);
      expect([last.total_rows, counted.length, last.next_cursor]).toEqual([4, 1, null]);
      // A page past the end (the rows shrank since the cursor was made) still tells the true total.
      const past = await runQuery(wh, { ...compileQuery(req, dataset, allVisible()), offset: 10, sql: compileQuery(req, dataset, allVisible()).sql.replace('OFFSET 0', 'OFFSET 10') }, limits);
      expect([past.rows.length, past.total_rows, past.next_cursor]).toEqual([0, 4, null]);
    } finally {
      wh.client.query = original;
    }
  });
});

describe('field and row rules', () => {
  const view = (masks: Record<string, Mask | null>, rowFilter?: AccessView['rowFilter']): AccessView => ({
    columns: new Map(Object.entries(masks)),
    rowFilter,
    hashSalt: 'tenant-a',
  });

  it('shows masked values, and select * expands to the visible columns only', async () => {
    const page = await query(
      { order_by: [{ column: 'id' }], filters: { column: 'id', op: 'lte', value: 2 } },
      view({
        id: null,
        card: { mask: 'last_n', n: 4 },
        amount: { mask: 'round', precision: -1 },
        event_time: { mask: 'truncate_time', unit: 'day' },
        user_id: { mask: 'hash' },
        region: { mask: 'null' },
      }),
    );
    expect(page.columns.map((c) => c.name)).toEqual(['id', 'event_time', 'region', 'amount', 'user_id', 'card']);
    expect(page.rows[0]).toMatchObject({ id: 1, card: '************1111', amount: 10, event_time: '2026-01-08T00:00:00.000Z', region: null });
    expect(page.rows[0]!.user_id).toMatch(/^[0-9a-f]{64}$/);
    expect(page.rows[1]).toMatchObject({ id: 2, user_id: null, amount: 100 });
  });

  it('answers a hidden column exactly like a column that does not exist', () => {
    const v = view({ id: null, region: null });
    const hidden = problemsOf(() => compileQuery({ filters: { column: 'secret', op: 'equals', value: 's1' } }, dataset, v));
    const missing = problemsOf(() => compileQuery({ filters: { column: 'nosuch', op: 'equals', value: 's1' } }, dataset, v));
    expect(hidden[0]!.detail.replace('secret', 'X')).toBe(missing[0]!.detail.replace('nosuch', 'X'));
    for (const req of [
      { select: ['secret'] },
      { metrics: [{ fn: 'count_distinct' as const, column: 'secret' }] },
      { metrics: [{ fn: 'count' as const }], dimensions: ['secret'] },
      { select: ['id'], order_by: [{ column: 'secret' }] },
    ]) {
      expect(problemsOf(() => compileQuery(req, dataset, v))[0]!.detail).toContain('unknown column "secret"');
    }
  });

  it('filters on a masked column see the masked value, so the raw value cannot be probed', async () => {
    const v = view({ id: null, card: { mask: 'last_n', n: 4 } });
    expect(await ids({ column: 'card', op: 'starts_with', value: '4111' }, v)).toEqual([]);
    expect(await ids({ column: 'card', op: 'contains', value: '1111' }, v)).toEqual([1]);
  });

  it('ANDs the row rule into every query', async () => {
    const rowFilter = { sql: '`region` = {rr0:String}', params: { rr0: 'eu-west' } };
    const v = view({ id: null, region: null, qty: null }, rowFilter);
    expect(await ids(undefined, v)).toEqual([1]);
    expect(await ids({ or: [{ column: 'qty', op: 'gte', value: 0 }] }, v)).toEqual([1]);
    expect((await query({ metrics: [{ fn: 'sum', column: 'qty' }] }, v)).rows).toEqual([{ sum_qty: 1 }]);
  });
});

describe('injection attempts', () => {
  it('treats hostile values as values', async () => {
    expect(await ids({ column: 'region', op: 'equals', value: "o'brien; DROP TABLE x" })).toEqual([4]);
    expect(await ids({ column: 'region', op: 'equals', value: "x' OR '1'='1" })).toEqual([]);
    expect(await ids({ column: 'region', op: 'contains', value: '%' })).toEqual([]);
  });

  it('refuses hostile identifiers, time zones and cursors before any SQL is built', () => {
    const hostile = 'id`; DROP TABLE events; --';
    expect(problemsOf(() => compileQuery({ select: [hostile] }, dataset, allVisible()))[0]!.pointer).toBe('#/select/0');
    expect(problemsOf(() => compileQuery({ select: ['id'], order_by: [{ column: hostile }] }, dataset, allVisible()))[0]!.pointer).toBe('#/order_by/0/column');
    expect(
      problemsOf(() =>
        compileQuery({ metrics: [{ fn: 'count' }], dimensions: [{ column: 'event_time', bucket: 'day', timezone: "UTC') OR 1=1 --" }] }, dataset, allVisible()),
      )[0]!.pointer,
    ).toBe('#/dimensions/0/timezone');
    expect(problemsOf(() => compileQuery({ metrics: [{ fn: 'count' }], date_range: { start: '2026-01-01', end: '2026-01-02', timezone: 'Mars/Olympus' } }, dataset, allVisible()))[0]!.pointer).toBe('#/date_range/timezone');
    expect(problemsOf(() => compileQuery({ select: ['id'], cursor: "' OR 1=1" }, dataset, allVisible()))[0]!.pointer).toBe('#/cursor');
  });

  it('leaves the table intact after all of that', async () => {
    expect((await query({ metrics: [{ fn: 'count' }] })).rows).toEqual([{ count: 4 }]);
  });
});
