import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseByteSize } from './config.js';

describe('loadConfig', () => {
  it('has working defaults: embedded stores, port 8080, ./data', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.dataDir).toBe(join(process.cwd(), 'data'));
    expect(c.database.url).toBeUndefined();
    expect(c.clickhouse.url).toBeUndefined();
    expect(c.redis.url).toBeUndefined();
    expect(c.http.bodyLimit).toBe(1024 * 1024);
    expect(c.http.validateResponses).toBe(true);
    expect(c.tls).toBeUndefined();
  });

  it('names each bad variable and the form it expects, without echoing passwords', () => {
    let err: unknown;
    try {
      loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://root:hunter2@db/x', BODY_LIMIT: 'huge' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).toMatch(/PORT: .*"eighty"/);
    expect(message).toMatch(/DATABASE_URL: expected a URL starting with postgres:\/\/ or postgresql:\/\//);
    expect(message).toMatch(/BODY_LIMIT: expected a size such as 512kb/);
    expect(message).not.toContain('hunter2');
  });

  it('reads WEIR_CONFIG_FILE, and the environment wins over it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weir-config-'));
    const file = join(dir, 'weir.json');
    writeFileSync(file, JSON.stringify({ PORT: 9000, HOST: '127.0.0.1', REDIS_URL: 'redis://cache:6379' }));
    const c = loadConfig({ WEIR_CONFIG_FILE: file, PORT: '9100' });
    expect(c.port).toBe(9100);
    expect(c.host).toBe('127.0.0.1');
    expect(c.redis.url).toBe('redis://cache:6379');
    expect(() => loadConfig({ WEIR_CONFIG_FILE: join(dir, 'missing.json') })).toThrow(/WEIR_CONFIG_FILE: cannot read/);
  });

  it('needs both TLS files or neither; responses are validated outside production unless told', () => {
    expect(() => loadConfig({ TLS_CERT_FILE: '/c.pem' })).toThrow(/TLS_CERT_FILE and TLS_KEY_FILE/);
    expect(loadConfig({ NODE_ENV: 'production' }).http.validateResponses).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', VALIDATE_RESPONSES: 'true' }).http.validateResponses).toBe(true);
    expect(loadConfig({ CORS_ORIGINS: 'https://a.example, https://b.example' }).http.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(loadConfig({ CORS_ORIGINS: '*' }).http.corsOrigins).toBe('*');
  });

  it('parses byte sizes', () => {
    expect(parseByteSize('512kb')).toBe(512 * 1024);
    expect(parseByteSize('1.5MB')).toBe(1.5 * 1024 * 1024);
    expect(parseByteSize('100')).toBe(100);
    expect(() => parseByteSize('ten')).toThrow();
  });
});
