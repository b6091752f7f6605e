import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { sendOrDrop, type Subscriber } from '../../src/analytics/realtime-hub.js';
import type { Principal } from '../../src/gateway/request-types.js';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { asTenant, pluginsWithTestPrincipal } from '../helpers/test-principal.js';

const UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0';
const principal = (tenant: string): Principal => ({ subject: `${tenant}-viewer`, tenant, roles: ['viewer'], scopes: [], attributes: {}, authMethod: 'api_key', mfa: false });
// Tokens stand for principals; the real gateway checks them with the identity service.
const authenticate = async (token: string) => (token === 'token-rt' ? principal('rt') : token === 'token-other' ? principal('other') : undefined);

let quiet: TestGateway; // pushes only on change (its cadence is a minute)
let steady: TestGateway; // pushes every 300 ms
let site: { website_id: string; tracking_id: string };

beforeAll(async () => {
  quiet = await startGateway('analytics_ws', { env: { ANALYTICS_REALTIME_INTERVAL_MS: '60000' }, overrides: { plugins: pluginsWithTestPrincipal({ without: ['rate-limit'] }), analytics: { authenticate } } });
  // Hits are pushed once shipped from the journal to the warehouse: ship them soon.
  steady = await startGateway('analytics_ws_b', { stores: quiet.stores, env: { ANALYTICS_REALTIME_INTERVAL_MS: '300', ANALYTICS_SHIP_INTERVAL_MS: '100' }, overrides: { plugins: pluginsWithTestPrincipal({ without: ['rate-limit'] }), analytics: { authenticate } } });
  const res = await fetch(`${quiet.url}/v1/websites`, { method: 'POST', headers: { 'content-type': 'application/json', ...asTenant('rt') }, body: JSON.stringify({ domain: 'rt.example', name: 'RT' }) });
  site = (await res.json()) as typeof site;
});
afterAll(async () => {
  await steady?.close();
  await quiet?.close();
});

/** A client that records every message. */
async function connect(url: string) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/realtime`);
  const messages: Array<Record<string, any>> = [];
  ws.on('message', (data) => messages.push(JSON.parse(String(data))));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const next = async (match: (m: Record<string, any>) => boolean, timeoutMs = 5000) => {
    for (const started = Date.now(); Date.now() - started < timeoutMs; ) {
      const i = messages.findIndex(match);
      if (i >= 0) return messages.splice(i, 1)[0]!;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no matching message in ${timeoutMs} ms; got ${JSON.stringify(messages)}`);
  };
  return { ws, messages, next, send: (m: unknown) => ws.send(JSON.stringify(m)) };
}

describe('WebSocket /v1/realtime', () => {
  it('refuses a bad token and another tenant, then subscribes and sends the figures at once', async () => {
    const c = await connect(quiet.url);
    c.send({ action: 'subscribe', website_id: site.website_id, token: 'wrong' });
    expect(await c.next((m) => m.type === 'error')).toMatchObject({ code: 'unauthorized' });
    c.send({ action: 'subscribe', website_id: site.website_id, token: 'token-other' });
    expect(await c.next((m) => m.type === 'error')).toMatchObject({ code: 'not_found' });
    c.send({ action: 'subscribe', website_id: site.website_id, token: 'token-rt' });
    expect(await c.next((m) => m.type === 'subscribed')).toEqual({ type: 'subscribed', website_id: site.website_id });
    expect(await c.next((m) => m.type === 'metrics_update')).toMatchObject({ website_id: site.website_id, active_users: 0, pageviews_last_minute: 0 });
    c.ws.close();
  });

  it('pushes on change to a subscriber of another gateway process, through shared pub/sub', async () => {
    const c = await connect(quiet.url);
    c.send({ action: 'subscribe', website_id: site.website_id, token: 'token-rt' });
    await c.next((m) => m.type === 'metrics_update');
    const hit = await fetch(`${steady.url}/collect`, { method: 'POST', headers: { 'content-type': 'application/json', 'user-agent': UA }, body: JSON.stringify({ v: '1', tid: site.tracking_id, cid: 'live-1', t: 'pageview', dp: '/live' }) });
    expect(await hit.json()).toEqual({ status: 'ok', received: 1 });
    const update = await c.next((m) => m.type === 'metrics_update' && m.active_users === 1, 5000);
    expect(update.top_pages).toEqual([{ page: '/live', active_users: 1 }]);
    c.ws.close();
  });

  it('pushes at a steady cadence without any change, and stops after unsubscribe', async () => {
    const c = await connect(steady.url);
    c.send({ action: 'subscribe', website_id: site.website_id, token: 'token-rt' });
    await c.next((m) => m.type === 'subscribed');
    await new Promise((r) => setTimeout(r, 1600));
    const updates = c.messages.filter((m) => m.type === 'metrics_update').length;
    expect(updates).toBeGreaterThanOrEqual(4);
    c.send({ action: 'unsubscribe', website_id: site.website_id });
    await c.next((m) => m.type === 'unsubscribed');
    await new Promise((r) => setTimeout(r, 400));
    c.messages.length = 0;
    await new Promise((r) => setTimeout(r, 900));
    expect(c.messages.filter((m) => m.type === 'metrics_update')).toEqual([]);
    c.ws.close();
  });
});

describe('a client that stops reading', () => {
  it('is closed with 1008 once its send buffer passes the bound, then cut off', () => {
    vi.useFakeTimers();
    try {
      const client: Subscriber & { sent: string[]; closed?: number; terminated: boolean; bufferedAmount: number } = {
        bufferedAmount: 0,
        readyState: 1,
        sent: [],
        terminated: false,
        send(data) {
          this.sent.push(data);
          this.bufferedAmount += data.length;
        },
        close(code) {
          this.closed = code;
        },
        terminate() {
          this.terminated = true;
        },
      };
      let sends = 0;
      while (sendOrDrop(client, 'x'.repeat(100), 1000) && sends < 100) sends++;
      expect(client.sent).toHaveLength(11);
      expect(client.closed).toBe(1008);
      expect(client.terminated).toBe(false);
      vi.advanceTimersByTime(1000);
      expect(client.terminated).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});
