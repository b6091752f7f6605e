import { describe, expect, it } from 'vitest';
import { WeirClient, WeirHttpError, WeirProblemError, items, retryDelay } from '../../generated/sdk/src/index.js';

type Call = { url: string; init: RequestInit };

/** A fetch that answers from a script of responses and records what it was asked. */
function scriptedFetch(responses: (() => Response)[]) {
  const calls: Call[] = [];
  const fetch = async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), init: init ?? {} });
    const next = responses.shift();
    if (!next) throw new Error('no more scripted responses');
    return next();
  };
  return { fetch: fetch as typeof globalThis.fetch, calls };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) => () =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const problem = (status: number, title: string, headers: Record<string, string> = {}) => () =>
  new Response(JSON.stringify({ type: 'https://weir.dev/problems/x', title, status, detail: `${title}!`, instance: 'urn:weir:request:abc' }), {
    status,
    headers: { 'content-type': 'application/problem+json', 'x-request-id': 'abc', ...headers },
  });

describe('the generated SDK', () => {
  it('fills path parameters, query and auth, and parses JSON', async () => {
    const { fetch, calls } = scriptedFetch([json(200, { items: [], next_cursor: null })]);
    const client = new WeirClient({ baseUrl: 'http://gw.test/', apiKey: 'weir_test_key', fetch });
    await client.listGoals({ params: { websiteId: 'a b/c' }, query: { limit: 5 } });
    expect(calls[0]!.url).toBe('http://gw.test/v1/websites/a%20b%2Fc/goals?limit=5');
    expect((calls[0]!.init.headers as Record<string, string>)['x-api-key']).toBe('weir_test_key');
  });

  it('prefers a bearer token, from a function when given one', async () => {
    const { fetch, calls } = scriptedFetch([json(200, { status: 'ok', version: '1', uptime_s: 1 })]);
    const client = new WeirClient({ baseUrl: 'http://gw.test', token: async () => 'tok-1', apiKey: 'ignored', fetch });
    await client.getHealth();
    const headers = calls[0]!.init.headers as Record<string, string>;
    expect(headers.authorization).toBe('Bearer tok-1');
    expect(headers['x-api-key']).toBeUndefined();
  });

  it('raises problem+json answers as WeirProblemError with the request id', async () => {
    const { fetch } = scriptedFetch([problem(404, 'Not found')]);
    const client = new WeirClient({ baseUrl: 'http://gw.test', fetch });
    const err = await client.getWebsite({ params: { websiteId: 'x' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeirProblemError);
    expect((err as WeirProblemError).problem.title).toBe('Not found');
    expect((err as WeirProblemError).status).toBe(404);
    expect((err as WeirProblemError).requestId).toBe('abc');
  });

  it('raises other errors as WeirHttpError with the parsed body', async () => {
    const { fetch } = scriptedFetch([json(401, { error: 'invalid_client' })]);
    const client = new WeirClient({ baseUrl: 'http://gw.test', fetch });
    const err = await client.issueToken({ body: { grant_type: 'client_credentials', client_id: 'a', client_secret: 'b' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeirHttpError);
    expect(err).not.toBeInstanceOf(WeirProblemError);
    expect((err as WeirHttpError).body).toEqual({ error: 'invalid_client' });
  });

  it('retries 429 and 503 honouring Retry-After, then succeeds', async () => {
    const { fetch, calls } = scriptedFetch([
      problem(429, 'Rate limit exceeded', { 'retry-after': '0' }),
      problem(503, 'Service unavailable', { 'retry-after': '0' }),
      json(200, { status: 'ok', version: '1', uptime_s: 1 }),
    ]);
    const client = new WeirClient({ baseUrl: 'http://gw.test', fetch });
    await expect(client.getHealth()).resolves.toMatchObject({ status: 'ok' });
    expect(calls).toHaveLength(3);
  });

  it('gives up after maxRetries, and when Retry-After exceeds the longest wait', async () => {
    const limited = scriptedFetch([problem(429, 'a', { 'retry-after': '0' }), problem(429, 'b', { 'retry-after': '0' })]);
    const client = new WeirClient({ baseUrl: 'http://gw.test', fetch: limited.fetch, maxRetries: 1 });
    await expect(client.getHealth()).rejects.toMatchObject({ status: 429, problem: { title: 'b' } });
    expect(limited.calls).toHaveLength(2);
    const long = scriptedFetch([problem(429, 'later', { 'retry-after': '3600' })]);
    const impatient = new WeirClient({ baseUrl: 'http://gw.test', fetch: long.fetch, maxRetryDelayMs: 1000 });
    await expect(impatient.getHealth()).rejects.toMatchObject({ status: 429 });
    expect(long.calls).toHaveLength(1);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryDelay('2', 0)).toBe(2000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryDelay('Thu, 01 Jan 2026 00:00:05 GMT', 0, now)).toBe(5000);
    const backoff = retryDelay(null, 3);
    expect(backoff).toBeGreaterThanOrEqual(1000);
    expect(backoff).toBeLessThanOrEqual(2000);
  });

  it('iterates cursor pages until next_cursor is null', async () => {
    const { fetch, calls } = scriptedFetch([
      json(200, { items: [{ goal_id: 'g1' }, { goal_id: 'g2' }], next_cursor: 'c2' }),
      json(200, { items: [{ goal_id: 'g3' }], next_cursor: null }),
    ]);
    const client = new WeirClient({ baseUrl: 'http://gw.test', fetch });
    const ids: string[] = [];
    for await (const goal of items(client.listGoalsPages({ params: { websiteId: 'w' }, query: { limit: 2 } }))) ids.push(goal.goal_id);
    expect(ids).toEqual(['g1', 'g2', 'g3']);
    expect(calls[1]!.url).toBe('http://gw.test/v1/websites/w/goals?limit=2&cursor=c2');
  });
});
