import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Stores } from '../stores/index.js';
import { ApiKeyStore } from './api-keys.js';
import { OAuthClientStore } from './clients.js';
import type { AuthConfig } from './config.js';
import { JwtVerifier } from './jwt-verifier.js';
import { loadPepper } from './secrets.js';
import { SigningKeys } from './signing-keys.js';
import { TokenIssuer } from './tokens.js';

/** Who may call: API keys, OAuth clients, the gateway's signing keys and tokens, and JWT verification. */
export interface Identity {
  settings: AuthConfig;
  apiKeys: ApiKeyStore;
  clients: OAuthClientStore;
  signingKeys: SigningKeys;
  tokens: TokenIssuer;
  jwt: JwtVerifier;
  /** Writes pending last-used times and stops listening for changes. */
  close(): Promise<void>;
}

export async function openIdentity(config: Config, stores: Pick<Stores, 'metadata' | 'shared'>, logger: Logger): Promise<Identity> {
  const settings = config.auth;
  const pepper = await loadPepper(stores.metadata, settings.apiKey.pepper, logger, config.env === 'production');
  const apiKeys = new ApiKeyStore({
    metadata: stores.metadata,
    shared: stores.shared,
    pepper,
    env: settings.apiKey.env,
    cacheTtlMs: settings.cacheTtlMs,
    logger,
  });
  const signingKeys = new SigningKeys({
    metadata: stores.metadata,
    alg: settings.token.alg,
    rotationMs: settings.token.rotationMs,
    tokenTtlMs: settings.token.ttlS * 1000,
    logger,
  });
  const jwt = await JwtVerifier.create(
    settings.issuers,
    { issuer: settings.token.issuer, audience: settings.token.audience, getKey: signingKeys.getKey },
    { clockSkewS: settings.clockSkewS, mfaAmrValues: settings.mfaAmrValues },
  );
  await apiKeys.start();
  return {
    settings,
    apiKeys,
    clients: new OAuthClientStore(stores.metadata, pepper),
    signingKeys,
    tokens: new TokenIssuer(signingKeys, settings.token),
    jwt,
    close: () => apiKeys.close(),
  };
}
