import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { frameHeader, readFrames } from './hit-journal-frame.js';
import { newInstanceName, ownerGone, parseInstanceName } from './hit-journal-owner.js';

/** The file operations the journal needs for one segment (tests inject failures). */
export interface JournalFile {
  /** Appends bytes from `offset` of `data`; returns how many were written. */
  append(data: Buffer, offset: number): Promise<number>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}
export type OpenJournalFile = (file: string) => Promise<JournalFile>;

export const openJournalFile: OpenJournalFile = async (file) => {
  const fh = await open(file, 'a');
  return {
    append: async (data, offset) => (await fh.write(data, offset)).bytesWritten,
    datasync: () => fh.datasync(),
    truncate: (length) => fh.truncate(length),
    close: () => fh.close(),
  };
};

/** A segment file: written by this journal, or left by a process that died (adopted). */
export interface Segment {
  path: string;
  /** Unique to this segment whoever ships it: the insert's deduplication token. */
  token: string;
  rows: number;
  bytes: number;
  websiteIds: Set<string>;
  /** When its first row was written (ms), for time-based shipping. */
  since: number;
  /** Left by a process that exited: it may have been shipped in part, so it is checked after shipping (journal-repair.ts). */
  adopted?: boolean;
}

interface Append {
  data: Buffer;
  rows: number;
  websiteIds: Iterable<string>;
  resolve(segment: Segment): void;
  reject(err: unknown): void;
}

// A write larger than this waits for the next one (any single request's rows still go whole).
const MAX_WRITE_BYTES = 16 << 20;
const SEGMENT_RE = /^(\d{12})\.wal$/;

export interface HitJournalOptions {
  /** The directory holding every process's journal directory. */
  root: string;
  logger: Logger;
  openFile?: OpenJournalFile;
  now?: () => number;
}

/**
 * A local write-ahead log of hit rows, so hits can be acknowledged before their (slow, batched)
 * ClickHouse insert. Appends from concurrent requests are group-committed: one write and one
 * fdatasync for everything queued while the previous write ran, and each append resolves only
 * once its bytes are on disk. Rows go to the active segment; the shipper seals it (new appends
 * start the next segment), ships sealed segments in order and removes them.
 *
 * Each process instance writes its own directory under `root` (see hit-journal-owner.ts); the
 * directories of processes that died are adopted and their segments shipped like sealed ones.
 */
export class HitJournal {
  readonly dir: string;
  readonly name: string;
  readonly #o: HitJournalOptions;
  readonly #openFile: OpenJournalFile;
  readonly #now: () => number;
  #active?: { segment: Segment; file: JournalFile };
  readonly #sealed: Segment[] = [];
  #pending: Append[] = [];
  #pendingRows = 0;
  #unshippedRows = 0;
  #nextSeq = 1;
  /** Writes, seals and closes run one at a time, in order. */
  #lock: Promise<unknown> = Promise.resolve();
  #writeQueued = false;
  /** Told after each write reaches the disk. */
  onWritten?: () => void;

  private constructor(options: HitJournalOptions, name: string) {
    this.#o = options;
    this.#openFile = options.openFile ?? openJournalFile;
    this.#now = options.now ?? Date.now;
    this.name = name;
    this.dir = path.join(options.root, name);
  }

  static async open(options: HitJournalOptions): Promise<HitJournal> {
    const journal = new HitJournal(options, newInstanceName());
    await mkdir(options.root, { recursive: true });
    await mkdir(journal.dir);
    await syncDir(options.root);
    return journal;
  }

  /** Rows handed to append and not yet on disk. */
  get pendingRows(): number {
    return this.#pendingRows;
  }

  /** Rows on disk not yet shipped (and removed). */
  get unshippedRows(): number {
    return this.#unshippedRows;
  }

  /** The active segment's rows and when its first row was written. */
  get active(): { rows: number; since: number } | undefined {
    return this.#active && this.#active.segment.rows > 0 ? { rows: this.#active.segment.rows, since: this.#active.segment.since } : undefined;
  }

  /** Whether the segment is still here (not yet shipped). */
  holds(segment: Segment): boolean {
    return this.#active?.segment === segment || this.#sealed.includes(segment);
  }

  /** The oldest sealed segment, not yet shipped. */
  nextSealed(): Segment | undefined {
    return this.#sealed[0];
  }

  /** The sealed segments adopted from exited processes, in order. */
  adoptedSealed(): Segment[] {
    return this.#sealed.filter((s) => s.adopted);
  }

  /**
   * Appends rows (JSONEachRow lines); resolves with their segment once they are on disk, rejects
   * when they could not be written (then nothing of them is in the journal).
   */
  append(data: Buffer, rows: number, websiteIds: Iterable<string>): Promise<Segment> {
    return new Promise<Segment>((resolve, reject) => {
      this.#pending.push({ data, rows, websiteIds, resolve, reject });
      this.#pendingRows += rows;
      if (!this.#writeQueued) {
        this.#writeQueued = true;
        void this.#serial(() => this.#writeGroup());
      }
    });
  }

  /** Closes the active segment, if it holds rows, for shipping; later appends start a new one. */
  seal(): Promise<void> {
    return this.#serial(async () => {
      const active = this.#active;
      if (!active || active.segment.rows === 0) return;
      this.#active = undefined;
      this.#sealed.push(active.segment);
      await active.file.close().catch((err: unknown) => this.#o.logger.warn({ err, file: active.segment.path }, 'analytics journal: closing a segment failed'));
    });
  }

  /** Deletes a shipped segment (the oldest sealed one). */
  async remove(segment: Segment): Promise<void> {
    const i = this.#sealed.indexOf(segment);
    if (i >= 0) this.#sealed.splice(i, 1);
    this.#unshippedRows -= segment.rows;
    await unlink(segment.path).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    });
    // An adopted directory goes once empty (and so on up to ours).
    for (let dir = path.dirname(segment.path); dir !== this.dir && dir.startsWith(this.dir); dir = path.dirname(dir)) {
      if (!(await rmdir(dir).then(() => true, () => false))) break;
    }
  }

  /**
   * Takes over the journal directories of processes that have exited (crashed, or closed while
   * the warehouse was unreachable): their segments are shipped next. Returns how many rows.
   */
  async adoptOrphans(): Promise<number> {
    let rows = 0;
    for (const entry of await readdir(this.#o.root, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === this.name) continue;
      const owner = parseInstanceName(entry.name);
      if (!owner) continue;
      const touched = await stat(path.join(this.#o.root, entry.name)).then((s) => s.mtimeMs, () => undefined);
      if (touched === undefined || !ownerGone(owner, Date.now() - touched)) continue;
      const target = path.join(this.dir, entry.name);
      try {
        await rename(path.join(this.#o.root, entry.name), target);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTEMPTY' || code === 'EEXIST') continue; // another process took it first
        throw err;
      }
      const found = await this.#load(target);
      this.#o.logger.info({ dir: entry.name, ...found }, 'analytics journal: adopted the journal of an exited process');
      rows += found.rows;
    }
    return rows;
  }

  /** Shows this journal's owner is alive to processes that can't see it (see hit-journal-owner.ts). */
  async heartbeat(): Promise<void> {
    const now = new Date();
    await utimes(this.dir, now, now);
  }

  /** Waits for the queued writes and seals the active segment (the caller has stopped appending). */
  async close(): Promise<void> {
    await this.seal();
  }

  /** Removes this journal's directory if nothing is left to ship in it. */
  async dispose(): Promise<boolean> {
    await this.#lock;
    if (this.#sealed.length || this.#active?.segment.rows) return false;
    await this.#active?.file.close().catch(() => {});
    this.#active = undefined;
    await rm(this.dir, { recursive: true, force: true });
    return true;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn);
    this.#lock = run.catch(() => {});
    return run;
  }

  async #writeGroup(): Promise<void> {
    this.#writeQueued = false;
    let bytes = 0;
    let count = 0;
    for (const a of this.#pending) {
      if (count > 0 && bytes + a.data.length > MAX_WRITE_BYTES) break;
      bytes += a.data.length;
      count++;
    }
    const group = this.#pending.splice(0, count);
    if (this.#pending.length) {
      this.#writeQueued = true;
      void this.#serial(() => this.#writeGroup());
    }
    const rows = group.reduce((n, a) => n + a.rows, 0);
    const parts = group.map((a) => a.data);
    const frame = Buffer.concat([frameHeader(parts), ...parts]);
    let active: { segment: Segment; file: JournalFile } | undefined;
    try {
      active = this.#active ?? (await this.#openSegment());
      for (let offset = 0; offset < frame.length; ) {
        const n = await active.file.append(frame, offset);
        if (n <= 0) throw Object.assign(new Error('analytics journal: the disk took no bytes'), { code: 'ENOSPC' });
        offset += n;
      }
      await active.file.datasync();
    } catch (err) {
      this.#pendingRows -= rows;
      this.#o.logger.error({ err, rows, dir: this.dir }, 'analytics journal: a write failed; its hits were refused');
      if (active) await this.#abandon(active);
      for (const a of group) a.reject(err);
      return;
    }
    const segment = active.segment;
    if (segment.rows === 0) segment.since = this.#now();
    segment.rows += rows;
    segment.bytes += frame.length;
    for (const a of group) for (const id of a.websiteIds) segment.websiteIds.add(id);
    this.#pendingRows -= rows;
    this.#unshippedRows += rows;
    for (const a of group) a.resolve(segment);
    this.onWritten?.();
  }

  async #openSegment(): Promise<{ segment: Segment; file: JournalFile }> {
    const base = String(this.#nextSeq++).padStart(12, '0');
    const file = path.join(this.dir, `${base}.wal`);
    const handle = await this.#openFile(file);
    // The new file's directory entry must survive a crash as its acknowledged rows do.
    await syncDir(this.dir);
    this.#active = { segment: { path: file, token: `${this.name}/${base}`, rows: 0, bytes: 0, websiteIds: new Set(), since: this.#now() }, file: handle };
    return this.#active;
  }

  /**
   * After a failed write the segment's tail is unknown: cut it back to the acknowledged bytes (so
   * the refused rows can't reappear on a replay) and continue in a new segment.
   */
  async #abandon(active: { segment: Segment; file: JournalFile }): Promise<void> {
    if (this.#active === active) this.#active = undefined;
    try {
      await active.file.truncate(active.segment.bytes);
      await active.file.datasync();
    } catch (err) {
      // A refused frame that reached the disk whole would be shipped on replay; log it loudly.
      this.#o.logger.error({ err, file: active.segment.path }, 'analytics journal: could not cut a failed write from its segment');
    }
    await active.file.close().catch(() => {});
    if (active.segment.rows > 0) this.#sealed.push(active.segment);
    else await unlink(active.segment.path).catch(() => {});
  }

  /** Reads an adopted directory (and any it had adopted) into the sealed list. */
  async #load(dir: string): Promise<{ segments: number; rows: number; tornBytes: number }> {
    const found = { segments: 0, rows: 0, tornBytes: 0 };
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        const inner = await this.#load(full);
        found.segments += inner.segments;
        found.rows += inner.rows;
        found.tornBytes += inner.tornBytes;
        continue;
      }
      if (!SEGMENT_RE.test(entry.name)) continue;
      const contents = readFrames(await readFile(full));
      found.tornBytes += contents.tornBytes;
      if (contents.rows === 0) {
        await unlink(full);
        continue;
      }
      const websiteIds = new Set<string>();
      for (const p of contents.payloads) for (const m of p.toString('latin1').matchAll(/"website_id":"([^"]+)"/g)) websiteIds.add(m[1]!);
      this.#sealed.push({
        path: full,
        token: `${path.basename(dir)}/${entry.name.slice(0, -'.wal'.length)}`,
        rows: contents.rows,
        bytes: contents.validBytes,
        websiteIds,
        since: this.#now(),
        adopted: true,
      });
      this.#unshippedRows += contents.rows;
      found.segments++;
      found.rows += contents.rows;
    }
    await rmdir(dir).catch(() => {}); // only if it was empty
    return found;
  }
}

/** fsync a directory, so a file created or renamed in it survives a crash (best effort where unsupported). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // some platforms can't sync a directory
  } finally {
    await fh.close();
  }
}
