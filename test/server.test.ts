import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, storeConfig } from '../src/app.js';
import { listen } from '../src/server.js';
import { openStores, type Stores } from '../src/stores/index.js';
import { testConfig } from './helpers/app.js';
import { cleanupTestStores } from './helpers/store-env.js';

const logger = pino({ level: 'silent' });
let stores: Stores;
let base: ReturnType<typeof testConfig>;

beforeAll(async () => {
  base = testConfig('server');
  stores = await openStores(storeConfig(base), logger);
});
afterAll(async () => {
  await stores?.close();
  if (base) await cleanupTestStores(storeConfig(base));
});

function selfSignedCertificate(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'weir-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

function httpsGet(url: string, tls: { minVersion?: 'TLSv1.1'; maxVersion?: 'TLSv1.1' } = {}): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { rejectUnauthorized: false, ...tls }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('listen', () => {
  it('terminates TLS 1.2+ with HSTS, and refuses TLS 1.1', async () => {
    const { cert, key } = selfSignedCertificate();
    const config = { ...base, port: 0, tls: { certFile: cert, keyFile: key, hstsMaxAge: 3600 } };
    const app = await buildApp(config, { stores, logger });
    const running = await listen(app, config, logger);
    try {
      expect(running.url).toMatch(/^https:\/\/localhost:\d+$/);
      const res = await httpsGet(`${running.url}/healthz`);
      expect(res.status).toBe(200);
      expect(res.headers['strict-transport-security']).toBe('max-age=3600; includeSubDomains');
      await expect(httpsGet(`${running.url}/healthz`, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1' })).rejects.toThrow();
    } finally {
      await running.shutdown('test');
    }
  });

  it('on shutdown, finishes in-flight requests and refuses new connections', async () => {
    const config = { ...base, port: 0 };
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => (entered = resolve));
    const app = await buildApp(config, {
      stores,
      logger,
      handlers: (built) => ({
        ...built,
        getHealth: async () => {
          entered();
          await new Promise((r) => setTimeout(r, 300));
          return { status: 200, body: { status: 'ok', version: 'slow', uptime_s: 0 } };
        },
      }),
    });
    const running = await listen(app, config, logger);
    const slow = fetch(`${running.url}/healthz`);
    await inHandler;
    const stopped = running.shutdown('test');
    const res = await slow;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { version: string }).version).toBe('slow');
    await stopped;
    await expect(fetch(`${running.url}/healthz`)).rejects.toThrow();
  });
});
