import { parseArgs } from 'node:util';
import { ADMIN_ROLE, createAdminKey } from '../identity/bootstrap.js';
import { withIdentity } from './with-identity.js';

export const summary = 'make an admin API key (and optionally an OAuth client) for a tenant; prints the secrets once';

const USAGE = `Usage: npm run weir -- bootstrap [--tenant <tenant>] [--client <client id>]
  Creates an API key with the admin role in the tenant (default: BOOTSTRAP_TENANT) and prints it.
  With --client, also registers an OAuth client (client credentials grant) with the admin role.
  Uses the configured stores (DATABASE_URL or DATA_DIR, REDIS_URL).`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { tenant: { type: 'string' }, client: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  return withIdentity(async (identity) => {
    const tenant = values.tenant ?? identity.settings.bootstrap.tenant;
    const { record, secret } = await createAdminKey(identity, tenant, 'cli:bootstrap');
    console.log(`Admin API key for tenant "${tenant}" (${record.keyId}); it is shown only now:\n\n  ${secret}\n`);
    console.log(`First call:\n  curl -H 'X-API-Key: ${secret}' http://localhost:8080/v1/api-keys\n`);
    if (values.client) {
      const created = await identity.clients.create({ clientId: values.client, tenant, roles: [ADMIN_ROLE], scopes: ['*'] });
      console.log(`OAuth client "${values.client}" (client credentials); its secret is shown only now:\n\n  ${created.secret}\n`);
    }
    return 0;
  });
}
