import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/** Test identity providers: signing keys, the JWT_ISSUERS entries that trust them, and token minting. */
export const AUDIENCE = 'weir-api';
export const HMAC_SECRET = 'test-hmac-secret-with-at-least-32-bytes!!';

export interface KeyPair {
  kid: string;
  alg: 'RS256' | 'ES256' | 'EdDSA';
  privateKey: CryptoKey;
  publicJwk: JWK;
  publicPem: string;
}

export async function keyPair(alg: KeyPair['alg'], kid: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, publicPem: await exportSPKI(publicKey) };
}

/** Serves a JWK Set whose keys the test can change, counting fetches. */
export async function jwksServer(keys: JWK[]): Promise<{ url: string; keys: JWK[]; fetches: () => number; close(): Promise<void> }> {
  let fetches = 0;
  const server: Server = createServer((_req, res) => {
    fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`,
    keys,
    fetches: () => fetches,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export function claims(overrides: JWTPayload = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000);
  return { sub: 'alice', tenant: 'acme', roles: ['admin'], aud: AUDIENCE, iat: now, exp: now + 300, ...overrides };
}

export async function sign(key: KeyPair | Uint8Array, payload: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const protectedHeader = key instanceof Uint8Array ? { alg: 'HS256', ...header } : { alg: key.alg, kid: key.kid, ...header };
  return new SignJWT(payload).setProtectedHeader(protectedHeader as never).sign(key instanceof Uint8Array ? key : key.privateKey);
}

/** An unsigned token (`alg: none`), which jose refuses to make itself. */
export function unsecured(payload: JWTPayload): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
}
