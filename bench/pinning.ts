import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';

/**
 * CPU pinning for benches on a small machine, with taskset(1): the server under test on one core,
 * the load generator (and, where they run on this machine, Redis and PostgreSQL) on the rest, so
 * the server's latency tail is not the load generator's; and, optionally, priority (renice) over
 * other work on a shared machine. Every affinity and priority changed is saved and put back by
 * restore() (also on SIGINT/SIGTERM), whatever else runs on the machine; PostgreSQL backends forked
 * meanwhile keep the priority they inherited until they exit.
 */
export class Pinning {
  private readonly saved = new Map<number, string>();
  private readonly savedNice = new Map<number, number>();
  private readonly onSignal = () => {
    this.restore();
    process.exit(130);
  };

  /** Whether pinning can work here: two or more CPUs and taskset. */
  static available(): boolean {
    if (os.cpus().length < 2) return false;
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  /** The CPU the server gets (the first) and the list for everything else (`1-N`). */
  static readonly serverCpu = '0';
  static readonly otherCpus = `1-${os.cpus().length - 1}`;

  /** Pins the process and all its threads (`taskset -a`), saving its affinity first; false if it has gone. */
  pin(pid: number, cpus: string): boolean {
    this.watchSignals();
    try {
      if (!this.saved.has(pid)) this.saved.set(pid, mask(pid));
      execFileSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' });
      return true;
    } catch (err) {
      if (existsPid(pid)) throw err;
      this.saved.delete(pid);
      return false; // exited meanwhile (a store's short-lived backend)
    }
  }

  /**
   * Raises the process's CPU priority (all its threads, `nice`, saving it first), so that on a
   * machine shared with other work it gets most of its core when both want it rather than a fair
   * share. For everything a measured request passes through, the same for both sides; false if it has gone.
   */
  prioritise(pid: number, nice: number): boolean {
    this.watchSignals();
    try {
      if (!this.savedNice.has(pid)) this.savedNice.set(pid, niceOf(pid));
      setNice(pid, nice);
      return true;
    } catch (err) {
      if (existsPid(pid)) throw err;
      this.savedNice.delete(pid);
      return false;
    }
  }

  /** Puts back every affinity and priority changed (processes gone since are skipped). */
  restore(): void {
    for (const [pid, original] of this.saved) {
      try {
        execFileSync('taskset', ['-a', '-p', original, String(pid)], { stdio: 'ignore' });
      } catch {
        // exited meanwhile
      }
    }
    for (const [pid, original] of this.savedNice) {
      try {
        setNice(pid, original);
      } catch {
        // exited meanwhile
      }
    }
    this.saved.clear();
    this.savedNice.clear();
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }

  private watchSignals(): void {
    if (this.saved.size || this.savedNice.size) return;
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }
}

/** The process's nice value, from /proc. */
function niceOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
}

/** renice(1) sets one thread's priority on Linux: every thread of the process, then. */
function setNice(pid: number, nice: number): void {
  const threads = readdirSync(`/proc/${pid}/task`);
  execFileSync('renice', ['-n', String(nice), '-p', ...threads], { stdio: 'ignore' });
}

function mask(pid: number): string {
  const out = execFileSync('taskset', ['-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out.trim().split(':').pop()!.trim();
}

const local = (url: string) => ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(new URL(url).hostname);

/** Redis's pid, from INFO, when it runs on this machine. */
export async function redisPids(url: string): Promise<number[]> {
  if (!local(url)) return [];
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const pid = /process_id:(\d+)/.exec(await redis.info('server'))?.[1];
    return pid && existsPid(Number(pid)) ? [Number(pid)] : [];
  } catch {
    return [];
  } finally {
    redis.disconnect();
  }
}

/**
 * PostgreSQL's postmaster (from postmaster.pid in its data directory, which needs a superuser to
 * name) and its children (backends, background workers), when it runs on this machine. Backends
 * started later are forked by the postmaster and inherit its affinity.
 */
export async function postgresPids(url: string): Promise<number[]> {
  if (!local(url)) return [];
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    const dir = (await client.query<{ data_directory: string }>('SHOW data_directory')).rows[0]!.data_directory;
    const postmaster = Number(readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!existsPid(postmaster)) return [];
    return [postmaster, ...childrenOf(postmaster)];
  } catch {
    return [];
  } finally {
    await client.end().catch(() => {});
  }
}

function existsPid(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}

function childrenOf(parent: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      if (ppid === parent) children.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return children;
}
