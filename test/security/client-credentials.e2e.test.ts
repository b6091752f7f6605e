import { decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeirClient, WeirHttpError, WeirProblemError } from '../../generated/sdk/src/index.js';
import { startServerProcess, storeEnv, type ServerProcess } from '../helpers/server-process.js';
import { cleanupTestStores, testStoreConfig } from '../helpers/store-env.js';
import { weirCli } from './cli.js';

/**
 * The OAuth client credentials flow end to end, through the generated SDK against a real server
 * process: `weir bootstrap --client` registers a client, the SDK trades its secret for a token,
 * calls a protected operation with it, and sees it expire (TOKEN_TTL_S=2, no clock skew).
 */
const stores = testStoreConfig('client_credentials');
const env = { ...storeEnv(stores), TOKEN_TTL_S: '2', JWT_CLOCK_SKEW_S: '0' };
let server: ServerProcess;
let clientSecret: string;
let adminKey: string;

const form = (fields: Record<string, string>) => ({ contentType: 'application/x-www-form-urlencoded', data: new URLSearchParams(fields).toString() });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  const cli = await weirCli(['bootstrap', '--tenant', 'acme', '--client', 'e2e-bot'], env);
  expect(cli.code, cli.stderr).toBe(0);
  adminKey = /^\s+(weir_live_\S+)$/m.exec(cli.stdout)![1]!;
  clientSecret = /^\s+(weir_cs_\S+)$/m.exec(cli.stdout)![1]!;
  server = await startServerProcess('client_credentials', env);
}, 120_000);
afterAll(async () => {
  await server?.stop('SIGTERM');
  await cleanupTestStores(stores);
});

describe('client credentials through the SDK', () => {
  it('does not print a bootstrap key when the store already has credentials', () => {
    expect(server.logs.filter((l) => l.bootstrap)).toEqual([]);
    expect(JSON.stringify(server.logs)).not.toContain(clientSecret);
  });

  it('issues a short-lived token, verifiable with the published JWK Set, that authorizes a call and then expires', async () => {
    const anonymous = new WeirClient({ baseUrl: server.url });
    const issued = await anonymous.issueToken({ raw: form({ grant_type: 'client_credentials', client_id: 'e2e-bot', client_secret: clientSecret }) });
    expect(issued).toMatchObject({ token_type: 'Bearer', expires_in: 2, scope: '*' });
    const { kid, alg } = decodeProtectedHeader(issued.access_token);
    const jwks = await anonymous.getJwks();
    expect(jwks.keys).toEqual(expect.arrayContaining([expect.objectContaining({ kid, alg, use: 'sig' })]));
    expect(JSON.stringify(jwks)).not.toMatch(/"d":/);

    const client = new WeirClient({ baseUrl: server.url, token: issued.access_token });
    const keys = await client.listApiKeys();
    expect(keys.items.map((k) => k.tenant)).toContain('acme');

    await sleep(2_500);
    const expired = await client.listApiKeys().catch((e: unknown) => e);
    expect(expired).toBeInstanceOf(WeirProblemError);
    expect((expired as WeirProblemError).status).toBe(401);
    expect((expired as WeirProblemError).problem.detail).toMatch(/expired/);
    expect((expired as WeirProblemError).headers.get('www-authenticate')).toContain('error="invalid_token"');

    // A token provider function gets a fresh token per call, so long-running clients keep going.
    const refreshing = new WeirClient({
      baseUrl: server.url,
      token: async () => (await anonymous.issueToken({ raw: form({ grant_type: 'client_credentials', client_id: 'e2e-bot', client_secret: clientSecret }) })).access_token,
    });
    await expect(refreshing.listApiKeys()).resolves.toMatchObject({ items: expect.any(Array) });
  }, 30_000);

  it('accepts HTTP Basic client authentication and narrows scopes', async () => {
    const basic = `Basic ${Buffer.from(`e2e-bot:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
    const issued = await new WeirClient({ baseUrl: server.url }).issueToken({
      headers: { authorization: basic },
      raw: form({ grant_type: 'client_credentials', scope: 'datasets:read' }),
    });
    expect(issued.scope).toBe('datasets:read');
  });

  it('answers refusals as OAuth error documents, never echoing the secret', async () => {
    const anonymous = new WeirClient({ baseUrl: server.url, maxRetries: 0 });
    const attempt = (fields: Record<string, string>, headers?: Record<string, string>) =>
      anonymous.issueToken({ raw: form(fields), headers }).then(
        () => {
          throw new Error('expected a refusal');
        },
        (e: unknown) => e as WeirHttpError,
      );
    const wrong = await attempt({ grant_type: 'client_credentials', client_id: 'e2e-bot', client_secret: `${clientSecret}x` });
    expect([wrong.status, wrong.body]).toEqual([401, { error: 'invalid_client', error_description: 'Client authentication failed.' }]);
    expect(wrong.headers.get('cache-control')).toBe('no-store');
    const unknown = await attempt({ grant_type: 'client_credentials', client_id: 'nobody', client_secret: clientSecret });
    expect(unknown.body).toEqual(wrong.body);
    expect(JSON.stringify(unknown.body)).not.toContain(clientSecret);
    expect((await attempt({ grant_type: 'password', client_id: 'e2e-bot', client_secret: clientSecret })).body).toMatchObject({ error: 'unsupported_grant_type' });
    expect((await attempt({ client_id: 'e2e-bot', client_secret: clientSecret })).body).toMatchObject({ error: 'invalid_request' });
    const both = await attempt(
      { grant_type: 'client_credentials', client_id: 'e2e-bot', client_secret: clientSecret },
      { authorization: `Basic ${Buffer.from(`e2e-bot:${clientSecret}`).toString('base64')}` },
    );
    expect([both.status, (both.body as { error: string }).error]).toEqual([400, 'invalid_request']);
    const badBasic = await attempt({ grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from('e2e-bot:nope').toString('base64')}` });
    expect(badBasic.status).toBe(401);
    expect(badBasic.headers.get('www-authenticate')).toMatch(/^Basic realm="weir"/);
    // The admin key made by the CLI works too (the SDK's API-key authentication).
    await expect(new WeirClient({ baseUrl: server.url, apiKey: adminKey }).listApiKeys()).resolves.toMatchObject({ items: expect.any(Array) });
  });
});
