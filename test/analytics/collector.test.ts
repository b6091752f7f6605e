import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Collector, type CollectorOptions, type HitInput } from '../../src/analytics/collector.js';
import { parseHit } from '../../src/analytics/hit.js';
import { SessionTracker } from '../../src/analytics/sessions.js';
import { trafficSource, DIRECT } from '../../src/analytics/traffic-source.js';
import type { HitRow, SessionRow } from '../../src/analytics/warehouse-tables.js';
import type { Website } from '../../src/analytics/websites.js';
import { openSharedState } from '../../src/stores/shared-state.js';

const CHROME_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);

const website: Website = {
  id: '6f1c2a56-6d3b-4f7e-9a55-3f0e7a1d2b10', tenant: 't', trackingId: 'WA-TEST000001', domain: 'shop.example', name: 'Shop', timezone: 'UTC',
  currency: 'EUR', industry: null, allowedHostnames: [], createdAt: new Date(NOW), updatedAt: new Date(NOW),
};

const shared = await openSharedState({ keyPrefix: 'collector-test:', logger: pino({ level: 'silent' }) });
afterAll(() => shared.close());

function collector(site: Website = website): { collector: Collector; rows: HitRow[]; sessions: SessionRow[] } {
  const rows: HitRow[] = [];
  const sessions: SessionRow[] = [];
  const c = new Collector({
    directory: { lookup: async (tid: string) => (tid === site.trackingId ? { website: site, goals: [] } : undefined) } as unknown as CollectorOptions['directory'],
    sessions: new SessionTracker(shared),
    committer: { write: async (h: HitRow[], s: SessionRow[]) => void (rows.push(...h), sessions.push(...s)) } as unknown as CollectorOptions['committer'],
    shared,
    countryOf: () => 'ZZ',
    now: () => NOW,
  });
  return { collector: c, rows, sessions };
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();
const origin = { ip: '127.0.0.1', userAgent: CHROME_WINDOWS };
const params = (extra: Record<string, unknown>) => ({ v: '1', tid: website.trackingId, t: 'pageview', dh: 'shop.example', dp: '/', ...extra });

describe('collector', () => {
  it('keys visitors by user id, else client id, and stores only a hash of the client id', async () => {
    const { collector: c, rows } = await collector();
    await c.collect([{ index: 0, params: params({ cid: 'c-1' }) }, { index: 1, params: params({ cid: 'c-1', uid: 'u-1' }) }, { index: 2, params: params({ uid: 'u-2' }) }], origin);
    const clientHash = sha256(`${website.id}:c:c-1`);
    expect(rows.map((r) => [r.visitor, r.client_id, r.user_id])).toEqual([
      [clientHash.readBigUInt64BE(0).toString(), clientHash.toString('hex').slice(0, 32), ''],
      [sha256(`${website.id}:u:u-1`).readBigUInt64BE(0).toString(), clientHash.toString('hex').slice(0, 32), 'u-1'],
      [sha256(`${website.id}:u:u-2`).readBigUInt64BE(0).toString(), '', 'u-2'],
    ]);
  });

  it('records a hit given parsed as it records its parameters', async () => {
    const p = params({ cid: 'same', dr: 'https://www.google.com/search?q=kettle', dt: 'Kettle', sr: '1920x1080', ul: 'en-gb' });
    const parsed = parseHit(p);
    if (!parsed.ok) throw new Error(parsed.detail);
    const fromParams = await collector();
    const fromHit = await collector();
    const inputs: Array<[Collector, HitInput]> = [[fromParams.collector, { index: 0, params: p }], [fromHit.collector, { index: 0, hit: parsed.hit }]];
    const visitor = sha256(`${website.id}:c:same`).readBigUInt64BE(0).toString();
    for (const [c, input] of inputs) {
      // Each time a visitor never seen before.
      await shared.del(`an:s:${website.id}:${visitor}`);
      await shared.del(`an:v:${website.id}:${visitor}`);
      expect(await c.collect([input], origin)).toEqual({ received: 1, errors: [] });
    }
    const [a, b] = [fromParams.rows[0]!, fromHit.rows[0]!];
    expect({ ...b, session_id: a.session_id }).toEqual(a);
    expect(a).toMatchObject({ source: 'google', medium: 'organic', title: 'Kettle', browser: 'Chrome', os: 'Windows', device_type: 'desktop' });
  });

  it('drops bots, and reports invalid hits by their index', async () => {
    const { collector: c, rows } = await collector();
    const result = await c.collect([{ index: 0, params: params({ cid: 'b' }) }, { index: 1, params: { v: '1' } }], { ...origin, userAgent: 'Googlebot/2.1 (+http://www.google.com/bot.html)' });
    expect(result.received).toBe(0);
    expect(result.errors.map((e) => [e.index, e.reason])).toEqual([[0, 'bot'], [1, 'invalid_hit']]);
    expect(rows).toEqual([]);
  });
});

describe('sessions across hits', () => {
  it('cancels exactly the row it wrote before: a later hit of the visitor leaves the rows already written as they were', async () => {
    const { collector: c, sessions } = collector();
    const hit = (cid: string) => [{ index: 0, params: params({ cid, dp: '/a' }) }];
    await c.collect(hit('rows-1'), origin);
    const first = structuredClone(sessions[0]!);
    await c.collect(hit('rows-1'), origin);
    await c.collect(hit('rows-1'), origin);
    expect(sessions.map((s) => [s.sign, s.version, s.hits, s.pageviews])).toEqual([[1, 1, 1, 1], [-1, 1, 1, 1], [1, 2, 2, 2], [-1, 2, 2, 2], [1, 3, 3, 3]]);
    expect(sessions[0]).toEqual(first);
    expect(sessions[1]).toEqual({ ...first, sign: -1 });
    expect(sessions[3]).toEqual({ ...sessions[2], sign: -1 });
  });

  it('refers the site\'s own pages and its allowed host names to the session\'s source, others as referrals', async () => {
    const { collector: c, rows } = collector({ ...website, allowedHostnames: ['shop.example', '*.shop-cdn.example'] });
    for (const dr of ['https://www.shop.example/x', 'https://img.shop-cdn.example/y', 'https://news.example/z']) await c.collect([{ index: 0, params: params({ cid: `own-${dr}`, dr }) }], origin);
    expect(rows.map((r) => [r.source, r.medium])).toEqual([['(direct)', '(none)'], ['(direct)', '(none)'], ['news.example', 'referral']]);
  });
});

describe('traffic source', () => {
  it('answers a referrer the same every time, cached or not', () => {
    const own = (host: string) => host === 'shop.example';
    for (let round = 0; round < 3; round++) {
      expect(trafficSource({ dr: 'https://www.Google.co.uk/search' }, own)).toMatchObject({ source: 'google', medium: 'organic' });
      expect(trafficSource({ dr: 'https://news.example.org/a' }, own)).toMatchObject({ source: 'news.example.org', medium: 'referral' });
      expect(trafficSource({ dr: 'https://shop.example/cart' }, own)).toEqual(DIRECT);
      expect(trafficSource({ dr: 'not a url' }, own)).toEqual(DIRECT);
    }
    for (let i = 0; i < 3000; i++) expect(trafficSource({ dr: `https://site${i}.example/` }, own).source).toBe(`site${i}.example`);
    expect(trafficSource({ dr: 'https://site0.example/' }, own).source).toBe('site0.example');
  });
});
