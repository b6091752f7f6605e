import { readdirSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Authorizer } from '../authz/authorizer.js';
import { describeRule, parseAttributes, parseResource, readExpectations, runExpectations } from '../authz/expectations.js';
import { GrantStore } from '../authz/grants.js';
import { defaultPolicyDir, PolicyFileError } from '../authz/policy-files.js';
import { loadConfig } from '../config.js';
import { openMetadataStore, type MetadataStore } from '../stores/metadata.js';

export const summary = 'check policies: `policy test [tables.csv...]`, `policy explain <subject> <tenant> <resource> <action>`, `policy check`';

const USAGE = `Usage:
  npm run weir -- policy check
      Parse and validate every policy file (what boot does).
  npm run weir -- policy test [policies/expectations/*.csv ...]
      Run expectation tables (subject, roles, attributes, tenant, resource, resource_attributes,
      action, expected); exit 1 when a decision differs from the table.
  npm run weir -- policy explain <subject> <tenant> <resource> <action>
      [--roles a,b] [--attrs k=v;k=v] [--resource-attrs k=v;k=v] [--grants]
      Decide one request and print the rule that decided it. <resource> is <type>:<id> or <type>:*.
      --grants adds the grants stored in the configured metadata store (DATABASE_URL or DATA_DIR).`;

export async function run(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  const policyDir = loadConfig().auth.policyDir ?? defaultPolicyDir();
  try {
    switch (command) {
      case 'check':
        return await check(policyDir);
      case 'test':
        return await test(policyDir, rest);
      case 'explain':
        return await explain(policyDir, rest);
      default:
        console.error(USAGE);
        return command ? 2 : 0;
    }
  } catch (err) {
    if (err instanceof PolicyFileError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
}

const quiet = pino({ level: 'silent' });

async function check(policyDir: string): Promise<number> {
  await Authorizer.open({ policyDir, logger: quiet });
  console.log(`${policyDir}: the model and every policy file are valid`);
  return 0;
}

async function test(policyDir: string, files: string[]): Promise<number> {
  const tables = files.length ? files : defaultTables(policyDir);
  const authorizer = await Authorizer.open({ policyDir, logger: quiet });
  let failed = 0;
  let total = 0;
  for (const file of tables) {
    const { expectations, problems } = readExpectations(file);
    for (const p of problems) console.error(`invalid: ${p}`);
    failed += problems.length;
    for (const r of runExpectations(authorizer, expectations)) {
      total++;
      if (r.passed) continue;
      failed++;
      console.error(`FAIL ${r.where}: ${r.principal.subject} [${r.principal.roles.join('|')}] ${r.action} ${r.resource.type}:${r.resource.id ?? '*'} ` +
        `in ${r.principal.tenant}: expected ${r.expected}, got ${r.decision.allowed ? 'allow' : 'deny'} (${describeRule(r.decision)})`);
    }
  }
  console.log(`${total - failed} of ${total} expectations hold${failed ? `; ${failed} failed` : ''} (${tables.length} table${tables.length === 1 ? '' : 's'})`);
  return failed ? 1 : 0;
}

async function explain(policyDir: string, args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: { roles: { type: 'string', default: '' }, attrs: { type: 'string', default: '' }, 'resource-attrs': { type: 'string', default: '' }, grants: { type: 'boolean', default: false } },
  });
  const [subject, tenant, resource, action] = positionals;
  if (!subject || !tenant || !resource || !action) {
    console.error(USAGE);
    return 2;
  }
  let metadata: MetadataStore | undefined;
  try {
    if (values.grants) {
      const config = loadConfig();
      metadata = await openMetadataStore({ databaseUrl: config.database.url, dataDir: config.dataDir, schema: config.database.schema, logger: quiet });
    }
    const authorizer = await Authorizer.open({ policyDir, logger: quiet, grants: metadata && new GrantStore(metadata) });
    const principal = {
      subject,
      tenant,
      roles: values.roles.split(',').map((r) => r.trim()).filter(Boolean),
      scopes: [],
      attributes: parseAttributes(values.attrs),
      authMethod: 'jwt' as const,
      mfa: false,
    };
    const decision = authorizer.decide(principal, parseResource(resource, parseAttributes(values['resource-attrs'])), action);
    console.log(`${decision.allowed ? 'ALLOW' : 'DENY'}: ${describeRule(decision)}`);
    return decision.allowed ? 0 : 3;
  } finally {
    await metadata?.close();
  }
}

function defaultTables(policyDir: string): string[] {
  const dir = path.join(policyDir, 'expectations');
  return readdirSync(dir).filter((f) => f.endsWith('.csv')).sort().map((f) => path.join(dir, f));
}
