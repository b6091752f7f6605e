import { execFile } from 'node:child_process';
import { readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { Authorizer } from '../../src/authz/authorizer.js';
import { describeRule, readExpectations, runExpectations } from '../../src/authz/expectations.js';

const run = promisify(execFile);
const tables = readdirSync('policies/expectations').filter((f) => f.endsWith('.csv')).map((f) => path.join('policies/expectations', f));
const cli = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'policy', ...args], { env: { ...process.env, LOG_LEVEL: 'silent' } }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

let authorizer: Authorizer;
beforeAll(async () => {
  authorizer = await Authorizer.open({ policyDir: 'policies', logger: pino({ level: 'silent' }) });
});

// The tables security admins keep in policies/expectations run here, so CI fails when a policy edit flips a decision.
describe.each(tables)('expectation table %s', (table) => {
  const { expectations, problems } = readExpectations(table);

  it('is well formed', () => {
    expect(problems).toEqual([]);
    expect(expectations.length).toBeGreaterThan(0);
  });

  it.each(expectations.map((e) => [e.where, e] as const))('%s', (_where, e) => {
    const [result] = runExpectations(authorizer, [e]);
    expect(result!.decision.allowed ? 'allow' : 'deny', describeRule(result!.decision)).toBe(e.expected);
  });
});

describe('npm run weir -- policy', () => {
  it('test: passes on the repository tables and fails, naming the line, on a wrong expectation', async () => {
    const ok = await cli('test');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/(\d+) of \1 expectations hold/);
    const wrong = path.join(mkdtempSync(path.join(os.tmpdir(), 'weir-exp-')), 'wrong.csv');
    writeFileSync(wrong, 'subject,roles,attributes,tenant,resource,resource_attributes,action,expected\nvic, viewer, , acme, dataset:ds_1, , delete, allow\n');
    const failed = await cli('test', wrong);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/FAIL .*wrong\.csv:2: vic \[viewer\] delete dataset:ds_1 in acme: expected allow, got deny \(no rule matched/);
  }, 30_000);

  it('explain: prints the decision and the rule that made it', async () => {
    const denied = await cli('explain', 'cal', 'acme', 'dataset:ds_1', 'export', '--roles', 'analyst,contractor');
    expect(denied.code).toBe(3);
    expect(denied.stdout).toContain('DENY: role:contractor, *, dataset:*, export, true, deny');
    const allowed = await cli('explain', 'rae', 'acme', 'dataset:ds_1', 'query', '--roles', 'regional-analyst', '--attrs', 'region=eu', '--resource-attrs', 'region=eu');
    expect(allowed.code).toBe(0);
    expect(allowed.stdout).toContain('ALLOW: role:regional-analyst, *, dataset:*, query, r.sub.attrs.region == r.obj.attrs.region, allow');
  }, 30_000);
});
