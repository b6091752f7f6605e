import { createHash, randomBytes } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { sendOrDrop, type TokenAuthenticator } from '../analytics/realtime-hub.js';
import type { AccessControl } from '../authz/index.js';
import type { Principal } from '../gateway/request-types.js';
import { ProblemError } from '../problem.js';
import type { IngestService } from './ingest-service.js';

export const STREAM_PATH = /^\/v1\/datasets\/([^/?#]+)\/stream$/;
const PRODUCER = /^[A-Za-z0-9._:-]{1,128}$/;

export interface StreamEndpointOptions {
  ingest: IngestService;
  access: Pick<AccessControl, 'authorizer' | 'resources'>;
  /** The same check the realtime WebSocket uses: a bearer JWT, else an API key. */
  authenticate: TokenAuthenticator;
  logger: Logger;
  /** Largest message (one batch) accepted; a larger one closes the connection with 1009. */
  maxBatchBytes?: number;
  /** Batches received and not yet acknowledged, at most; beyond it the socket is not read. */
  maxQueuedBatches?: number;
  /** A client with more than this many bytes of acks waiting to be sent is dropped (1008). */
  maxBufferedBytes?: number;
}

interface Connection {
  principal: Principal;
  datasetId: string;
  producer?: string;
  /** Rows committed by this connection (replayed batches excluded). */
  committed: number;
  /** The last seq this connection saw: the next batch without a header is this + 1. */
  lastSeq: number;
}

/** A batch's optional first line: exactly `{"seq": <non-negative integer>}`. */
export function splitHeader(text: string): { seq?: number; body: string; error?: string } {
  const nl = text.indexOf('\n');
  const first = (nl < 0 ? text : text.slice(0, nl)).trim();
  if (!first.startsWith('{') || !/^\{\s*"seq"\s*:/.test(first)) return { body: text };
  let value: unknown;
  try {
    value = JSON.parse(first);
  } catch {
    return { body: text };
  }
  if (!value || typeof value !== 'object' || Array.isArray(value) || Object.keys(value).length !== 1) return { body: text };
  const seq = (value as { seq: unknown }).seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) return { body: text, error: 'seq must be a non-negative integer.' };
  return { seq, body: nl < 0 ? '' : text.slice(nl + 1) };
}

/** Answers an upgrade that is refused with a plain HTTP problem response, then closes the socket. */
function refuse(socket: Duplex, status: number, detail: string, extraHeaders: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail });
  const headers = { 'Content-Type': 'application/problem+json', 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close', ...extraHeaders };
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v.trim() ? v.trim() : undefined;
}

/**
 * Streaming ingest over WebSocket at /v1/datasets/{datasetId}/stream. Authenticated and
 * authorized (dataset write) at the upgrade. Each text message is one NDJSON batch, optionally
 * headed by `{"seq": n}`; it goes through the same validation, quarantine and group commit as
 * POST .../ingest and is acknowledged once committed. With `?producer=<id>` and a seq header,
 * (tenant, dataset, producer, seq) is an ingest idempotency key, so a batch resent after a
 * reconnect is acknowledged again without writing its rows twice.
 */
export class StreamIngestEndpoint {
  readonly #o: Required<StreamEndpointOptions>;
  readonly #wss: WebSocketServer;

  constructor(options: StreamEndpointOptions) {
    this.#o = { maxBatchBytes: 8 * 1024 * 1024, maxQueuedBatches: 4, maxBufferedBytes: 1024 * 1024, ...options };
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: this.#o.maxBatchBytes });
  }

  /** Takes an HTTP upgrade for /v1/datasets/{id}/stream; returns false for other paths. */
  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    const url = new URL(req.url ?? '/', 'http://weir.invalid');
    const match = STREAM_PATH.exec(url.pathname);
    if (!match) return false;
    socket.on('error', () => socket.destroy());
    void this.#accept(req, socket, head, decodeURIComponent(match[1]!), url.searchParams).catch((err: unknown) => {
      this.#o.logger.error({ err }, 'ingest stream: upgrade failed');
      refuse(socket, 503, 'Try again shortly.', { 'Retry-After': '1' });
    });
    return true;
  };

  async close(): Promise<void> {
    for (const ws of this.#wss.clients) ws.close(1001, 'server shutting down');
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }

  async #accept(req: IncomingMessage, socket: Duplex, head: Buffer, datasetId: string, query: URLSearchParams): Promise<void> {
    const apiKey = header(req, 'x-api-key');
    const authorization = header(req, 'authorization');
    const token = apiKey ?? (authorization && /^Bearer\s+/i.test(authorization) ? authorization : undefined);
    const principal = token ? await this.#o.authenticate(token) : undefined;
    if (!principal) return refuse(socket, 401, 'This endpoint needs credentials: a bearer token or an API key.', { 'WWW-Authenticate': 'Bearer realm="weir"' });
    const owner = await this.#o.access.resources.resolve('dataset', datasetId);
    // Another tenant's dataset is as absent as a missing one.
    if (!owner || owner.tenant !== principal.tenant) return refuse(socket, 404, 'No such dataset, or the caller may not see it.');
    const decision = this.#o.access.authorizer.decide(principal, { type: 'dataset', id: datasetId, attributes: owner.attributes }, 'write');
    if (!decision.allowed) return refuse(socket, 403, 'The caller may not write this dataset.');
    const producer = query.get('producer') ?? undefined;
    if (producer !== undefined && !PRODUCER.test(producer)) return refuse(socket, 400, 'producer must be 1 to 128 characters of A-Z a-z 0-9 . _ : -');
    try {
      await this.#o.ingest.datasets.writable(principal.tenant, datasetId);
    } catch (err) {
      if (err instanceof ProblemError) return refuse(socket, err.status, err.detail ?? err.title);
      throw err;
    }
    if (socket.destroyed) return;
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws, { principal, datasetId, producer, committed: 0, lastSeq: 0 }));
  }

  #onConnection(ws: WebSocket, conn: Connection): void {
    const queue: RawData[] = [];
    let working = false;
    let paused = false;
    const send = (message: Record<string, unknown>) => sendOrDrop(ws, JSON.stringify(message), this.#o.maxBufferedBytes);
    const pump = async () => {
      if (working) return;
      working = true;
      try {
        while (queue.length && ws.readyState === ws.OPEN) {
          const data = queue[0]!;
          const reply = await this.#batch(conn, String(data)).catch((err: unknown) => this.#failure(err, undefined));
          queue.shift();
          send(reply);
          if (paused && queue.length < this.#o.maxQueuedBatches) {
            paused = false;
            ws.resume();
          }
        }
      } finally {
        working = false;
      }
    };
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        send({ type: 'error', code: 'binary_message', detail: 'Send each batch as a text message of NDJSON.' });
        return;
      }
      queue.push(data);
      // Backpressure: with this many batches waiting, stop reading the socket until one is acknowledged.
      if (queue.length >= this.#o.maxQueuedBatches && !paused) {
        paused = true;
        ws.pause();
      }
      void pump();
    });
    ws.on('error', () => ws.terminate());
  }

  async #batch(conn: Connection, text: string): Promise<Record<string, unknown>> {
    const { ingest } = this.#o;
    const { tenant } = conn.principal;
    const head = splitHeader(text);
    if (head.error) return { type: 'error', code: 'bad_header', detail: head.error };
    if (head.seq === undefined && conn.producer) {
      return { type: 'error', code: 'seq_required', detail: 'With a producer id, start each batch with a {"seq": n} line.' };
    }
    const seq = head.seq ?? conn.lastSeq + 1;
    conn.lastSeq = seq;
    const requestId = `ws_${randomBytes(12).toString('base64url')}`;
    const key = conn.producer ? `stream:${conn.datasetId}:${conn.producer}:${seq}` : undefined;
    const hash = `ndjson:${createHash('sha256').update(head.body).digest('hex')}`;
    const release = ingest.budget.reserve(Math.max(1024, Buffer.byteLength(head.body) * 3));
    try {
      const dataset = await ingest.datasets.writable(tenant, conn.datasetId);
      const claim = key ? await ingest.idempotency.claim(tenant, key, conn.datasetId, requestId) : { kind: 'new' as const };
      if (claim.kind === 'done') {
        if (claim.bodyHash !== hash) {
          return { type: 'error', seq, code: 'seq_reused', detail: `Batch ${seq} of producer ${conn.producer} was committed before with other rows; nothing of this one was written.` };
        }
        return { type: 'ack', seq, committed: conn.committed, accepted: claim.result.accepted, quarantined: claim.result.quarantined, duplicate: true };
      }
      if (claim.kind === 'takeover') await ingest.undo(conn.datasetId, claim.previousRequestId);
      const run = ingest.newRun(dataset, requestId);
      try {
        await run.addNdjson(Buffer.from(head.body));
        run.endNdjson();
        await run.finish();
      } catch (err) {
        await run.abandon();
        // All or nothing per batch, as for a POST: what it already committed is taken back.
        const undone = await ingest.undo(conn.datasetId, requestId).then(() => true, (undoErr: unknown) => {
          this.#o.logger.error({ err: undoErr, requestId }, 'ingest stream: could not undo a failed batch');
          return false;
        });
        if (key && undone) await ingest.idempotency.release(tenant, key).catch(() => {});
        return this.#failure(err, seq);
      }
      const result = { accepted: run.accepted, quarantined: run.quarantined, errors: run.errors, request_id: requestId };
      if (key) await ingest.idempotency.complete(tenant, key, hash, result);
      conn.committed += run.accepted;
      return { type: 'ack', seq, committed: conn.committed, accepted: run.accepted, quarantined: run.quarantined, errors: run.errors, request_id: requestId };
    } finally {
      release();
    }
  }

  #failure(err: unknown, seq: number | undefined): Record<string, unknown> {
    if (err instanceof ProblemError) {
      return { type: 'error', ...(seq !== undefined && { seq }), code: err.type.replace(/^.*\/problems\//, ''), status: err.status, detail: err.detail ?? err.title };
    }
    this.#o.logger.error({ err }, 'ingest stream: batch failed');
    return { type: 'error', ...(seq !== undefined && { seq }), code: 'unavailable', status: 503, detail: 'The batch could not be written; nothing of it was kept. Retry.' };
  }
}
