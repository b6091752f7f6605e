import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import spec from '../../generated/openapi.json' with { type: 'json' };
import { Authorizer } from '../../src/authz/authorizer.js';
import { splitCsvLine } from '../../src/authz/csv.js';
import { parseExpression } from '../../src/authz/expression.js';
import { loadPolicyFiles, PolicyFileError } from '../../src/authz/policy-files.js';
import { conditionError, fieldRulesError, rowRuleError } from '../../src/authz/rules.js';
import { newApiKey, parseApiKey } from '../../src/identity/api-key-format.js';

const schemas = (spec as any).components.schemas;

describe('API key format', () => {
  it('makes keys the spec describes, whose parts parse back', () => {
    const secretPattern = new RegExp(schemas.ApiKeyCreated.allOf[1].properties.secret.pattern);
    for (let i = 0; i < 50; i++) {
      const { key, parsed } = newApiKey('live');
      expect(key).toMatch(secretPattern);
      expect(parseApiKey(key)).toEqual(parsed);
      expect(parsed.keyId).toMatch(new RegExp(schemas.ApiKey.properties.key_id.pattern));
      expect(parsed.prefix).toMatch(new RegExp(schemas.ApiKey.properties.prefix.pattern));
      expect(key.startsWith(`${parsed.prefix}_`)).toBe(true);
    }
    expect(newApiKey('test').key).toMatch(/^weir_test_/);
  });

  it('refuses a key with any one character changed, truncated, or extended, by its checksum', () => {
    const { key } = newApiKey('live');
    for (let i = 10; i < key.length; i++) {
      if (key[i] === '_') continue;
      const typo = key.slice(0, i) + (key[i] === 'a' ? 'b' : 'a') + key.slice(i + 1);
      expect(parseApiKey(typo), `typo at ${i}`).toBeUndefined();
    }
    expect(parseApiKey(key.slice(0, -1))).toBeUndefined();
    expect(parseApiKey(`${key}x`)).toBeUndefined();
    expect(parseApiKey(key.replace('weir_live_', 'weir_prod_'))).toBeUndefined();
    expect(parseApiKey('x'.repeat(10_000))).toBeUndefined();
  });
});

describe('the rule expression language', () => {
  it('parses comparisons, lists, negation and precedence', () => {
    expect(parseExpression("a == 1 || !(b in ['x', \"y\"]) && c <= -2.5")).toMatchObject({ kind: 'binary', op: '||' });
    expect(parseExpression('principal.region == region')).toMatchObject({ kind: 'binary', op: '==' });
  });

  it.each([
    ['a ==', /found the end/],
    ['a = 1', /unexpected character "="/],
    ['(a == 1', /expected "\)"/],
    ["a == 'open", /unterminated string/],
    ['f(a)', /expected an operator or the end/],
    ['a[0] == 1', /expected an operator or the end/],
    ['r.sub.constructor == 1', /"constructor" is not allowed/],
  ])('refuses %s', (text, message) => {
    expect(() => parseExpression(text)).toThrow(message);
  });

  it('checks what conditions and row rules may name', () => {
    expect(conditionError('r.sub.attrs.region == r.obj.attrs.region && r.env.now < 5')).toBeUndefined();
    expect(conditionError('process.exit == 1')).toMatch(/unknown name process.exit/);
    expect(conditionError('r.sub.attrs == 1')).toMatch(/unknown name/);
    expect(rowRuleError('region == principal.region && amount < 1000')).toBeUndefined();
    expect(rowRuleError('a.b == 1')).toMatch(/unknown name a.b/);
    expect(rowRuleError('region ==')).toMatch(/does not parse/);
    expect(fieldRulesError({ deny: ['ip'], masks: [{ column: 'email', mask: 'hash' }, { column: 'n', mask: 'last_n', n: 4 }] })).toBeUndefined();
    expect(fieldRulesError({ masks: [{ column: 'email', mask: 'rot13' }] })).toMatch(/invalid/);
    expect(fieldRulesError({ masks: [{ column: 'a', mask: 'hash' }, { column: 'a', mask: 'null' }] })).toMatch(/twice/);
    expect(fieldRulesError({ allow: ['a'], extra: true })).toMatch(/invalid/);
  });
});

describe('policy files', () => {
  it('splits CSV lines with quoted fields', () => {
    expect(splitCsvLine('p, role:a, *, "x, y", "say ""hi"""')).toEqual(['p', 'role:a', '*', 'x, y', 'say "hi"']);
    expect(() => splitCsvLine('p, "open')).toThrow(/unterminated/);
  });

  it("the repository's policies load", () => {
    const set = loadPolicyFiles(path.resolve('policies'));
    expect(set.rules.length).toBeGreaterThan(10);
    expect(set.rules.filter(([t]) => t === 'p2' || t === 'p3').length).toBeGreaterThan(0);
  });

  it('a policy file that does not parse fails the load with its file and line, for every problem', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weir-policies-'));
    cpSync('policies/model.conf', path.join(dir, 'model.conf'));
    writeFileSync(
      path.join(dir, 'bad.csv'),
      [
        '# a comment',
        'p, role:a, *, dataset:*, read',
        'p, role:a, *, dataset:*, read, r.sub.attrs.region ==',
        'p, role:a, *, datasets:*, read',
        'p, alice, *, dataset:*, read',
        'p, role:a, *, dataset:*, fly',
        'p, role:a, *, dataset:*, read, true, maybe',
        'g, role:a, role:b',
        'p2, role:a, *, dataset:*, "region === 1"',
        'p3, role:a, *, dataset:*, "{""masks"": [{""column"": ""x"", ""mask"": ""nope""}]}"',
        'q, x',
        'p, "unterminated',
      ].join('\n'),
    );
    const error = (() => {
      try {
        loadPolicyFiles(dir);
      } catch (err) {
        return err as PolicyFileError;
      }
      throw new Error('expected the load to fail');
    })();
    expect(error).toBeInstanceOf(PolicyFileError);
    // Outside the working directory, the file is named by its absolute path.
    const file = path.join(dir, 'bad.csv');
    expect(error.problems.map((p) => p.split(': ')[0])).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((n) => `${file}:${n}`));
    expect(error.message).toMatch(/bad\.csv:3: condition does not parse/);
    expect(error.message).toMatch(/bad\.csv:4: unknown resource type "datasets"/);
    await expect(Authorizer.open({ policyDir: dir, logger: pino({ level: 'silent' }) })).rejects.toThrow(/bad\.csv:6: unknown action "fly"/);
  });
});
