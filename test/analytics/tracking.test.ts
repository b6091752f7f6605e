import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { asTenant, pluginsWithTestPrincipal } from '../helpers/test-principal.js';

const CHROME_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const SAFARI_IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1';
const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';

/** fetch as a browser: Node's own user agent ("node") is, rightly, a bot to the filter. */
const browserFetch = (url: string, init: RequestInit = {}) => fetch(url, { ...init, headers: { 'user-agent': CHROME_WINDOWS, ...(init.headers as Record<string, string>) } });

// Hits are acknowledged once journaled and shipped to the warehouse in batches; these tests read
// the warehouse right after collecting, so each answer waits for the ship (interval 0).
const SHIP_AT_ONCE = { ANALYTICS_SHIP_INTERVAL_MS: '0' };

let gw: TestGateway;
let site: { website_id: string; tracking_id: string };
let thankYouGoal: string;

beforeAll(async () => {
  gw = await startGateway('analytics_tracking', { env: SHIP_AT_ONCE, overrides: { plugins: pluginsWithTestPrincipal({ without: ['rate-limit'] }) } });
  const res = await browserFetch(`${gw.url}/v1/websites`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...asTenant('shop') },
    body: JSON.stringify({ domain: 'shop.example', name: 'Shop', allowed_hostnames: ['shop.example', '*.shop.example'] }),
  });
  site = (await res.json()) as typeof site;
  const goal = await browserFetch(`${gw.url}/v1/websites/${site.website_id}/goals`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...asTenant('shop') },
    body: JSON.stringify({ name: 'Thanks', type: 'destination', match_type: 'starts_with', value: '/thank-you', value_numeric: 20 }),
  });
  thankYouGoal = ((await goal.json()) as { goal_id: string }).goal_id;
});
afterAll(async () => gw?.close());

async function hits(where: string, params: Record<string, unknown> = {}): Promise<Array<Record<string, any>>> {
  const r = await gw.stores.warehouse.client.query({ query: `SELECT * FROM analytics_hits WHERE website_id = {w:UUID} AND ${where} ORDER BY time`, query_params: { w: site.website_id, ...params }, format: 'JSONEachRow' });
  return r.json();
}

const form = (params: Record<string, string>) => new URLSearchParams(params).toString();

describe('POST /collect and GET /collect', () => {
  it('accepts an analytics.js pageview, form-encoded with its extra parameters, and enriches it', async () => {
    const cid = '1234567890.1704729600';
    // As analytics.js sends it (transport: beacon falls back to a form POST), _v/_s/_u/jid/gjid/cd1 included.
    const body = `v=1&_v=j101&a=1398761923&t=pageview&_s=1&dl=${encodeURIComponent('https://shop.shop.example/products?utm_source=newsletter&utm_medium=email&utm_campaign=spring')}&ul=en-us&de=UTF-8&dt=Products&sd=24-bit&sr=1920x1080&vp=1903x937&je=0&_u=IEBAAEABAAAAACAAI~&jid=1543071458&gjid=1239012352&cid=${cid}&tid=${site.tracking_id}&_gid=1417391297.1704729600&cd1=member&z=1811226451`;
    const res = await browserFetch(`${gw.url}/collect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': CHROME_WINDOWS }, body });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', received: 1 });
    const [row] = await hits(`title = 'Products'`);
    expect(row).toMatchObject({
      hit_type: 'pageview',
      page: '/products?utm_source=newsletter&utm_medium=email&utm_campaign=spring',
      hostname: 'shop.shop.example',
      source: 'newsletter',
      medium: 'email',
      campaign: 'spring',
      device_type: 'desktop',
      browser: 'Chrome',
      os: 'Windows',
      language: 'en-us',
      screen_resolution: '1920x1080',
      is_new_visitor: 1,
      session_hit_number: 1,
    });
    expect(row!.client_id).not.toContain(cid);
    expect(row!.visitor).toMatch(/^\d+$/);
  });

  it('answers GET /collect with a 1x1 GIF that is never cached, and records the hit with its country', async () => {
    const query = form({ v: '1', _v: 'j101', tid: site.tracking_id, cid: 'pixel-1', t: 'pageview', dh: 'shop.example', dp: '/pixel', dt: 'Pixel', uip: '81.2.69.160', ua: SAFARI_IPHONE, z: '12345' });
    const res = await browserFetch(`${gw.url}/collect?${query}`);
    if (res.status !== 200) console.log(await res.clone().text());
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/gif');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const gif = Buffer.from(await res.arrayBuffer());
    expect(gif.length).toBe(43);
    expect(gif.subarray(0, 6).toString()).toBe('GIF89a');
    const [row] = await hits(`page = '/pixel'`);
    expect(row).toMatchObject({ country: 'GB', device_type: 'mobile', browser: 'Mobile Safari', os: 'iOS', source: '(direct)', medium: '(none)' });
  });

  it('accepts a sendBeacon text/plain payload and the seed JSON hit; a referrer from a search engine is organic', async () => {
    const beacon = form({ v: '1', tid: site.tracking_id, cid: 'beacon-1', t: 'pageview', dh: 'shop.example', dp: '/beacon', dr: 'https://www.google.com/' });
    const a = await browserFetch(`${gw.url}/collect`, { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: beacon });
    expect(await a.json()).toEqual({ status: 'ok', received: 1 });
    const b = await browserFetch(`${gw.url}/collect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ v: '1', tid: site.tracking_id, cid: '555', t: 'pageview', dh: 'shop.example', dp: '/home', dt: 'Homepage', dr: 'https://partner.example/links' }),
    });
    expect(await b.json()).toEqual({ status: 'ok', received: 1 });
    expect((await hits(`page = '/beacon'`))[0]).toMatchObject({ source: 'google', medium: 'organic' });
    expect((await hits(`page = '/home'`))[0]).toMatchObject({ source: 'partner.example', medium: 'referral' });
  });

  it('reports hits it does not record with a reason, never stores them, and answers 400 to malformed ones', async () => {
    const post = (params: Record<string, string>, ua = CHROME_WINDOWS) =>
      browserFetch(`${gw.url}/collect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': ua }, body: form(params) });
    const base = { v: '1', tid: site.tracking_id, cid: 'dropme', t: 'pageview', dh: 'shop.example' };
    const cases: Array<[Record<string, string>, string, string?]> = [
      [{ ...base, tid: 'WA-UNKNOWN000', dp: '/d1' }, 'unknown_tracking_id'],
      [{ ...base, dp: '/d2' }, 'bot', GOOGLEBOT],
      [{ ...base, dh: 'evil.example', dp: '/d3' }, 'hostname_not_allowed'],
      [{ ...base, dp: '/d4', timestamp: String(Date.now() - 5 * 3600_000) }, 'too_old'],
      [{ ...base, dp: '/d5', timestamp: String(Date.now() + 3600_000) }, 'invalid_hit'],
    ];
    for (const [params, reason, ua] of cases) {
      const res = await post(params, ua);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'ok', received: 0, failed: 1, errors: [{ index: 0, reason }] });
    }
    expect(await hits(`page LIKE '/d%'`)).toEqual([]);
    for (const bad of [{ ...base, t: undefined }, { ...base, t: 'event', ec: 'video' }, { ...base, cid: undefined }, { ...base, v: '2' }]) {
      const res = await post(Object.fromEntries(Object.entries(bad).filter(([, v]) => v !== undefined)) as Record<string, string>);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
    }
    const text = await browserFetch(`${gw.url}/collect`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'v=1&tid=nonsense&t=pageview' });
    expect(text.status).toBe(400);
    const huge = await browserFetch(`${gw.url}/collect`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: `${form(base)}&dt=${'x'.repeat(9000)}` });
    expect(huge.status).toBe(413);
  });

  it('never stores the IP address', async () => {
    await browserFetch(`${gw.url}/collect?${form({ v: '1', tid: site.tracking_id, cid: 'ip-check', t: 'pageview', dp: '/ip', uip: '5.9.0.1' })}`);
    const r = await gw.stores.warehouse.client.query({ query: 'SELECT * FROM analytics_hits', format: 'JSONEachRow' });
    const all = await r.text();
    expect(all).toContain('"DE"');
    for (const ip of ['5.9.0.1', '81.2.69.160', '127.0.0.1']) expect(all).not.toContain(ip);
    // Nor does the audit log: tracking operations record only the caller's network (x-weir-audit client_ip).
    await gw.app.weir.deps.audit.writer.flush();
    const audit = await gw.stores.metadata.query<{ client_ip: string }>(`SELECT client_ip FROM audit_events WHERE operation_id = 'collectHitPixel'`);
    expect(audit.rows.length).toBeGreaterThan(0);
    for (const row of audit.rows) expect(row.client_ip).toBe('127.0.0.0');
  });
});

describe('sessions and goals', () => {
  it('continues a session within 30 minutes, starts another after inactivity or on a new campaign, and matches goals once', async () => {
    const t0 = Date.now() - 3 * 3600_000;
    const send = (dp: string, at: number, extra: Record<string, string> = {}) =>
      browserFetch(`${gw.url}/collect?${form({ v: '1', tid: site.tracking_id, cid: 'sess-1', t: 'pageview', dh: 'shop.example', dp, timestamp: String(at), ...extra })}`);
    await send('/s/a', t0);
    await send('/thank-you/1', t0 + 10 * 60_000);
    await send('/thank-you/2', t0 + 20 * 60_000);
    await send('/s/b', t0 + 55 * 60_000); // 35 minutes idle
    await send('/s/c', t0 + 56 * 60_000, { cn: 'promo', cs: 'mail', cm: 'email' }); // new campaign
    const rows = await hits(`visitor IN (SELECT visitor FROM analytics_hits WHERE page = '/s/a')`);
    expect(rows.map((r) => r.page)).toEqual(['/s/a', '/thank-you/1', '/thank-you/2', '/s/b', '/s/c']);
    const [a, t1, t2, b, c] = rows;
    expect(t1!.session_id).toBe(a!.session_id);
    expect(t2!.session_id).toBe(a!.session_id);
    expect(b!.session_id).not.toBe(a!.session_id);
    expect(c!.session_id).not.toBe(b!.session_id);
    expect(rows.map((r) => r.session_hit_number)).toEqual([1, 2, 3, 1, 1]);
    expect(rows.map((r) => r.is_new_visitor)).toEqual([1, 1, 1, 0, 0]);
    expect(t1!.goal_ids).toEqual([thankYouGoal]);
    expect(t2!.goal_ids).toEqual([]);
    const sessions = await gw.stores.warehouse.client.query({
      query: `SELECT session_id, sum(sign) AS n, sum(sign * pageviews) AS pv, sum(sign * length(goal_ids)) AS goals FROM analytics_sessions WHERE session_id = {s:UUID} GROUP BY session_id`,
      query_params: { s: a!.session_id },
      format: 'JSONEachRow',
    });
    expect(await sessions.json()).toEqual([{ session_id: a!.session_id, n: '1', pv: '3', goals: '1' }]);
  });
});

describe('POST /batch', () => {
  it('records a text batch line by line and reports the lines it could not record', async () => {
    const lines = [
      form({ v: '1', tid: site.tracking_id, cid: 'b-1', t: 'pageview', dh: 'shop.example', dp: '/batch/1' }),
      'v=1&tid=' + site.tracking_id + '&cid=b-1&dp=%2Fno-type',
      form({ v: '1', tid: site.tracking_id, cid: 'b-2', t: 'pageview', dp: '/batch/bot', ua: GOOGLEBOT }),
      form({ v: '1', tid: site.tracking_id, cid: 'b-1', t: 'event', ec: 'video', ea: 'play', el: 'intro', ev: '42' }),
      form({ v: '1', tid: site.tracking_id, cid: 'b-3', t: 'pageview', dp: `/big?${'x'.repeat(8200)}` }).slice(0, 8300),
    ];
    const res = await browserFetch(`${gw.url}/batch`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: lines.join('\r\n') });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: 'ok',
      received: 2,
      failed: 3,
      errors: [
        { index: 1, reason: 'invalid_hit', detail: 'Line 2: missing required parameter t.' },
        { index: 2, reason: 'bot', detail: expect.any(String) },
        { index: 4, reason: 'hit_too_large', detail: expect.any(String) },
      ],
    });
    const event = (await hits(`event_category = 'video'`))[0];
    expect(event).toMatchObject({ hit_type: 'event', event_action: 'play', event_label: 'intro', event_value: 42 });
  });

  it('records the seed JSON batch, counting visitors without an id by a daily pseudonym', async () => {
    const now = Date.now();
    const res = await browserFetch(`${gw.url}/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': CHROME_WINDOWS },
      body: JSON.stringify({
        tracking_id: site.tracking_id,
        events: [
          { type: 'pageview', page: '/json-batch', timestamp: now - 5000, unknown_field: 1 },
          { type: 'event', category: 'button', action: 'click', label: 'signup', timestamp: now - 1000 },
        ],
      }),
    });
    expect(await res.json()).toEqual({ status: 'ok', received: 2, failed: 0 });
    const rows = await hits(`page = '/json-batch' OR event_label = 'signup'`);
    expect(rows).toHaveLength(2);
    expect(rows[0]!.visitor).toBe(rows[1]!.visitor);
    expect(rows[0]!.session_id).toBe(rows[1]!.session_id);
  });

  it('refuses more than 20 hits and bodies over 16 KB', async () => {
    const line = form({ v: '1', tid: site.tracking_id, cid: 'many', t: 'pageview', dp: '/m' });
    const many = await browserFetch(`${gw.url}/batch`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: Array(21).fill(line).join('\n') });
    expect(many.status).toBe(400);
    const big = await browserFetch(`${gw.url}/batch`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: Array(3).fill(`${line}&dt=${'y'.repeat(6000)}`).join('\n') });
    expect(big.status).toBe(413);
  });
});

describe('group commit', () => {
  it('acknowledges a hit only once it is stored, and answers 503 with Retry-After when the queue is full', async () => {
    const tight = await startGateway('analytics_tracking_tight', { stores: gw.stores, env: { ...SHIP_AT_ONCE, ANALYTICS_MAX_QUEUED_HITS: '2', ANALYTICS_JOURNAL_MAX_ROWS: '6' }, overrides: { plugins: pluginsWithTestPrincipal({ without: ['rate-limit'] }) } });
    try {
      const responses = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          browserFetch(`${tight.url}/collect`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ v: '1', tid: site.tracking_id, cid: `gc-${i}`, t: 'pageview', dp: '/gc' }) }),
        ),
      );
      const ok = responses.filter((r) => r.status === 200);
      const refused = responses.filter((r) => r.status === 503);
      expect(ok.length + refused.length).toBe(60);
      expect(refused.length).toBeGreaterThan(0);
      expect(refused[0]!.headers.get('retry-after')).toBe('1');
      const stored = await hits(`page = '/gc'`);
      expect(stored).toHaveLength(ok.length);
    } finally {
      await tight.close();
    }
  });
});

describe('per-site rate limit', () => {
  it('refuses a website\'s hits beyond its limit: failed with a reason in a batch, 429 with Retry-After for one hit; other sites unaffected', async () => {
    const limited = await startGateway('analytics_tracking_limits', {
      stores: gw.stores,
      env: { ...SHIP_AT_ONCE, ANALYTICS_SITE_RATE_LIMIT_OVERRIDES: JSON.stringify({ 'tenant:limited': { burst: 3, rate: 0.01 } }) },
      overrides: { plugins: pluginsWithTestPrincipal({ without: ['rate-limit'] }) },
    });
    try {
      const created = await browserFetch(`${limited.url}/v1/websites`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...asTenant('limited') },
        body: JSON.stringify({ domain: 'limited.example', name: 'Limited' }),
      });
      expect(created.status).toBe(201);
      const small = (await created.json()) as { website_id: string; tracking_id: string };
      const lines = (tid: string, n: number) => Array.from({ length: n }, (_, i) => form({ v: '1', tid, cid: `rl-${i}`, t: 'pageview', dp: `/rl/${i}` })).join('\n');

      const batch = await browserFetch(`${limited.url}/batch`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: lines(small.tracking_id, 5) });
      expect(batch.status).toBe(200);
      const result = (await batch.json()) as { received: number; failed: number; errors: Array<{ index: number; reason: string; detail: string }> };
      expect(result.received).toBe(3);
      expect(result.failed).toBe(2);
      expect(result.errors.map((e) => [e.index, e.reason])).toEqual([[3, 'rate_limited'], [4, 'rate_limited']]);
      expect(result.errors[0]!.detail).toMatch(/burst of 3/);

      const one = await browserFetch(`${limited.url}/collect`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ v: '1', tid: small.tracking_id, cid: 'rl-x', t: 'pageview', dp: '/rl/x' }) });
      expect(one.status).toBe(429);
      expect(one.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(Number(one.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await one.json()) as { status: number }).status).toBe(429);

      const stored = await gw.stores.warehouse.client.query({ query: 'SELECT page FROM analytics_hits WHERE website_id = {w:UUID} ORDER BY page', query_params: { w: small.website_id }, format: 'JSONEachRow' });
      expect((await stored.json<{ page: string }>()).map((r) => r.page)).toEqual(['/rl/0', '/rl/1', '/rl/2']);

      // Another tenant's site keeps the default limit.
      const other = await browserFetch(`${limited.url}/batch`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: lines(site.tracking_id, 5).replaceAll('dp=%2Frl', 'dp=%2Frl-other') });
      expect(((await other.json()) as { received: number }).received).toBe(5);
    } finally {
      await limited.close();
    }
  });

  it('refuses a malformed limit in the configuration', async () => {
    const { loadConfig } = await import('../../src/config.js');
    expect(() => loadConfig({ ANALYTICS_SITE_RATE_LIMIT: '{"burst":0,"rate":5}' })).toThrow(/ANALYTICS_SITE_RATE_LIMIT/);
    expect(() => loadConfig({ ANALYTICS_SITE_RATE_LIMIT_OVERRIDES: '{"plan:x":{"burst":1,"rate":1}}' })).toThrow(/ANALYTICS_SITE_RATE_LIMIT_OVERRIDES/);
    expect(loadConfig({ ANALYTICS_SITE_RATE_LIMIT: '{"burst":7,"rate":2.5}' }).analytics.siteRateLimit.default).toEqual({ burst: 7, rate: 2.5 });
  });
});

describe('report rollups switch', () => {
  it('ANALYTICS_ROLLUPS=false drops the rollups so reports read raw rows; switched on again, inserts fill them afresh', async () => {
    const tables = async () => {
      const r = await gw.stores.warehouse.client.query({ query: "SELECT name FROM system.tables WHERE database = currentDatabase() AND name LIKE 'analytics_%_15m%' ORDER BY name", format: 'JSONEachRow' });
      return (await r.json<{ name: string }>()).map((t) => t.name);
    };
    expect(await tables()).toEqual(['analytics_hits_15m', 'analytics_hits_15m_mv', 'analytics_pages_15m', 'analytics_pages_15m_mv', 'analytics_sessions_15m', 'analytics_sessions_15m_mv']);
    const { runReport } = await import('../../src/analytics/reports.js');
    const spec = { date_range: { start_date: '2026-01-01', end_date: '2026-01-02' }, metrics: ['pageviews' as const, 'sessions' as const] };
    const plan = async () => {
      let seen = '';
      await runReport(gw.stores.warehouse, { id: site.website_id, timezone: 'UTC' }, new Set(), spec, { onPlan: (p) => (seen = `${p.hits} ${p.sessions}`) });
      return seen;
    };
    expect(await plan()).toBe('analytics_hits_15m analytics_sessions_15m:dimensions');

    const off = await startGateway('analytics_rollups_off', { stores: gw.stores, env: { ANALYTICS_ROLLUPS: 'false' }, overrides: { plugins: pluginsWithTestPrincipal({ without: ['rate-limit'] }) } });
    await off.close();
    expect(await tables()).toEqual([]);
    expect(await plan()).toBe('analytics_hits analytics_sessions');

    const on = await startGateway('analytics_rollups_on', { stores: gw.stores, env: SHIP_AT_ONCE, overrides: { plugins: pluginsWithTestPrincipal({ without: ['rate-limit'] }) } });
    try {
      expect(await tables()).toHaveLength(6);
      const res = await browserFetch(`${on.url}/collect`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ v: '1', tid: site.tracking_id, cid: 'rollup-1', t: 'pageview', dp: '/rollup' }) });
      expect(res.status).toBe(200);
      const rolled = await gw.stores.warehouse.client.query({ query: 'SELECT sum(pageviews) AS n FROM analytics_hits_15m WHERE website_id = {w:UUID}', query_params: { w: site.website_id }, format: 'JSONEachRow' });
      // Only the hit inserted since the views came back: the rollup starts afresh, complete from then on.
      expect(Number((await rolled.json<{ n: string }>())[0]!.n)).toBe(1);
    } finally {
      await on.close();
    }
  });
});
