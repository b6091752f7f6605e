import { parseArgs } from 'node:util';
import { csvList, withIdentity } from './with-identity.js';

export const summary = 'register an OAuth client for the client credentials grant: `client create <id> --tenant t --roles a,b --scopes x,y`';

const USAGE = `Usage: npm run weir -- client create <client id> --tenant <tenant> [--roles a,b] [--scopes x,y] [--name <label>]
  Registers an OAuth client; POST /v1/auth/token then trades its id and secret for a short-lived JWT
  carrying the tenant, roles and scopes. The secret is printed once; Weir keeps only its hash.`;

export async function run(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { tenant: { type: 'string' }, roles: { type: 'string' }, scopes: { type: 'string' }, name: { type: 'string' } },
  });
  const [command, clientId] = positionals;
  if (command !== 'create' || !clientId || !values.tenant) {
    console.error(USAGE);
    return 2;
  }
  return withIdentity(async (identity) => {
    const { secret } = await identity.clients.create({
      clientId,
      tenant: values.tenant!,
      name: values.name,
      roles: csvList(values.roles),
      scopes: csvList(values.scopes),
    });
    console.log(`OAuth client "${clientId}" in tenant "${values.tenant}"; its secret is shown only now:\n\n  ${secret}\n`);
    return 0;
  });
}
