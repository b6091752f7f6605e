import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Authorizer } from '../../src/authz/authorizer.js';
import type { Grant } from '../../src/authz/grants.js';
import { defaultPolicyDir } from '../../src/authz/policy-files.js';
import { explainData, run } from '../../src/cli/policy.js';
import type { DatasetRecord } from '../../src/datasets/repository.js';
import type { Principal } from '../../src/gateway/request-types.js';
import { accessViewFor, type AccessSource } from '../../src/query/access-view.js';
import { compileQuery } from '../../src/query/compile.js';

/**
 * `policy explain-data`: security admins see the row predicate and column masks a principal gets,
 * from the policy files (policies/data-rules.csv) and the dataset's grants, through the same code
 * the query path uses.
 */
const columns = [
  { name: 'event_time', type: 'timestamp', nullable: false },
  { name: 'region', type: 'string', nullable: false },
  { name: 'email', type: 'string', nullable: true },
  { name: 'user_id', type: 'string', nullable: true },
  { name: 'card', type: 'string', nullable: true },
  { name: 'amount', type: 'float', nullable: true },
] as DatasetRecord['columns'];
const dataset = { id: 'ds_payments', tenant: 'acme', columns } as DatasetRecord;

const grant: Grant = {
  id: 'grt_1',
  tenant: 'acme',
  resourceType: 'dataset',
  resourceId: 'ds_payments',
  principal: { type: 'subject', id: 'rita' },
  actions: ['read', 'query'],
  rowRule: 'region == principal.region && amount < 1000',
  fieldRules: { deny: ['email'], masks: [{ column: 'card', mask: 'last_n', n: 4 }] },
  expiresAt: null,
  createdAt: new Date(),
  createdBy: 'alice',
};

const principal = (subject: string, roles: string[], attributes: Principal['attributes'] = {}): Principal => ({
  subject,
  tenant: 'acme',
  roles,
  scopes: [],
  attributes,
  authMethod: 'jwt',
  mfa: false,
});
const rita = principal('rita', ['viewer'], { region: 'eu' });
const carl = principal('carl', ['analyst', 'contractor']);

let access: AccessSource;
let dir: string;
beforeAll(async () => {
  const authorizer = await Authorizer.open({ policyDir: defaultPolicyDir(), logger: pino({ level: 'silent' }) });
  access = { authorizer, grants: { forResource: async (_t, _type, id) => ({ grants: id === dataset.id ? [grant] : [], updatedAt: null }) } };
  dir = mkdtempSync(path.join(os.tmpdir(), 'weir-explain-data-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const line = (text: string, start: string) => text.split('\n').map((l) => l.trim()).find((l) => l.startsWith(start));

describe('policy explain-data', () => {
  it('shows rita (a grant) her region predicate with its values, email hidden and card masked', async () => {
    const text = await explainData(access, rita, dataset);
    expect(line(text, 'region == principal.region')).toContain('grant grt_1 to subject rita');
    expect(line(text, 'rows')).toBe('rows       WHERE (((`region` = {rr0:String} AND `amount` < {rr1:Float64})))');
    expect(line(text, 'rr0')).toBe('rr0 = "eu"');
    expect(line(text, 'rr1')).toBe('rr1 = 1000');
    expect(line(text, 'email')).toMatch(/email\s+hidden$/);
    expect(line(text, 'card')).toMatch(/card\s+masked: last_n \{"n":4\}\s+if\(isNull\(`card`\)/);
    expect(line(text, 'user_id')).toMatch(/user_id\s+visible$/);
  });

  it('shows carl (analyst + contractor, from the policy files) every row, email hidden and user_id hashed', async () => {
    const text = await explainData(access, carl, dataset);
    expect(line(text, 'true')).toContain('policy: p2, role:analyst, *, dataset:*');
    expect(line(text, 'rows')).toBe('rows       every row (a rule is `true`)');
    expect(line(text, '{"deny"')).toContain('policy: p3, role:contractor');
    expect(line(text, 'email')).toMatch(/email\s+hidden$/);
    expect(line(text, 'user_id')).toMatch(/user_id\s+masked: hash\s+lower\(hex\(SHA256/);
    expect(line(text, 'card')).toMatch(/card\s+visible$/);
  });

  it('prints the predicate the query compiler puts in the WHERE', async () => {
    const view = await accessViewFor(access, rita, dataset);
    const compiled = compileQuery({ select: ['region'] }, { table: '`t`', columns: columns.map((c) => ({ ...c })) }, view);
    const printed = line(await explainData(access, rita, dataset), 'rows')!.replace(/^rows\s+WHERE /, '');
    // The compiler wraps the row predicate in parentheses and ANDs the caller's own filters to it.
    expect(compiled.sql).toContain(` WHERE (${printed}) ORDER BY`);
    expect(compiled.params).toMatchObject({ rr0: 'eu', rr1: 1000 });
  });

  it('a principal no rule applies to sees no rows', async () => {
    const text = await explainData(access, principal('vic', ['viewer']), dataset);
    expect(line(text, 'rows')).toBe('rows       none');
  });

  it('runs from the CLI against a columns file and the policy files', async () => {
    const file = path.join(dir, 'payments.json');
    writeFileSync(file, JSON.stringify({ id: 'ds_file', columns }));
    const printed: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void printed.push(args.join(' ')));
    try {
      expect(await run(['explain-data', '--columns', file, '--tenant', 'acme', '--roles', 'regional-analyst', '--attrs', 'region=us'])).toBe(0);
    } finally {
      log.mockRestore();
    }
    const text = printed.join('\n');
    expect(line(text, 'dataset')).toBe('dataset    ds_file (6 columns)');
    expect(line(text, 'rows')).toBe('rows       WHERE ((`region` = {rr0:String}))');
    expect(line(text, 'rr0')).toBe('rr0 = "us"');
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(await run(['explain-data', 'ds_x'])).toBe(2); // a dataset id needs --tenant
    } finally {
      error.mockRestore();
    }
  });
});
