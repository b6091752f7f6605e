import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';

/**
 * Who owns a journal directory. Its name says which process made it: host, a "process scope"
 * (a hash of the boot id and the pid namespace: pids are only comparable within one), pid, the
 * process's start time (so a reused pid is not mistaken for the owner), plus a random part
 * (several gateways may run in one process). A live owner also touches its directory every
 * HEARTBEAT_MS.
 *
 * An owner in this process scope is gone when its pid is, or now belongs to a process started at
 * another time. An owner elsewhere (another host or container sharing the directory, or before a
 * reboot) can't be seen: it is taken for gone once its heartbeat is older than HEARTBEAT_STALE_MS.
 * A directory whose owner is gone is adopted by whichever live process renames it into its own
 * directory first (a rename succeeds once).
 */
export interface JournalOwner {
  host: string;
  scope: string;
  pid: number;
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat), or '0' where unknown. */
  start: string;
}

export const HEARTBEAT_MS = 10_000;
export const HEARTBEAT_STALE_MS = 60_000;

const SEP = '~';
const NAME_RE = /^([A-Za-z0-9.-]{1,63})~([0-9a-f]{8})~(\d+)~(\d+)~([0-9a-f]{8,})$/;

const host = (): string => os.hostname().replace(/[^A-Za-z0-9.-]/g, '-').slice(0, 63) || 'host';

let scopeOfThisProcess: string | undefined;
/** Boot id and pid namespace, hashed; '00000000' where neither can be read. */
function scope(): string {
  if (scopeOfThisProcess) return scopeOfThisProcess;
  const read = (f: () => string) => {
    try {
      return f();
    } catch {
      return '';
    }
  };
  const id = read(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()) + read(() => readlinkSync('/proc/self/ns/pid'));
  return (scopeOfThisProcess = id ? createHash('sha256').update(id).digest('hex').slice(0, 8) : '00000000');
}

/** Start time of a process, '0' when /proc can't tell (not Linux), undefined when there is no such process. */
function processStart(pid: number): string | undefined {
  try {
    // Field 22; the command name (field 2) may hold spaces and parentheses, so split after its ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '0';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return '0';
    return procReadable() ? undefined : '0';
  }
}

let procOk: boolean | undefined;
const procReadable = (): boolean =>
  (procOk ??= (() => {
    try {
      readFileSync('/proc/self/stat');
      return true;
    } catch {
      return false;
    }
  })());

/** A new directory name owned by this process. */
export function newInstanceName(): string {
  return [host(), scope(), process.pid, processStart(process.pid) ?? '0', randomBytes(6).toString('hex')].join(SEP);
}

export function parseInstanceName(name: string): JournalOwner | undefined {
  const m = NAME_RE.exec(name);
  return m ? { host: m[1]!, scope: m[2]!, pid: Number(m[3]), start: m[4]! } : undefined;
}

/** Whether the owner has certainly exited; `heartbeatAgeMs`: how long since its directory was last touched. */
export function ownerGone(owner: JournalOwner, heartbeatAgeMs: number): boolean {
  if (owner.host !== host() || owner.scope !== scope() || owner.scope === '00000000') return heartbeatAgeMs > HEARTBEAT_STALE_MS;
  const start = processStart(owner.pid);
  if (start === undefined) return true;
  if (start !== '0' && owner.start !== '0') return start !== owner.start;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
