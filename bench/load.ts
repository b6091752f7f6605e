/**
 * The benches' load generator: a child process of its own (bench/load-worker.ts, compiled like the
 * servers, see compiled.ts) driving keep-alive HTTP/1.1 connections with raw sockets, prebuilt
 * request bytes and responses framed by Content-Length, so a request costs the client a few µs of
 * CPU and its event loop is not the bench's. Two ways to drive a server:
 *
 * - closed loop (no `rate`): every connection sends its next request as soon as the last is
 *   answered; latency runs from the write.
 * - paced (`rate` requests per second in all): request i is due at start + i / rate and goes out on
 *   whichever connection is free; latency runs from that due time, not from the write, so a request
 *   sent late (its connections all busy, or the client's timer late) counts its lateness rather
 *   than hiding it (no coordinated omission). `lagMs` holds how late each one went out.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { serverCommand } from './compiled.js';

export interface LoadRequest {
  method: 'GET' | 'POST';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  /** A 36-character string in `body` replaced by a new randomUUID() in every request. */
  uniqueToken?: string;
}

export interface LoadJob {
  url: string;
  request: LoadRequest;
  connections: number;
  seconds: number;
  /** Requests per second over all connections (paced); closed loop without it. */
  rate?: number;
}

export interface LoadSample {
  /** One per answered request, ms: from the write (closed loop) or from its due time (paced). */
  latencyMs: Float64Array;
  /** Paced only: how late each request was written after its due time, ms (the client's own lateness, or no free connection). */
  lagMs: Float64Array;
  /** Paced only: how late the client's timer woke, each time it slept until a request was due on a free connection, ms. */
  timerLateMs: Float64Array;
  /** Answers with a 2xx status, and the rest. */
  ok: number;
  other: number;
  /** Requests that got no answer (connection closed or failed under them). */
  failed: number;
  /** From the first request to the last answer. */
  seconds: number;
  /** The load generator's own CPU time (user + system) over the run. */
  clientCpuUs: number;
}

export type ToWorker = { run: LoadJob } | { close: true };
export type FromWorker = { sample: LoadSample } | { error: string };

/** How latencies are measured, for the benches to print. */
export const LATENCY_NOTE =
  'latency of paced requests runs from when each was due, not from when it was written (a request sent late counts its lateness: no coordinated omission)';

export class LoadGenerator {
  private constructor(private readonly child: ChildProcess) {}

  static start(): LoadGenerator {
    const command = serverCommand('bench/load-worker.ts');
    const child = fork(command.at(-1)!, [], { execArgv: command.slice(0, -1), serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new LoadGenerator(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** One measurement; jobs run one at a time, reusing each server's open connections. */
  run(job: LoadJob): Promise<LoadSample> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`load generator exited with ${code}`));
      this.child.once('exit', onExit);
      this.child.once('message', (message: FromWorker) => {
        this.child.off('exit', onExit);
        if ('error' in message) reject(new Error(message.error));
        else resolve(message.sample);
      });
      this.child.send({ run: job } satisfies ToWorker);
    });
  }

  close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.send({ close: true } satisfies ToWorker);
    });
  }
}

/** The q-quantile of latencies from several samples (nearest rank). */
export function percentiles(samples: Float64Array[], qs: number[]): number[] {
  const all = new Float64Array(samples.reduce((n, s) => n + s.length, 0));
  let at = 0;
  for (const s of samples) all.set(s, (at += s.length) - s.length);
  all.sort();
  return qs.map((q) => all[Math.min(all.length - 1, Math.floor(q * all.length))] ?? NaN);
}
