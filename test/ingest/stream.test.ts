import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { splitHeader } from '../../src/ingest/stream-endpoint.js';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { pluginsWithTestPrincipal } from '../helpers/test-principal.js';
import { createDataset, eventsDataset, warehouseRows } from './helpers.js';

let gw: TestGateway;
let ds: string;
let otherDs: string;
let acmeKey: string;
let readerKey: string;

beforeAll(async () => {
  gw = await startGateway('ingest_stream', { overrides: { plugins: pluginsWithTestPrincipal() } });
  ds = await createDataset(gw, 'acme', eventsDataset('stream_events'));
  otherDs = await createDataset(gw, 'globex', eventsDataset('globex_events'));
  // The HTTP operations use the test stand-in; the WebSocket upgrade checks real credentials.
  const { identity } = gw.app.weir.deps;
  acmeKey = (await identity.apiKeys.create({ tenant: 'acme', name: 'producer', roles: ['ingest-writer'], scopes: [], expiresAt: null, createdBy: 'test' })).secret;
  readerKey = (await identity.apiKeys.create({ tenant: 'acme', name: 'reader', roles: ['viewer'], scopes: [], expiresAt: null, createdBy: 'test' })).secret;
});
afterAll(async () => {
  await gw?.close();
});

const wsUrl = (dataset: string, query = '') => `${gw.url.replace('http', 'ws')}/v1/datasets/${dataset}/stream${query}`;

/** Opens a stream; resolves with a client that records every message, or rejects with the refusal's status. */
async function connect(dataset: string, headers: Record<string, string>, query = '') {
  const ws = new WebSocket(wsUrl(dataset, query), { headers });
  const messages: Array<Record<string, any>> = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data))));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`refused ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
  });
  const next = async (match: (m: Record<string, any>) => boolean = () => true, timeoutMs = 10_000) => {
    for (const started = Date.now(); Date.now() - started < timeoutMs; ) {
      const i = messages.findIndex(match);
      if (i >= 0) return messages.splice(i, 1)[0]!;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`no matching message in ${timeoutMs} ms; got ${JSON.stringify(messages)}`);
  };
  const close = () => new Promise<void>((resolve) => (ws.readyState === ws.CLOSED ? resolve() : (ws.once('close', () => resolve()), ws.close())));
  return { ws, messages, next, close };
}

const refusal = (dataset: string, headers: Record<string, string>, query = '') =>
  connect(dataset, headers, query).then(
    async (c) => {
      await c.close();
      return 101;
    },
    (err: { status?: number }) => err.status,
  );

const row = (n: number, extra: Record<string, unknown> = {}) => JSON.stringify({ event_time: '2026-01-08T10:30:00Z', region: 'ws', n, ...extra });
const batch = (seq: number | undefined, lines: string[]) => [...(seq === undefined ? [] : [JSON.stringify({ seq })]), ...lines].join('\n') + '\n';
const count = async (where: string) => Number((await warehouseRows<{ c: string }>(gw, `SELECT count() AS c FROM \`${ds}\` WHERE ${where}`))[0]!.c);

describe('splitHeader', () => {
  it('takes a first line of exactly {"seq": n} as the header, and nothing else', () => {
    expect(splitHeader('{"seq": 7}\n{"a":1}\n')).toEqual({ seq: 7, body: '{"a":1}\n' });
    expect(splitHeader('{"seq": 7, "a": 1}\n')).toEqual({ body: '{"seq": 7, "a": 1}\n' });
    expect(splitHeader('{"a":1}\n')).toEqual({ body: '{"a":1}\n' });
    expect(splitHeader('{"seq": -1}\n').error).toMatch(/non-negative/);
  });
});

describe('WebSocket /v1/datasets/{id}/stream', () => {
  it('refuses an upgrade without credentials (401), with a refused key (401), for another tenant or unknown dataset (404), without write (403)', async () => {
    expect(await refusal(ds, {})).toBe(401);
    expect(await refusal(ds, { 'x-api-key': 'weir_live_notakey' })).toBe(401);
    expect(await refusal(otherDs, { 'x-api-key': acmeKey })).toBe(404);
    expect(await refusal('ds_doesnotexist00', { 'x-api-key': acmeKey })).toBe(404);
    expect(await refusal(ds, { authorization: `Bearer ${readerKey}` })).toBe(403);
    expect(await refusal(ds, { 'x-api-key': acmeKey }, '?producer=bad%20id')).toBe(400);
  });

  it('acknowledges each batch after its commit with the running committed count; rows land in the warehouse', async () => {
    const c = await connect(ds, { authorization: `Bearer ${acmeKey}` });
    c.ws.send(batch(1, [row(101), row(102)]));
    c.ws.send(batch(undefined, [row(103)])); // no header: seq is the previous one + 1
    expect(await c.next()).toMatchObject({ type: 'ack', seq: 1, committed: 2, accepted: 2, quarantined: 0 });
    expect(await c.next()).toMatchObject({ type: 'ack', seq: 2, committed: 3, accepted: 1, quarantined: 0 });
    expect(await count('n BETWEEN 101 AND 103')).toBe(3);
    await c.close();
  });

  it('quarantines a bad row and reports it in the ack', async () => {
    const c = await connect(ds, { 'x-api-key': acmeKey });
    c.ws.send(batch(10, [row(201), JSON.stringify({ event_time: '2026-01-08T10:30:00Z', n: 'x' }), row(202)]));
    const ack = await c.next();
    expect(ack).toMatchObject({ type: 'ack', seq: 10, committed: 2, accepted: 2, quarantined: 1 });
    expect(ack.errors).toEqual([{ line: 2, column: 'n', detail: expect.stringMatching(/^expected int/) }]);
    const q = await gw.stores.metadata.query<{ line: number; request_id: string }>('SELECT line, request_id FROM ingest_quarantine WHERE request_id = $1', [ack.request_id]);
    expect(q.rows.map((r) => Number(r.line))).toEqual([2]);
    expect(await count('n BETWEEN 201 AND 202')).toBe(2);
    await c.close();
  });

  it('answers errors as {"type":"error"} messages and keeps the connection', async () => {
    const c = await connect(ds, { 'x-api-key': acmeKey }, '?producer=needs-seq');
    c.ws.send(row(301) + '\n');
    expect(await c.next()).toMatchObject({ type: 'error', code: 'seq_required' });
    c.ws.send(Buffer.from(batch(1, [row(301)])), { binary: true });
    expect(await c.next()).toMatchObject({ type: 'error', code: 'binary_message' });
    c.ws.send(batch(1, [row(301)]));
    expect(await c.next()).toMatchObject({ type: 'ack', seq: 1, committed: 1 });
    await c.close();
  });

  it('resumes after a reconnect: batches resent from the last ack are acknowledged again without duplicate rows', async () => {
    const producer = `?producer=sensor-${Date.now()}`;
    const first = await connect(ds, { 'x-api-key': acmeKey }, producer);
    for (let seq = 1; seq <= 3; seq++) first.ws.send(batch(seq, [row(400 + seq * 10), row(401 + seq * 10)]));
    expect(await first.next((m) => m.seq === 3)).toMatchObject({ type: 'ack', committed: 6 });
    await first.close();

    // The producer's last ack was seq 2 as far as it knows: it resends 2 and 3, then goes on with 4.
    const second = await connect(ds, { 'x-api-key': acmeKey }, producer);
    second.ws.send(batch(2, [row(420), row(421)]));
    second.ws.send(batch(3, [row(430), row(431)]));
    second.ws.send(batch(4, [row(440), row(441)]));
    expect(await second.next()).toMatchObject({ type: 'ack', seq: 2, committed: 0, accepted: 2, duplicate: true });
    expect(await second.next()).toMatchObject({ type: 'ack', seq: 3, committed: 0, accepted: 2, duplicate: true });
    expect(await second.next()).toMatchObject({ type: 'ack', seq: 4, committed: 2, accepted: 2 });
    // A reused seq with other rows is refused rather than silently acknowledged.
    second.ws.send(batch(4, [row(499)]));
    expect(await second.next()).toMatchObject({ type: 'error', seq: 4, code: 'seq_reused' });
    await second.close();
    expect(await count('n BETWEEN 410 AND 499')).toBe(8);
  });

  it('takes many batches pipelined through the bounded queue, acknowledged in order', async () => {
    const c = await connect(ds, { 'x-api-key': acmeKey });
    for (let seq = 1; seq <= 20; seq++) c.ws.send(batch(seq, [row(1000 + seq)]));
    const acks = [];
    for (let i = 0; i < 20; i++) acks.push(await c.next());
    expect(acks.map((a) => a.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(acks.at(-1)).toMatchObject({ committed: 20 });
    expect(await count('n BETWEEN 1001 AND 1020')).toBe(20);
    await c.close();
  });
});
