import type { Identity } from '../identity/index.js';
import type { TokenAuthenticator } from './realtime-hub.js';

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** A WebSocket subscription's token, checked as the HTTP auth plugin checks it: a JWT, else an API key. */
export function tokenAuthenticator(identity: Pick<Identity, 'jwt' | 'apiKeys'>): TokenAuthenticator {
  return async (token) => {
    const value = token.replace(/^Bearer\s+/i, '').trim();
    if (!value) return undefined;
    const result = JWT_SHAPE.test(value) ? await identity.jwt.verify(value) : await identity.apiKeys.authenticate(value);
    return result.ok ? result.principal : undefined;
  };
}
