import type { Logger } from 'pino';
import type { Queryable } from '../stores/index.js';
import type { ApiKeyRecord } from './api-keys.js';
import type { Identity } from './index.js';

export const ADMIN_ROLE = 'admin';

/** An API key with the tenant's admin role and every scope: the credential a new install starts with. */
export function createAdminKey(identity: Identity, tenant: string, createdBy = 'bootstrap'): Promise<{ record: ApiKeyRecord; secret: string }> {
  return identity.apiKeys.create({ tenant, name: 'bootstrap admin', roles: [ADMIN_ROLE], scopes: ['*'], expiresAt: null, createdBy });
}

/**
 * On the first start of an install with no credentials at all, makes the admin key and logs it once.
 * A marker row makes this happen once per store, whichever process gets there first.
 */
export async function bootstrapIfEmpty(identity: Identity, db: Queryable, logger: Logger): Promise<string | undefined> {
  const { enabled, tenant } = identity.settings.bootstrap;
  if (!enabled || (await identity.apiKeys.count()) > 0 || (await identity.clients.count()) > 0) return undefined;
  const { rowCount } = await db.query(`INSERT INTO weir_meta (key, value) VALUES ('auth.bootstrapped', $1) ON CONFLICT (key) DO NOTHING`, [
    new Date().toISOString(),
  ]);
  if (!rowCount) return undefined;
  const { record, secret } = await createAdminKey(identity, tenant);
  logger.warn(
    { bootstrap: { tenant, key_id: record.keyId, api_key: secret } },
    `First start: created an admin API key (bootstrap.api_key) for tenant "${tenant}". It is shown only this once: store it now, ` +
      `then send it as the X-API-Key header (README.md, "First authenticated call").`,
  );
  return secret;
}
