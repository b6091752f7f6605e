import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Authorizer } from '../authz/authorizer.js';
import { describeRule, parseAttributes, parseResource, readExpectations, runExpectations } from '../authz/expectations.js';
import { GrantStore } from '../authz/grants.js';
import { defaultPolicyDir, PolicyFileError } from '../authz/policy-files.js';
import { loadConfig } from '../config.js';
import { openMetadataStore, type MetadataStore } from '../stores/metadata.js';
import { datasetsRepo, type DatasetRecord } from '../datasets/repository.js';
import type { Principal } from '../gateway/request-types.js';
import { explainAccess, type AccessSource } from '../query/access-view.js';
import { quoteIdent, visibleColumns } from '../query/columns.js';
import { ParamBag } from '../query/params.js';

export const summary =
  'check policies: `policy test [tables.csv...]`, `policy explain <subject> <tenant> <resource> <action>`, `policy explain-data <datasetId> --tenant t`, `policy check`';

const USAGE = `Usage:
  npm run weir -- policy check
      Parse and validate every policy file (what boot does).
  npm run weir -- policy test [policies/expectations/*.csv ...]
      Run expectation tables (subject, roles, attributes, tenant, resource, resource_attributes,
      action, expected); exit 1 when a decision differs from the table.
  npm run weir -- policy explain <subject> <tenant> <resource> <action>
      [--roles a,b] [--attrs k=v;k=v] [--resource-attrs k=v;k=v] [--grants]
      Decide one request and print the rule that decided it. <resource> is <type>:<id> or <type>:*.
      --grants adds the grants stored in the configured metadata store (DATABASE_URL or DATA_DIR).
  npm run weir -- policy explain-data <datasetId> --tenant <t> [--subject s] [--roles a,b] [--attrs k=v;k=v]
  npm run weir -- policy explain-data --columns <file.json> [--tenant <t>] [--subject s] [--roles a,b] [--attrs k=v;k=v]
      What a principal sees of a dataset, as the query path compiles it: the row rules that apply,
      the row predicate (parameterised SQL and its values) and each column: visible, hidden or
      masked (with the mask and its SQL). With a dataset id, the dataset and its grants come from the
      configured metadata store; with --columns, a JSON file of columns (a list, or a dataset
      definition with "columns") is checked against the policy files alone.`;

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
      case 'explain-data':
        return await explainDataCommand(policyDir, rest);
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

async function explainDataCommand(policyDir: string, args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      subject: { type: 'string', default: 'policy-explain' },
      roles: { type: 'string', default: '' },
      attrs: { type: 'string', default: '' },
      columns: { type: 'string' },
    },
  });
  const [datasetId] = positionals;
  if ((!datasetId && !values.columns) || (datasetId && values.columns) || (datasetId && !values.tenant)) {
    console.error(USAGE);
    return 2;
  }
  const principal: Principal = {
    subject: values.subject,
    tenant: values.tenant ?? 'default',
    roles: values.roles.split(',').map((r) => r.trim()).filter(Boolean),
    scopes: [],
    attributes: parseAttributes(values.attrs),
    authMethod: 'jwt',
    mfa: false,
  };
  let metadata: MetadataStore | undefined;
  try {
    let dataset: DatasetRecord;
    let grants: AccessSource['grants'];
    if (datasetId) {
      const config = loadConfig();
      metadata = await openMetadataStore({ databaseUrl: config.database.url, dataDir: config.dataDir, schema: config.database.schema, logger: quiet });
      const found = await datasetsRepo.find(metadata, datasetId);
      if (!found || found.tenant !== principal.tenant) {
        console.error(`There is no dataset ${datasetId} in tenant ${principal.tenant}.`);
        return 1;
      }
      dataset = found;
      grants = new GrantStore(metadata);
    } else {
      dataset = datasetFromColumnsFile(values.columns!);
      grants = { forResource: async () => ({ grants: [], updatedAt: null }) };
    }
    const authorizer = await Authorizer.open({ policyDir, logger: quiet });
    console.log(await explainData({ authorizer, grants }, principal, dataset));
    return 0;
  } finally {
    await metadata?.close();
  }
}

/** A dataset from a JSON file: a list of columns, or a dataset definition with "columns". Only the columns matter. */
export function datasetFromColumnsFile(file: string): DatasetRecord {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  const columns = Array.isArray(parsed) ? parsed : (parsed as { columns?: unknown }).columns;
  if (!Array.isArray(columns) || !columns.every((c) => typeof c?.name === 'string' && typeof c?.type === 'string')) {
    throw new Error(`${file}: expected a list of columns ({"name": ..., "type": ...}) or an object with "columns"`);
  }
  const id = (!Array.isArray(parsed) && typeof (parsed as { id?: unknown }).id === 'string' ? (parsed as { id: string }).id : undefined) ?? path.basename(file, '.json');
  return { id, columns: columns.map((c) => ({ nullable: true, ...c })) } as DatasetRecord;
}

/**
 * What `principal` sees of `dataset`, through the query path's own code (explainAccess builds the
 * view every query, export and change feed compiles; visibleColumns the masks' SQL).
 */
export async function explainData(access: AccessSource, principal: Principal, dataset: DatasetRecord): Promise<string> {
  const { view, rowRules, ruleErrors, fieldRules } = await explainAccess(access, principal, dataset);
  const out: string[] = [];
  out.push(`principal  ${principal.subject} in tenant ${principal.tenant}, roles [${principal.roles.join(', ')}], attributes ${JSON.stringify(principal.attributes)}`);
  out.push(`dataset    ${dataset.id} (${dataset.columns.length} columns)`);
  out.push('row rules  (a row is visible when any applies; no rule means no rows)');
  if (!rowRules.length) out.push('  (none)');
  for (const r of rowRules) {
    const error = ruleErrors.find((e) => e.rule === r.rule);
    out.push(`  ${r.rule}    [${r.from}]${error ? `  -- cannot apply to this dataset, allows nothing: ${error.error}` : ''}`);
  }
  if (!view.rowFilter) out.push('rows       every row (a rule is `true`)');
  else if (view.rowFilter.sql === 'false') out.push('rows       none');
  else {
    out.push(`rows       WHERE ${view.rowFilter.sql}`);
    for (const [name, value] of Object.entries(view.rowFilter.params)) out.push(`           ${name} = ${JSON.stringify(value)}`);
  }
  out.push('field rules');
  if (!fieldRules.length) out.push('  (none)');
  for (const r of fieldRules) out.push(`  ${r.rule}    [${r.from}]`);
  out.push('columns');
  const params = new ParamBag();
  const visible = visibleColumns({ table: '', columns: dataset.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable, element: c.items ?? c.values })) }, view, params);
  const width = Math.max(...dataset.columns.map((c) => c.name.length));
  for (const c of dataset.columns) {
    const mask = view.columns.get(c.name);
    const col = visible.get(c.name);
    const name = `  ${c.name.padEnd(width)}  `;
    if (!col) out.push(`${name}hidden${mask ? ` (its ${mask.mask} mask does not fit a ${c.type} column)` : ''}`);
    else if (!mask) out.push(`${name}visible`);
    else {
      const { mask: kind, ...settings } = mask;
      out.push(`${name}masked: ${kind}${Object.keys(settings).length ? ` ${JSON.stringify(settings)}` : ''}  ${col.sql} AS ${quoteIdent(c.name)}`);
    }
  }
  // Mask parameters are only the tenant's hash salt.
  if (Object.keys(params.values).length) out.push(`  (${Object.keys(params.values).join(', ')}: the tenant's hash salt)`);
  return out.join('\n');
}
