import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { AUDIENCE, claims, HMAC_SECRET, sign } from '../security/idp.js';
import { warehouseProblem } from '../../src/handlers/query.js';
import type { ProblemError } from '../../src/problem.js';

/**
 * Query, changes and export through the HTTP API with real authentication and authorization:
 * row and field rules from the policy files (analyst: every row; contractor: denied and hashed
 * columns) and from a dataset grant (rita: her region's rows, no email, card masked).
 */
const ISSUER = 'https://idp.query.test';
const env = {
  JWT_ISSUERS: JSON.stringify([{ issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], secret: HMAC_SECRET, attributeClaims: ['region'] }]),
  EXPORT_TTL_HOURS: '1',
  // These tests poll (changes settle, exports finish); the rate limits are tested in test/traffic.
  RATE_LIMIT_POLICIES: JSON.stringify({ query: { burst: 1000, rate: 100 }, export: { burst: 1000, rate: 100 }, default: { burst: 1000, rate: 100 } }),
};
const token = (sub: string, extra: Record<string, unknown> = {}) => sign(new TextEncoder().encode(HMAC_SECRET), claims({ iss: ISSUER, sub, ...extra }));

let gw: TestGateway;
let ds: string;
const who: Record<string, string> = {};

const call = async (as: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${who[as]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, body: json };
};
const query = (as: string, body: unknown, qs = '') => call(as, 'POST', `/v1/datasets/${ds}/query${qs}`, body);
const ingest = (rows: unknown[]) => call('alice', 'POST', `/v1/datasets/${ds}/ingest`, rows);

const rows = [
  { event_time: '2026-01-08T10:00:00Z', region: 'eu', email: 'a@x.io', card: '4111111111111111', amount: 10 },
  { event_time: '2026-01-08T11:00:00Z', region: 'us', email: 'b@x.io', card: '5500000000000004', amount: 20 },
  { event_time: '2026-01-08T12:00:00Z', region: 'eu', email: 'c@x.io', card: '340000000000009', amount: 30 },
  { event_time: '2026-01-08T13:00:00Z', region: 'apac', email: 'd@x.io', card: null, amount: 40 },
];

async function until<T>(ms: number, get: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const started = Date.now();
  for (;;) {
    const v = await get();
    if (ok(v) || Date.now() - started > ms) return v;
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  gw = await startGateway('query_api', { env });
  who.alice = await token('alice', { roles: ['admin'], amr: ['pwd', 'otp'] });
  who.ana = await token('ana', { roles: ['analyst'] });
  who.rita = await token('rita', { roles: ['viewer'], region: 'eu' });
  who.carl = await token('carl', { roles: ['analyst', 'contractor'] });
  who.vic = await token('vic', { roles: ['viewer'] });
  const created = await call('alice', 'POST', '/v1/datasets', {
    name: 'payments',
    columns: [
      { name: 'event_time', type: 'timestamp', nullable: false },
      { name: 'region', type: 'string', nullable: false },
      { name: 'email', type: 'string' },
      { name: 'card', type: 'string' },
      { name: 'amount', type: 'float' },
    ],
    time_column: 'event_time',
    sort_key: ['event_time'],
  });
  expect(created.status, created.text).toBe(201);
  ds = created.body.id;
  expect((await ingest(rows)).status).toBe(200);
  const granted = await call('alice', 'POST', `/v1/datasets/${ds}/access`, {
    grant: [
      {
        principal: { type: 'subject', id: 'rita' },
        actions: ['read', 'query', 'export'],
        row_rule: 'region == principal.region',
        field_rules: { deny: ['email'], masks: [{ column: 'card', mask: 'last_n', n: 4 }] },
      },
    ],
  });
  expect(granted.status, granted.text).toBe(200);
}, 120_000);
afterAll(async () => {
  await gw?.close();
});

const all = { order_by: [{ column: 'event_time', direction: 'asc' }] };

describe('query: row and field rules per caller', () => {
  it('an analyst sees every row and column; rita only her region, without email, card masked', async () => {
    const ana = await query('ana', all);
    expect(ana.status, ana.text).toBe(200);
    expect(ana.body.rows.map((r: any) => r.region)).toEqual(['eu', 'us', 'eu', 'apac']);
    expect(ana.body.columns.map((c: any) => c.name)).toEqual(['event_time', 'region', 'email', 'card', 'amount']);
    expect(ana.body.total_rows).toBe(4);

    const rita = await query('rita', all);
    expect(rita.status, rita.text).toBe(200);
    expect(rita.body.rows).toEqual([
      { event_time: '2026-01-08T10:00:00.000Z', region: 'eu', card: '************1111', amount: 10 },
      { event_time: '2026-01-08T12:00:00.000Z', region: 'eu', card: '***********0009', amount: 30 },
    ]);
    expect(rita.body.total_rows).toBe(2);
  });

  it('a contractor analyst sees every row, but no email and a hash for nothing it may not see', async () => {
    const carl = await query('carl', all);
    expect(carl.status, carl.text).toBe(200);
    expect(carl.body.rows).toHaveLength(4);
    expect(Object.keys(carl.body.rows[0])).not.toContain('email');
  });

  it('a viewer with no row rule is refused the query by authz; with no applicable row rule nobody sees rows', async () => {
    expect((await query('vic', all)).status).toBe(403);
  });

  it('aggregates are computed over the caller\'s rows only', async () => {
    const body = { metrics: [{ fn: 'count' }, { fn: 'sum', column: 'amount', as: 'total' }] };
    expect((await query('ana', body)).body.rows).toEqual([{ count: 4, total: 100 }]);
    expect((await query('rita', body)).body.rows).toEqual([{ count: 2, total: 40 }]);
  });

  it('fields= trims the response but always keeps rows and next_cursor', async () => {
    const res = await query('ana', all, '?fields=columns');
    expect(res.status, res.text).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['columns', 'next_cursor', 'rows']);
  });
});

describe('a hidden column cannot be learned', () => {
  // Each probe names the hidden column `email`, then a column that doesn't exist: the answers must match.
  const probes: [string, (col: string) => unknown][] = [
    ['select', (c) => ({ select: [c] })],
    ['filter', (c) => ({ filters: { column: c, op: 'equals', value: 'a@x.io' } })],
    ['order_by', (c) => ({ select: ['region'], order_by: [{ column: c, direction: 'asc' }] })],
    ['group by', (c) => ({ metrics: [{ fn: 'count' }], dimensions: [c] })],
    ['metric', (c) => ({ metrics: [{ fn: 'count_distinct', column: c }] })],
    ['date_range', (c) => ({ date_range: { column: c, start: '2026-01-01', end: '2026-02-01' } })],
  ];
  for (const [name, probe] of probes) {
    it(`through ${name}: 400, worded as for a column that does not exist`, async () => {
      const hidden = await query('rita', probe('email'));
      const missing = await query('rita', probe('no_such_col'));
      expect(hidden.status).toBe(400);
      expect(missing.status).toBe(400);
      const strip = (b: any) => JSON.stringify({ ...b, instance: undefined }).replaceAll('no_such_col', 'email');
      expect(strip(hidden.body)).toBe(strip(missing.body));
    });
  }

  it('a masked column filters only through its mask', async () => {
    const raw = await query('rita', { filters: { column: 'card', op: 'equals', value: '4111111111111111' } });
    expect(raw.body.rows).toEqual([]);
    const masked = await query('rita', { filters: { column: 'card', op: 'equals', value: '************1111' } });
    expect(masked.body.rows).toHaveLength(1);
  });

  it('an export of a hidden column is refused the same way', async () => {
    const res = await call('rita', 'POST', `/v1/datasets/${ds}/export`, { select: ['email'], format: 'csv' });
    expect(res.status).toBe(400);
  });
});

describe('injection attempts are 400', () => {
  it.each([
    ['fields', () => query('ana', all, `?fields=${encodeURIComponent('rows,1;DROP TABLE x')}`)],
    ['cursor', () => query('ana', { ...all, cursor: "eyJvIjowfQ'; DROP TABLE x --" })],
    ['forged cursor', () => query('ana', { ...all, cursor: Buffer.from(JSON.stringify({ o: 0, f: 'x' })).toString('base64url') })],
    ['order_by', () => query('ana', { order_by: [{ column: 'region`; DROP TABLE x; --', direction: 'asc' }] })],
    ['timezone', () => query('ana', { metrics: [{ fn: 'count' }], dimensions: [{ column: 'event_time', bucket: 'day', timezone: "UTC'); DROP TABLE x; --" }] })],
    ['date_range timezone', () => query('ana', { date_range: { start: '2026-01-01', end: '2026-02-01', timezone: "UTC' OR 1=1" } })],
    ['changes cursor', () => call('ana', 'GET', `/v1/datasets/${ds}/changes?since=${encodeURIComponent("chg_' OR 1=1")}`)],
  ])('%s', async (_name, send) => {
    const res = await send();
    expect(res.status, res.text).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });

  it('the table is still there', async () => {
    expect((await query('ana', all)).body.rows).toHaveLength(4);
  });
});

describe('cache', () => {
  it('a cached page is invalidated by ingest into the dataset', async () => {
    const count = { metrics: [{ fn: 'count' }], filters: { column: 'region', op: 'equals', value: 'latam' } };
    expect((await query('ana', count)).body.rows).toEqual([{ count: 0 }]);
    expect((await query('ana', count)).body.rows).toEqual([{ count: 0 }]);
    expect((await ingest([{ event_time: '2026-01-09T00:00:00Z', region: 'latam', amount: 5 }])).status).toBe(200);
    expect((await query('ana', count)).body.rows).toEqual([{ count: 1 }]);
  });
});

describe('changes', () => {
  it('returns rows ingested since a cursor, through the caller\'s rules', async () => {
    const first = await until(10_000, () => call('rita', 'GET', `/v1/datasets/${ds}/changes?limit=1`), (r) => r.body?.rows?.length === 1);
    expect(first.status, first.text).toBe(200);
    expect(first.body.has_more).toBe(true);
    const rest = await call('rita', 'GET', `/v1/datasets/${ds}/changes?since=${first.body.next_cursor}`);
    expect(rest.status, rest.text).toBe(200);
    expect(rest.body.has_more).toBe(false);
    // Rows of one INSERT share their ingest time; the feed pages through them without a repeat or a gap.
    expect([...first.body.rows, ...rest.body.rows].sort((a: any, b: any) => a.amount - b.amount)).toEqual([
      { event_time: '2026-01-08T10:00:00.000Z', region: 'eu', card: '************1111', amount: 10 },
      { event_time: '2026-01-08T12:00:00.000Z', region: 'eu', card: '***********0009', amount: 30 },
    ]);

    expect((await ingest([{ event_time: '2026-01-10T00:00:00Z', region: 'eu', email: 'e@x.io', card: '9999', amount: 50 }, { event_time: '2026-01-10T00:00:00Z', region: 'us', amount: 60 }])).status).toBe(200);
    const next = await until(10_000, () => call('rita', 'GET', `/v1/datasets/${ds}/changes?since=${rest.body.next_cursor}`), (r) => r.body?.rows?.length > 0);
    expect(next.body.rows).toEqual([{ event_time: '2026-01-10T00:00:00.000Z', region: 'eu', card: '9999', amount: 50 }]);

    const ana = await call('ana', 'GET', `/v1/datasets/${ds}/changes?limit=1000`);
    expect(ana.body.rows.length).toBeGreaterThanOrEqual(6);
    expect(Object.keys(ana.body.rows[0])).toContain('email');
  }, 30_000);
});

describe('export', () => {
  async function finished(as: string, id: string) {
    return until(20_000, () => call(as, 'GET', `/v1/exports/${id}`), (r) => r.body?.status === 'succeeded' || r.body?.status === 'failed');
  }

  it('exports the caller\'s rows and columns, only to its creator or an admin, and downloads with Range', async () => {
    const started = await call('rita', 'POST', `/v1/datasets/${ds}/export`, { ...all, format: 'csv' });
    expect(started.status, started.text).toBe(202);
    expect(started.headers.get('location')).toBe(`/v1/exports/${started.body.export_id}`);
    const id = started.body.export_id;
    const done = await finished('rita', id);
    expect(done.body.status, done.text).toBe('succeeded');

    const file = await call('rita', 'GET', `/v1/exports/${id}/download`);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toContain('text/csv');
    expect(file.headers.get('content-disposition')).toBe(`attachment; filename="${ds}-${id}.csv"`);
    const lines = file.text.trim().split('\n');
    expect(lines[0]).toBe('"event_time","region","card","amount"');
    expect(lines.slice(1).every((l) => l.includes('"eu"'))).toBe(true);
    expect(file.text).not.toContain('@x.io');
    expect(done.body.rows).toBe(lines.length - 1);

    const tail = await call('rita', 'GET', `/v1/exports/${id}/download`, undefined, { range: 'bytes=10-' });
    expect(tail.status).toBe(206);
    expect(tail.text).toBe(file.text.slice(10));
    expect(tail.headers.get('content-range')).toBe(`bytes 10-${file.text.length - 1}/${file.text.length}`);
    expect((await call('rita', 'GET', `/v1/exports/${id}/download`, undefined, { range: `bytes=${file.text.length + 5}-` })).status).toBe(416);

    expect((await call('ana', 'GET', `/v1/exports/${id}`)).status).toBe(404);
    expect((await call('ana', 'GET', `/v1/exports/${id}/download`)).status).toBe(404);
    expect((await call('alice', 'GET', `/v1/exports/${id}`)).status).toBe(200);
  }, 40_000);

  it('gzip with parquet is 400; a contractor may not export', async () => {
    expect((await call('ana', 'POST', `/v1/datasets/${ds}/export`, { format: 'parquet', compression: 'gzip' })).status).toBe(400);
    expect((await call('carl', 'POST', `/v1/datasets/${ds}/export`, { format: 'csv' })).status).toBe(403);
  });
});

describe('a deleted dataset', () => {
  it('answers 409 to query, changes and export', async () => {
    const created = await call('alice', 'POST', '/v1/datasets', { name: 'doomed', columns: [{ name: 'a', type: 'int' }] });
    const id = created.body.id;
    expect((await call('alice', 'DELETE', `/v1/datasets/${id}`)).status).toBe(200);
    expect((await call('ana', 'POST', `/v1/datasets/${id}/query`, {})).status).toBe(409);
    expect((await call('ana', 'GET', `/v1/datasets/${id}/changes`)).status).toBe(409);
    expect((await call('ana', 'POST', `/v1/datasets/${id}/export`, { format: 'csv' })).status).toBe(409);
  });
});

describe('warehouse limits', () => {
  it('a query over its memory limit is a clear 400, never a 500', async () => {
    const tight = await startGateway('query_api_tight', { env: { ...env, QUERY_MAX_MEMORY: '1kb', QUERY_CACHE_TTL_MS: '0' }, stores: gw.stores });
    try {
      const res = await fetch(`${tight.url}/v1/datasets/${ds}/query`, {
        method: 'POST',
        headers: { authorization: `Bearer ${who.ana}`, 'content-type': 'application/json' },
        body: JSON.stringify({ metrics: [{ fn: 'count_distinct', column: 'email' }], dimensions: ['region'] }),
      });
      const problem = (await res.json()) as any;
      expect(res.status, JSON.stringify(problem)).toBe(400);
      expect(problem.type).toBe('https://weir.dev/problems/query-too-large');
      expect(JSON.stringify(problem)).not.toMatch(/SELECT|uniqExact/);
    } finally {
      await tight.close();
    }
  }, 30_000);

  it('maps the warehouse\'s limit errors by kind', () => {
    const timeout = warehouseProblem({ type: 'TIMEOUT_EXCEEDED', message: 'SELECT secret FROM x' }) as ProblemError;
    expect([timeout.status, timeout.headers['Retry-After']]).toEqual([503, '5']);
    expect((warehouseProblem({ type: 'TOO_MANY_ROWS' }) as ProblemError).status).toBe(400);
    const other = new Error('boom');
    expect(warehouseProblem(other)).toBe(other);
  });
});
