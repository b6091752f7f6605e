import { describe, expect, it } from 'vitest';
import { KeyedMutex } from '../../src/datasets/locks.js';
import { normaliseColumn, type ColumnInput } from '../../src/datasets/schema.js';
import { BLANK, SLOW, SLOW_DUPLICATE } from '../../src/ingest/fast-row-check.js';
import { IngestRun } from '../../src/ingest/ingest-run.js';
import { compileValidator } from '../../src/ingest/row-validator.js';

const columns = (
  [
    { name: 'ts', type: 'timestamp', nullable: false },
    { name: 'day', type: 'date' },
    { name: 'region', type: 'string', nullable: false, max_length: 8 },
    { name: 'label', type: 'string', default: 'none' },
    { name: 'amount', type: 'float' },
    { name: 'n', type: 'int' },
    { name: 'ok', type: 'bool' },
    { name: 'tags', type: 'array', items: 'string' },
  ] as ColumnInput[]
).map(normaliseColumn);
const validator = compileValidator(columns);
const fast = validator.fast!;
const check = (text: string) => {
  const b = Buffer.from(text);
  return fast.check(b, 0, b.length);
};
/** What the full validator says: 'as-sent', 'normalised' or 'refused' ('malformed' when not JSON). */
const full = (text: string) => {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'malformed';
  }
  const o = validator.validate(v);
  return !o.ok ? 'refused' : o.row ? 'normalised' : 'as-sent';
};

const canonical = [
  '{"ts":"2026-01-08T10:30:05.123Z","region":"eu","label":"x"}',
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":null,"amount":-0.5,"n":-42,"ok":true}',
  '{ "ts" : "2026-01-08 10:30" , "region":"","label":"a\\"b\\\\c\\u00e9", "n":0, "ok":false, "day":"2024-02-29" }',
  '{"label":"y","region":"日本","ts":"2026-01-08T10:30:05.123456789z","amount":12345.678,"tags":null}\r',
  '{"ts":"1900-01-01T00:00:00Z","region":"12345678","label":"z","n":999999999999999}',
];

const refusedOrNormalised = [
  '{"ts":"2026-01-08T10:30:05+02:00","region":"eu","label":"x"}', // offset: normalised
  '{"ts":1767868205123,"region":"eu","label":"x"}', // epoch ms: normalised
  '{"ts":"2026-01-08T10:30:05Z","region":"eu"}', // defaulted column missing: filled
  '{"ts":"2026-02-30T10:30:05Z","region":"eu","label":"x"}',
  '{"ts":"2026-01-08T24:00:00Z","region":"eu","label":"x"}',
  '{"ts":"1899-12-31T23:59:59Z","region":"eu","label":"x"}',
  '{"ts":"2026-01-08T10:30:05Z","region":"123456789","label":"x"}', // over max_length
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x","n":9007199254740993}',
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x","n":1.5}',
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x","amount":1e999}',
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x","amount":"1"}',
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x","ok":1}',
  '{"ts":"2026-01-08T10:30:05Z","region":null,"label":"x"}',
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x","other":1}',
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x","day":"2023-02-29"}',
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x",}',
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x"} {}',
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x"',
  '{"ts":"2026-01-08T10:30:05Z","region":"e\u0001","label":"x"}',
  '{"ts":"2026-01-08T10:30:05Z","region":"\\x41","label":"x"}',
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x","n":01}',
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x","n":-}',
  '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x","ok":tru}',
  '["ts"]',
  '"x"',
  '{}',
];

describe('fast row check', () => {
  it('forwards canonical valid rows as sent, exactly where the full validator accepts them unchanged', () => {
    for (const text of canonical) {
      expect(full(text), text).toBe('as-sent');
      const close = check(text);
      expect(close, text).toBe(Buffer.from(text).lastIndexOf('}'));
    }
  });

  it('hands every other row to the full validator', () => {
    for (const text of refusedOrNormalised) {
      expect(full(text), text).not.toBe('as-sent');
      expect(check(text), text).toBe(SLOW);
    }
  });

  it('never says valid for a row the full validator would refuse or change (mutated rows)', () => {
    // Every one-byte deletion and a few substitutions of each canonical row.
    const subs = ['"', '\\', '{', '}', ',', ':', '0', '9', 'e', '.', '-', ' ', '\u00ff', 'Z', 'T', 'n', 'x', '\u0000'];
    let forwarded = 0;
    for (const text of canonical) {
      const b = Buffer.from(text);
      for (let i = 0; i < b.length; i++) {
        const variants = [Buffer.concat([b.subarray(0, i), b.subarray(i + 1)])];
        for (const s of subs) variants.push(Buffer.concat([b.subarray(0, i), Buffer.from(s), b.subarray(i + 1)]));
        for (const v of variants) {
          const verdict = fast.check(v, 0, v.length);
          const asText = v.toString('utf8');
          if (verdict >= 0) {
            forwarded++;
            expect(full(asText), asText).toBe('as-sent');
            expect(v.toString('latin1').trimEnd().endsWith('}') && verdict === v.lastIndexOf(0x7d)).toBe(true);
          }
          if (verdict === BLANK) expect(asText.trim()).toBe('');
        }
      }
    }
    // Most mutations inside string values keep the row valid: the fast path did take some.
    expect(forwarded).toBeGreaterThan(100);
  });

  it('leaves array columns and exponents to the full validator', () => {
    for (const text of ['{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x","tags":["a"]}', '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x","n":1e3}']) {
      expect(full(text)).toBe('as-sent');
      expect(check(text)).toBe(SLOW);
    }
  });

  it('sends rows with a repeated column to be re-serialised, blank lines as blank', () => {
    expect(check('{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x","region":"us"}')).toBe(SLOW_DUPLICATE);
    expect(check('  \r')).toBe(BLANK);
  });

  it('reads only its own bytes of a larger buffer', () => {
    const row = '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x"}';
    const b = Buffer.from(`${row}\n${row}`);
    expect(fast.check(b, 0, row.length)).toBe(row.length - 1);
    // Cut short, the row must not be completed from the next line's bytes.
    expect(fast.check(b, 0, row.length - 1)).toBe(SLOW);
    expect(fast.check(b, 0, 1)).toBe(SLOW);
  });
});

describe('ingest run (bytes in, JSONEachRow blocks out)', () => {
  const dataset = { record: { id: 'ds_test', columns }, generation: 'g1', validator };
  const rows = [
    '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"x"}', // as sent
    '', // blank, counted
    '{"ts":"2026-01-08T10:30:05+02:00","region":"eu","label":"y"}', // normalised
    '{"ts":"2026-01-08T10:30:05Z","region":"eu"}', // default filled
    '{"ts":"2026-01-08T10:30:05Z","region":"eu","label":"z","label":"w"}', // duplicate: last wins
    '{"ts":"nope","region":"eu","label":"x"}', // quarantined
    '{not json', // quarantined
    '{"ts":"2026-01-08T10:30:05Z","region":"日本","label":"é"}\r', // CRLF, UTF-8
  ];
  const body = Buffer.from(rows.join('\n'));

  async function ingest(pieces: Buffer[], chunkBytes = 1024 * 1024) {
    const blocks: Buffer[] = [];
    const quarantined: { line: number; raw: string }[] = [];
    const committer = { submit: async (_id: string, _gen: string, data: Buffer) => void blocks.push(Buffer.from(data)) };
    const metadata = {
      query: async (_sql: string, params: unknown[]) => {
        const [, , lines, , , raws] = params as [string, string, number[], unknown, unknown, string[]];
        lines.forEach((line, i) => quarantined.push({ line, raw: raws[i]! }));
        return { rows: [], rowCount: lines.length };
      },
    };
    const run = new IngestRun(dataset as never, committer as never, metadata as never, 'req_1', chunkBytes, 4096);
    for (const p of pieces) await run.addNdjson(p);
    run.endNdjson();
    await run.finish();
    const out = Buffer.concat(blocks).toString('utf8');
    return { run, out, quarantined };
  }

  it('writes each good row once with its request id, quarantines the rest with line numbers, at any split of the body', async () => {
    const whole = await ingest([body]);
    expect(whole.run.accepted).toBe(5);
    expect(whole.run.quarantined).toBe(2);
    expect(whole.quarantined.map((q) => q.line)).toEqual([6, 7]);
    expect(whole.quarantined[1]!.raw).toBe('{not json');
    const lines = whole.out.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { ts: '2026-01-08T10:30:05Z', region: 'eu', label: 'x', _request_id: 'req_1' },
      { ts: '2026-01-08T08:30:05.000Z', region: 'eu', label: 'y', _request_id: 'req_1' },
      { ts: '2026-01-08T10:30:05Z', region: 'eu', label: 'none', _request_id: 'req_1' },
      { ts: '2026-01-08T10:30:05Z', region: 'eu', label: 'w', _request_id: 'req_1' },
      { ts: '2026-01-08T10:30:05Z', region: '日本', label: 'é', _request_id: 'req_1' },
    ]);
    // The repeated key is gone from what the warehouse gets.
    expect(lines[3]!.match(/"label"/g)).toHaveLength(1);
    for (let cut = 1; cut < body.length; cut += 7) {
      const split = await ingest([body.subarray(0, cut), body.subarray(cut, cut + 5), body.subarray(cut + 5)]);
      expect(split.out, `cut at ${cut}`).toBe(whole.out);
      expect(split.quarantined, `cut at ${cut}`).toEqual(whole.quarantined);
    }
  });

  it('hands over blocks of about chunkBytes, and answers 413 for a line over the row limit', async () => {
    const many = Buffer.from(`${Array.from({ length: 200 }, () => rows[0]).join('\n')}\n`);
    const small = await ingest([many], 1000);
    expect(small.run.accepted).toBe(200);
    expect(small.out.split('\n').length - 1).toBe(200);
    await expect(ingest([Buffer.from(`${rows[0]}\n{"region":"${'x'.repeat(5000)}"}\n`)])).rejects.toMatchObject({ status: 413 });
    await expect(ingest([Buffer.from(`${rows[0]}\n{"region":"${'x'.repeat(3000)}`), Buffer.from(`${'x'.repeat(3000)}"}`)])).rejects.toMatchObject({ status: 413 });
  });
});

describe('dataset table lock', () => {
  const tick = () => new Promise((r) => setTimeout(r, 5));

  it('lets flushes overlap, and keeps schema changes apart from them in arrival order', async () => {
    const lock = new KeyedMutex();
    const log: string[] = [];
    const job = (name: string) => async () => {
      log.push(`${name}+`);
      await tick();
      log.push(`${name}-`);
    };
    await Promise.all([
      lock.runShared('t', job('a')),
      lock.runShared('t', job('b')),
      lock.run('t', job('X')),
      lock.runShared('t', job('c')),
      lock.run('t', job('Y')),
      lock.runShared('other', job('o')),
    ]);
    const at = (e: string) => log.indexOf(e);
    // a and b overlap; X starts after both end; c after X ends; Y after c ends.
    expect(at('b+')).toBeLessThan(at('a-'));
    expect(at('X+')).toBeGreaterThan(Math.max(at('a-'), at('b-')));
    expect(at('c+')).toBeGreaterThan(at('X-'));
    expect(at('Y+')).toBeGreaterThan(at('c-'));
    // Another key is not held up.
    expect(at('o+')).toBeLessThan(at('X+'));
  });
});
