import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/app.js';
import { asTenant, pluginsWithTestPrincipal } from '../helpers/test-principal.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway('analytics_websites', { overrides: { plugins: pluginsWithTestPrincipal({ without: ['rate-limit'] }) } });
});
afterAll(async () => gw?.close());

const json = (tenant: string, body?: unknown, method = 'POST'): RequestInit => ({
  method,
  headers: { 'content-type': 'application/json', ...asTenant(tenant) },
  body: body === undefined ? undefined : JSON.stringify(body),
});

async function createWebsite(tenant: string, body: Record<string, unknown>) {
  const res = await fetch(`${gw.url}/v1/websites`, json(tenant, body));
  return { res, body: (await res.json()) as Record<string, any> };
}

describe('websites', () => {
  it('creates a website with a generated tracking id and defaults, and reads it back', async () => {
    const { res, body } = await createWebsite('acme', { domain: 'acme.example', name: 'Acme', allowed_hostnames: ['acme.example', '*.acme.example'] });
    expect(res.status).toBe(201);
    expect(body.tracking_id).toMatch(/^WA-[0-9A-Z]{10}$/);
    expect(body).toMatchObject({ domain: 'acme.example', name: 'Acme', timezone: 'UTC', currency: 'USD', industry: null });
    expect(res.headers.get('location')).toBe(`/v1/websites/${body.website_id}`);
    const got = await fetch(`${gw.url}/v1/websites/${body.website_id}`, { headers: asTenant('acme') });
    expect(await got.json()).toEqual(body);
  });

  it('keeps tenants apart: another tenant gets 404, and domains are unique per tenant only', async () => {
    const { body } = await createWebsite('t-one', { domain: 'shared.example', name: 'One' });
    const other = await fetch(`${gw.url}/v1/websites/${body.website_id}`, { headers: asTenant('t-two') });
    expect(other.status).toBe(404);
    expect((await createWebsite('t-two', { domain: 'shared.example', name: 'Two' })).res.status).toBe(201);
    const dup = await createWebsite('t-one', { domain: 'SHARED.example', name: 'Again' });
    expect(dup.res.status).toBe(409);
  });

  it('refuses an unknown time zone and anonymous callers', async () => {
    expect((await createWebsite('tz', { domain: 'tz.example', name: 'TZ', timezone: 'Mars/Olympus_Mons' })).res.status).toBe(400);
    const anon = await fetch(`${gw.url}/v1/websites`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ domain: 'a.example', name: 'A' }) });
    expect(anon.status).toBe(401);
  });

  it('updates only the fields sent, clears industry with null, and lists a page at a time', async () => {
    const tenant = 'lister';
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await createWebsite(tenant, { domain: `s${i}.example`, name: `S${i}`, industry: 'Retail' })).body.website_id);
    const patched = await fetch(`${gw.url}/v1/websites/${ids[0]}`, json(tenant, { name: 'Renamed', industry: null, timezone: 'Asia/Kolkata' }, 'PATCH'));
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ name: 'Renamed', industry: null, timezone: 'Asia/Kolkata', domain: 's0.example' });
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res: Response = await fetch(`${gw.url}/v1/websites?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { headers: asTenant(tenant) });
      const list = (await res.json()) as { items: Array<{ website_id: string }>; next_cursor: string | null };
      seen.push(...list.items.map((w) => w.website_id));
      cursor = list.next_cursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(ids);
  });

  it('deletes a website: 204, then 404, and its domain is free again', async () => {
    const { body } = await createWebsite('deleter', { domain: 'gone.example', name: 'Gone' });
    expect((await fetch(`${gw.url}/v1/websites/${body.website_id}`, { method: 'DELETE', headers: asTenant('deleter') })).status).toBe(204);
    expect((await fetch(`${gw.url}/v1/websites/${body.website_id}`, { headers: asTenant('deleter') })).status).toBe(404);
    const again = await createWebsite('deleter', { domain: 'gone.example', name: 'Back' });
    expect(again.res.status).toBe(201);
    expect(again.body.tracking_id).not.toBe(body.tracking_id);
  });
});

describe('goals', () => {
  it('creates each kind of goal and lists them oldest first', async () => {
    const { body: site } = await createWebsite('goals', { domain: 'goals.example', name: 'Goals' });
    const url = `${gw.url}/v1/websites/${site.website_id}/goals`;
    const inputs = [
      { name: 'Thanks', type: 'destination', match_type: 'equals', value: '/thank-you', value_numeric: 50 },
      { name: 'Signup', type: 'event', category: { match_type: 'equals', value: 'newsletter' }, action: { match_type: 'regex', value: '^sub' } },
      { name: 'Engaged', type: 'duration', min_seconds: 300 },
      { name: 'Deep', type: 'pages_per_session', min_pages: 5 },
    ];
    const created = [];
    for (const input of inputs) {
      const res = await fetch(url, json('goals', input));
      expect(res.status).toBe(201);
      created.push(await res.json());
    }
    expect(created[0]).toMatchObject({ type: 'destination', value: '/thank-you', value_numeric: 50 });
    expect(created[1]).toMatchObject({ type: 'event', value_numeric: null, action: { match_type: 'regex', value: '^sub' } });
    const list = (await (await fetch(url, { headers: asTenant('goals') })).json()) as { items: unknown[] };
    expect(list.items).toEqual(created);
    expect((await fetch(url, json('goals', inputs[0]))).status).toBe(409);
  });

  it('refuses catastrophic or non-RE2 regexes and an event goal without conditions', async () => {
    const { body: site } = await createWebsite('badgoals', { domain: 'bad.example', name: 'Bad' });
    const url = `${gw.url}/v1/websites/${site.website_id}/goals`;
    for (const value of ['(a+)+$', '(x|xx)*y', '^(?=admin)', '(a)\\1', '[']) {
      const res = await fetch(url, json('badgoals', { name: `r${value}`, type: 'destination', match_type: 'regex', value }));
      expect(res.status, value).toBe(400);
    }
    expect((await fetch(url, json('badgoals', { name: 'empty', type: 'event' }))).status).toBe(400);
    expect((await fetch(url, json('badgoals', { name: 'fine', type: 'destination', match_type: 'regex', value: '^/blog/[a-z-]+/?$' }))).status).toBe(201);
  });
});
