import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { frameHeader, readFrames } from '../../src/analytics/hit-journal-frame.js';
import { newInstanceName, parseInstanceName } from '../../src/analytics/hit-journal-owner.js';
import { HitJournal, openJournalFile, type OpenJournalFile } from '../../src/analytics/hit-journal.js';

const logger = pino({ level: 'silent' });
const dirs: string[] = [];
const tempRoot = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'weir-hit-journal-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const rowsText = (...ids: string[]) => Buffer.from(ids.map((id) => `{"kind":0,"website_id":"${id}","page":"/${id}"}\n`).join(''));
const frame = (data: Buffer) => Buffer.concat([frameHeader([data]), data]);
const walFiles = (dir: string) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.wal')).sort();
/** A pid no process has (one that just exited). */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid!;

describe('journal frames', () => {
  it('reads whole frames back and counts their rows', () => {
    const a = rowsText('a', 'b');
    const b = rowsText('c');
    const read = readFrames(Buffer.concat([frame(a), frame(b)]));
    expect(read.payloads.map(String)).toEqual([String(a), String(b)]);
    expect(read.rows).toBe(3);
    expect(read.tornBytes).toBe(0);
  });

  it('drops a torn last frame wherever it was cut, and a frame whose bytes do not match its CRC', () => {
    const whole = frame(rowsText('a'));
    const last = frame(rowsText('b', 'c'));
    for (let cut = 1; cut < last.length; cut++) {
      const read = readFrames(Buffer.concat([whole, last.subarray(0, cut)]));
      expect(read.rows, `cut at ${cut}`).toBe(1);
      expect(read.validBytes).toBe(whole.length);
      expect(read.tornBytes).toBe(cut);
    }
    const corrupt = Buffer.from(last);
    corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 3) ^ 0x20, corrupt.length - 3);
    expect(readFrames(Buffer.concat([whole, corrupt])).rows).toBe(1);
    // A tail of zeros (a file extended but never written) is torn too.
    expect(readFrames(Buffer.concat([whole, Buffer.alloc(64)])).rows).toBe(1);
  });
});

describe('HitJournal', () => {
  it('group-commits concurrent appends into one write and answers each only after its fdatasync', async () => {
    const syncs: Array<() => void> = [];
    let writes = 0;
    // datasync waits until the test lets it finish.
    const gated: OpenJournalFile = async (file) => {
      const real = await openJournalFile(file);
      return { ...real, append: (d, o) => (writes++, real.append(d, o)), datasync: () => new Promise<void>((resolve) => syncs.push(() => void real.datasync().then(resolve))) };
    };
    const journal = await HitJournal.open({ root: tempRoot(), logger, openFile: gated });
    const settled: string[] = [];
    const first = journal.append(rowsText('a'), 1, ['a']).then(() => settled.push('a'));
    await until(() => syncs.length === 1);
    // While the first write waits for the disk, three more requests queue for the next one.
    const rest = ['b', 'c', 'd'].map((id) => journal.append(rowsText(id), 1, [id]).then(() => settled.push(id)));
    await new Promise((r) => setImmediate(r));
    expect(settled).toEqual([]);
    syncs.shift()!();
    await first;
    expect(settled).toEqual(['a']);
    await until(() => syncs.length === 1);
    expect(writes).toBe(2);
    expect(settled).toEqual(['a']);
    syncs.shift()!();
    await Promise.all(rest);
    expect(settled.sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(writes).toBe(2);
    expect(journal.unshippedRows).toBe(4);
    const [file] = walFiles(journal.dir);
    expect(readFrames(readFileSync(path.join(journal.dir, file!))).payloads).toHaveLength(2);
  });

  it('refuses the rows of a failed write, cuts them from the segment and goes on in a new one', async () => {
    let fail = false;
    const faulty: OpenJournalFile = async (file) => {
      const real = await openJournalFile(file);
      // A short write, as when the disk fills up mid-write, then the error.
      return { ...real, append: (d, o) => (fail ? real.append(d.subarray(0, o + 10), o).then(() => Promise.reject(Object.assign(new Error('no space'), { code: 'ENOSPC' }))) : real.append(d, o)) };
    };
    const journal = await HitJournal.open({ root: tempRoot(), logger, openFile: faulty });
    await journal.append(rowsText('kept'), 1, ['kept']);
    fail = true;
    await expect(journal.append(rowsText('refused'), 1, ['refused'])).rejects.toThrow(/no space/);
    fail = false;
    await journal.append(rowsText('later'), 1, ['later']);
    expect(journal.unshippedRows).toBe(2);
    const files = walFiles(journal.dir);
    expect(files).toHaveLength(2);
    const text = files.map((f) => readFrames(readFileSync(path.join(journal.dir, f))).payloads.join('')).join('');
    expect(text).toBe(String(rowsText('kept', 'later')));
    for (const f of files) expect(readFrames(readFileSync(path.join(journal.dir, f))).tornBytes).toBe(0);
  });

  it('adopts the directory of an exited process (torn tail dropped) or of a silent one elsewhere, never one of a live process', async () => {
    const root = tempRoot();
    const me = parseInstanceName(newInstanceName())!;
    const dead = `${me.host}~${me.scope}~${deadPid()}~0~0123456789ab`;
    mkdirSync(path.join(root, dead));
    writeFileSync(path.join(root, dead, '000000000001.wal'), Buffer.concat([frame(rowsText('x', 'y')), frame(rowsText('z')).subarray(0, 12)]));
    writeFileSync(path.join(root, dead, '000000000002.wal'), frame(rowsText('w')));
    // Another gateway of this very process: alive.
    const live = newInstanceName();
    mkdirSync(path.join(root, live));
    writeFileSync(path.join(root, live, '000000000001.wal'), frame(rowsText('mine')));

    // Processes of another host (or container): judged by their heartbeat, the directory's mtime.
    const elsewhere = (rand: string) => `other-host~00c0ffee~1~1~${rand}`;
    for (const [rand, ageS] of [['aaaaaaaaaaaa', 5], ['bbbbbbbbbbbb', 600]] as const) {
      mkdirSync(path.join(root, elsewhere(rand)));
      writeFileSync(path.join(root, elsewhere(rand), '000000000001.wal'), frame(rowsText(rand)));
      const t = new Date(Date.now() - ageS * 1000);
      utimesSync(path.join(root, elsewhere(rand)), t, t);
    }

    const journal = await HitJournal.open({ root, logger });
    expect(await journal.adoptOrphans()).toBe(4);
    expect(readdirSync(root).sort()).toEqual([journal.name, live, elsewhere('aaaaaaaaaaaa')].sort());
    // Marked adopted, so the shipper checks them after shipping; this journal's own rows are not.
    await journal.append(rowsText('own'), 1, ['own']);
    await journal.seal();
    expect(journal.adoptedSealed().map((s) => s.token).sort()).toEqual([`${dead}/000000000001`, `${dead}/000000000002`, `${elsewhere('bbbbbbbbbbbb')}/000000000001`].sort());
    const adopted: Array<{ token: string; rows: number; websiteIds: string[] }> = [];
    for (let seg = journal.nextSealed(); seg; seg = journal.nextSealed()) {
      if (seg.adopted) adopted.push({ token: seg.token, rows: seg.rows, websiteIds: [...seg.websiteIds].sort() });
      await journal.remove(seg);
    }
    // A directory's segments in order; the torn frame (z) dropped.
    expect(adopted.filter((a) => a.token.startsWith(dead))).toEqual([
      { token: `${dead}/000000000001`, rows: 2, websiteIds: ['x', 'y'] },
      { token: `${dead}/000000000002`, rows: 1, websiteIds: ['w'] },
    ]);
    expect(adopted.filter((a) => !a.token.startsWith(dead))).toEqual([{ token: `${elsewhere('bbbbbbbbbbbb')}/000000000001`, rows: 1, websiteIds: ['bbbbbbbbbbbb'] }]);
    expect(journal.nextSealed()).toBeUndefined();
    // The adopted directory goes once shipped.
    expect(readdirSync(journal.dir)).toEqual([]);
    expect(await journal.adoptOrphans()).toBe(0);
  });
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 1));
}
