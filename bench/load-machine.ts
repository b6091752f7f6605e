import { readFileSync } from 'node:fs';

const CLOCK_TICKS = 100;

/**
 * CPU time each CPU has spent busy so far (user, nice, system, irq, softirq, steal; µs), from
 * /proc/stat; empty where there is none. Less the bench's own processes' CPU over the same span,
 * it is the other work that ran beside the servers: what a latency tail may be waiting behind.
 */
export function cpuBusyUs(): number[] {
  try {
    return readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .filter((line) => /^cpu\d+ /.test(line))
      .map((line) => {
        const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number) as number[];
        return ((user! + nice! + system! + irq! + softirq! + steal!) / CLOCK_TICKS) * 1e6;
      });
  } catch {
    return [];
  }
}

/** A process's (all its threads', or one thread's) CPU time so far (user + system, µs), from /proc; undefined once it has gone. */
export function processCpuUs(pid: number, thread?: number): number | undefined {
  try {
    const fields = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6;
  } catch {
    return undefined;
  }
}
