import { pino } from 'pino';
import { verifyChains } from '../audit/verify.js';
import { AuditStore } from '../audit/store.js';
import { ConfigError, loadConfig } from '../config.js';
import { describeMetadata, openMetadataStore } from '../stores/metadata.js';

export const summary = 'verify [--tenant <id>]: walk the audit hash chains and name the first broken record';

const USAGE = `Usage: npm run weir -- audit verify [--tenant <id>]

Recomputes every audit event's hash in the database that DATABASE_URL (or the embedded PGlite in
DATA_DIR) names, checking that each event follows the previous one of its tenant. Exits 0 when every
chain holds, 1 naming the first broken record, 2 on bad usage or configuration.`;

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'verify') {
    console.error(USAGE);
    return sub === undefined || sub === '--help' ? 0 : 2;
  }
  let tenant: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--tenant' && rest[i + 1]) tenant = rest[++i];
    else {
      console.error(`Unknown argument ${rest[i]}\n\n${USAGE}`);
      return 2;
    }
  }
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  const logger = pino({ level: 'warn' });
  const metadata = await openMetadataStore({
    databaseUrl: config.database.url,
    dataDir: config.dataDir,
    schema: config.database.schema,
    poolMax: 2,
    logger,
  });
  try {
    const where = describeMetadata({ databaseUrl: config.database.url, dataDir: config.dataDir });
    const result = await verifyChains(new AuditStore(metadata), tenant);
    if (result.broken) {
      const b = result.broken;
      console.log(`audit chain BROKEN in ${where}, schema ${config.database.schema}`);
      console.log(`first broken record: tenant=${b.tenant} seq=${b.seq} id=${b.id}`);
      console.log(`reason: ${b.reason}`);
      return 1;
    }
    console.log(`audit chain intact: ${result.events} events in ${result.tenants} tenant chain(s) (${where}, schema ${config.database.schema})`);
    return 0;
  } finally {
    await metadata.close();
  }
}
