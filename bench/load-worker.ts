/**
 * The load generator's process (see load.ts): takes one job at a time over IPC and answers with
 * its sample. Connections to each server stay open between jobs. Nothing is allocated per request
 * beyond the socket write (and, with a unique token, a copy of the request bytes).
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { FromWorker, LoadJob, LoadRequest, LoadSample, ToWorker } from './load.js';

const HEAD_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const DRAIN_LIMIT_MS = 30_000;

/** A growable list of doubles. */
class Samples {
  private data = new Float64Array(1 << 14);
  length = 0;
  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }
  values(): Float64Array {
    return this.data.slice(0, this.length);
  }
}

/** Builds each request's bytes: the same buffer every time, or a copy with a new UUID in place of the token. */
class RequestBytes {
  private readonly template: Buffer;
  private readonly tokenAt: number[] = [];

  constructor(url: URL, request: LoadRequest) {
    const body = request.body ?? '';
    const headers = { host: url.host, ...request.headers, ...(request.body !== undefined && { 'content-length': String(Buffer.byteLength(body)) }) };
    const head = `${request.method} ${request.path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    this.template = Buffer.from(head + body);
    const token = request.uniqueToken;
    if (token !== undefined) {
      if (token.length !== 36) throw new Error('uniqueToken must be 36 characters (a UUID)');
      for (let at = this.template.indexOf(token, head.length); at >= 0; at = this.template.indexOf(token, at + 36)) this.tokenAt.push(at);
      if (!this.tokenAt.length) throw new Error('uniqueToken is not in the body');
    }
  }

  next(): Buffer {
    if (!this.tokenAt.length) return this.template;
    const bytes = Buffer.from(this.template);
    const uuid = randomUUID();
    for (const at of this.tokenAt) bytes.write(uuid, at, 'latin1');
    return bytes;
  }
}

/** One keep-alive connection, one request at a time; tells its run when an answer is complete. */
class Connection {
  run: Run | undefined;
  busy = false;
  closed = false;
  /** performance.now() the request in flight was due (paced) or written (closed loop). */
  dueAt = 0;
  private head: Buffer | undefined;
  private bodyLeft = -1; // -1 while reading a response's head
  private status = 0;

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      if (this.busy) this.finish(0);
    });
  }

  static open(url: URL): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(url.port), url.hostname);
      socket.once('connect', () => resolve(new Connection(socket)));
      socket.once('error', reject);
    });
  }

  send(bytes: Buffer, dueAt: number): void {
    this.busy = true;
    this.dueAt = dueAt;
    this.socket.write(bytes);
  }

  private onData(chunk: Buffer): void {
    if (this.head) {
      chunk = Buffer.concat([this.head, chunk]);
      this.head = undefined;
    }
    let at = 0;
    while (at < chunk.length) {
      if (this.bodyLeft < 0) {
        const end = chunk.indexOf(HEAD_END, at);
        if (end < 0) {
          this.head = chunk.subarray(at);
          return;
        }
        const head = chunk.toString('latin1', at, end);
        this.status = Number(head.slice(9, 12));
        const length = CONTENT_LENGTH.exec(head);
        if (!length && /\r\ntransfer-encoding:/i.test(head)) throw new Error('chunked responses are not supported by the bench load generator');
        this.bodyLeft = length ? Number(length[1]) : 0;
        at = end + 4;
      }
      const take = Math.min(this.bodyLeft, chunk.length - at);
      this.bodyLeft -= take;
      at += take;
      if (this.bodyLeft === 0) {
        this.bodyLeft = -1;
        this.finish(this.status);
      }
    }
  }

  /** status 0: no answer (the connection went). */
  private finish(status: number): void {
    this.busy = false;
    this.run?.answered(this, status);
  }
}

const pools = new Map<string, Connection[]>();

/** `n` open connections to the job's server, opening what is missing. */
async function connectionsFor(url: URL, n: number): Promise<Connection[]> {
  const pool = (pools.get(url.origin) ?? []).filter((c) => !c.closed);
  pools.set(url.origin, pool);
  const opened = await Promise.all(Array.from({ length: Math.max(0, n - pool.length) }, () => Connection.open(url)));
  pool.push(...opened);
  return pool.slice(0, n);
}

class Run {
  private readonly latency = new Samples();
  private readonly lag = new Samples();
  private readonly timerLate = new Samples();
  private timerFor = 0; // paced: the due time the timer was set for
  private ok = 0;
  private other = 0;
  private failed = 0;
  private readonly idle: Connection[];
  private inFlight = 0;
  private next = 0; // paced: index of the next request due
  private readonly total: number; // paced: requests in all
  private readonly interval: number; // paced: ms between due times
  private timer: NodeJS.Timeout | undefined;
  private readonly start = performance.now();
  private readonly end: number;
  private readonly cpu = process.cpuUsage();
  private readonly done: Promise<LoadSample>;
  private resolve!: (sample: LoadSample) => void;

  constructor(
    private readonly job: LoadJob,
    private readonly bytes: RequestBytes,
    connections: Connection[],
  ) {
    this.end = this.start + job.seconds * 1000;
    this.total = job.rate ? Math.round(job.rate * job.seconds) : Infinity;
    this.interval = job.rate ? 1000 / job.rate : 0;
    this.idle = [...connections];
    for (const c of connections) c.run = this;
    this.done = new Promise((resolve) => (this.resolve = resolve));
  }

  result(): Promise<LoadSample> {
    if (this.job.rate) this.dispatch();
    else for (const c of this.idle.splice(0)) this.send(c, performance.now());
    const limit = setTimeout(() => this.finish(), this.job.seconds * 1000 + DRAIN_LIMIT_MS);
    return this.done.finally(() => clearTimeout(limit));
  }

  private send(c: Connection, dueAt: number): void {
    this.inFlight++;
    c.send(this.bytes.next(), dueAt);
  }

  /** Paced: writes every request now due on a free connection, then sleeps until the next is due. */
  private dispatch = (): void => {
    const now = performance.now();
    if (this.timer !== undefined) this.timerLate.push(now - this.timerFor);
    this.timer = undefined;
    while (this.next < this.total && this.idle.length) {
      const dueAt = this.start + this.next * this.interval;
      if (dueAt > now) break;
      this.next++;
      this.lag.push(now - dueAt);
      this.send(this.idle.pop()!, dueAt);
    }
    if (this.next < this.total) {
      if (this.idle.length) {
        this.timerFor = this.start + this.next * this.interval;
        this.timer = setTimeout(this.dispatch, this.timerFor - now);
      }
    } else if (this.inFlight === 0) this.finish();
  };

  answered(c: Connection, status: number): void {
    const now = performance.now();
    this.inFlight--;
    if (status === 0) this.failed++;
    else {
      this.latency.push(now - c.dueAt);
      if (status >= 200 && status < 300) this.ok++;
      else this.other++;
    }
    if (!this.job.rate) {
      if (now < this.end && !c.closed) this.send(c, now);
      else if (this.inFlight === 0) this.finish();
      return;
    }
    if (!c.closed) this.idle.push(c);
    if (this.timer === undefined) this.dispatch();
  }

  private finish(): void {
    if (this.timer) clearTimeout(this.timer);
    const cpu = process.cpuUsage(this.cpu);
    this.resolve({
      latencyMs: this.latency.values(),
      lagMs: this.lag.values(),
      timerLateMs: this.timerLate.values(),
      ok: this.ok,
      other: this.other,
      failed: this.failed + this.inFlight,
      seconds: (performance.now() - this.start) / 1000,
      clientCpuUs: cpu.user + cpu.system,
    });
  }
}

async function runJob(job: LoadJob): Promise<LoadSample> {
  const url = new URL(job.url);
  const connections = await connectionsFor(url, job.connections);
  try {
    return await new Run(job, new RequestBytes(url, job.request), connections).result();
  } finally {
    for (const c of connections) {
      c.run = undefined;
      if (c.busy) c.socket.destroy(); // still unanswered at the drain limit: its answer must not land in the next run
    }
  }
}

const reply = (message: FromWorker) => process.send!(message);
process.on('disconnect', () => process.exit(0)); // the bench has gone
process.on('message', (message: ToWorker) => {
  if ('close' in message) {
    for (const pool of pools.values()) for (const c of pool) c.socket.destroy();
    process.disconnect();
    return;
  }
  runJob(message.run).then(
    (sample) => reply({ sample }),
    (err: unknown) => reply({ error: String(err) }),
  );
});
