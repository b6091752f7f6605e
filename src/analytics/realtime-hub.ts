import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Principal } from '../gateway/request-types.js';
import type { SharedState, Warehouse } from '../stores/index.js';
import { realtimeFigures, type RealtimeFigures } from './reports.js';
import type { WebsiteRepository } from './websites.js';

/** Turns a subscription's token (bearer token or API key) into a principal; undefined when refused. */
export type TokenAuthenticator = (token: string) => Promise<Principal | undefined>;

export interface RealtimeHubOptions {
  warehouse: Warehouse;
  shared: SharedState;
  websites: WebsiteRepository;
  authenticate?: TokenAuthenticator;
  /** The steady cadence of metrics_update pushes. */
  intervalMs: number;
  /** A client with more than this many bytes waiting to be sent is not reading: it is dropped (1008). */
  maxBufferedBytes: number;
  now: () => number;
  logger: Logger;
}

/** The part of a WebSocket the hub sends through; tests stand in for it. */
export interface Subscriber {
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}

export const REALTIME_PATH = '/v1/realtime';
const CHANGES_CHANNEL = 'analytics:realtime-changed';
const MAX_SUBSCRIPTIONS_PER_SOCKET = 20;
// A burst of hits triggers at most one recomputation per website per this interval.
const CHANGE_DEBOUNCE_MS = 500;
const OPEN = 1;

/**
 * Sends a message unless the client has stopped reading: then it is closed with 1008 and, if it
 * doesn't read the close frame either, cut off. Returns whether the message was sent.
 */
export function sendOrDrop(client: Subscriber, message: string, maxBufferedBytes: number): boolean {
  if (client.readyState !== OPEN) return false;
  if (client.bufferedAmount > maxBufferedBytes) {
    client.close(1008, 'client is not reading its messages');
    setTimeout(() => client.terminate(), 1000).unref();
    return false;
  }
  client.send(message);
  return true;
}

/**
 * The `/v1/realtime` WebSocket: clients subscribe to websites with a token; every process pushes
 * metrics_update to its own subscribers at a steady cadence, and sooner when hits arrive anywhere
 * (announced over shared pub/sub, so several gateway processes fan out together).
 */
export class RealtimeHub {
  readonly #o: RealtimeHubOptions;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  readonly #subscribers = new Map<string, Set<Subscriber>>();
  readonly #lastSent = new Map<string, string>();
  readonly #pendingRefresh = new Map<string, NodeJS.Timeout>();
  readonly #lastAnnounced = new Map<string, number>();
  #timer?: NodeJS.Timeout;
  #unsubscribe?: () => Promise<void>;

  constructor(options: RealtimeHubOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    this.#unsubscribe = await this.#o.shared.subscribe(CHANGES_CHANNEL, (websiteId) => this.#scheduleRefresh(websiteId));
    this.#timer = setInterval(() => {
      for (const websiteId of this.#subscribers.keys()) void this.#push(websiteId, true);
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Takes an HTTP upgrade for /v1/realtime; returns false for other paths. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = (req.url ?? '').split('?')[0];
    if (path !== REALTIME_PATH) return false;
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws));
    return true;
  }

  /** Hits were recorded for a website (in this process): tell every process. */
  changed(websiteId: string): void {
    const now = Date.now();
    if (now - (this.#lastAnnounced.get(websiteId) ?? 0) < CHANGE_DEBOUNCE_MS) return;
    this.#lastAnnounced.set(websiteId, now);
    if (this.#lastAnnounced.size > 10_000) this.#lastAnnounced.clear();
    this.#o.shared.publish(CHANGES_CHANNEL, websiteId).catch((err: unknown) => this.#o.logger.warn({ err }, 'realtime: could not announce a change'));
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    for (const t of this.#pendingRefresh.values()) clearTimeout(t);
    await this.#unsubscribe?.();
    for (const ws of this.#wss.clients) ws.close(1001, 'server shutting down');
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }

  #onConnection(ws: WebSocket): void {
    const mine = new Set<string>();
    const reply = (message: Record<string, unknown>) => sendOrDrop(ws, JSON.stringify(message), this.#o.maxBufferedBytes);
    ws.on('message', (data, isBinary) => {
      let message: { action?: unknown; website_id?: unknown; token?: unknown };
      try {
        message = isBinary ? {} : (JSON.parse(String(data)) as typeof message);
      } catch {
        reply({ type: 'error', code: 'malformed', detail: 'Send JSON messages.' });
        return;
      }
      const websiteId = typeof message.website_id === 'string' ? message.website_id : '';
      if (message.action === 'unsubscribe') {
        mine.delete(websiteId);
        this.#remove(websiteId, ws);
        reply({ type: 'unsubscribed', website_id: websiteId });
      } else if (message.action === 'subscribe') {
        void this.#subscribe(ws, mine, websiteId, typeof message.token === 'string' ? message.token : '').then(reply, (err: unknown) => {
          this.#o.logger.error({ err }, 'realtime: subscribe failed');
          reply({ type: 'error', code: 'unavailable', website_id: websiteId, detail: 'Try again shortly.' });
        });
      } else {
        reply({ type: 'error', code: 'unknown_action', detail: 'action must be subscribe or unsubscribe.' });
      }
    });
    ws.on('close', () => {
      for (const websiteId of mine) this.#remove(websiteId, ws);
    });
    ws.on('error', () => ws.terminate());
  }

  async #subscribe(ws: WebSocket, mine: Set<string>, websiteId: string, token: string): Promise<Record<string, unknown>> {
    const principal = token && this.#o.authenticate ? await this.#o.authenticate(token) : undefined;
    if (!principal) return { type: 'error', code: 'unauthorized', website_id: websiteId, detail: 'The token was missing or not accepted.' };
    const website = await this.#o.websites.findById(websiteId);
    // Another tenant's website is as absent as a missing one.
    if (!website || website.tenant !== principal.tenant) return { type: 'error', code: 'not_found', website_id: websiteId, detail: `No website ${websiteId}.` };
    if (!mine.has(websiteId) && mine.size >= MAX_SUBSCRIPTIONS_PER_SOCKET) {
      return { type: 'error', code: 'too_many_subscriptions', website_id: websiteId, detail: `At most ${MAX_SUBSCRIPTIONS_PER_SOCKET} websites a connection.` };
    }
    mine.add(websiteId);
    let set = this.#subscribers.get(websiteId);
    if (!set) this.#subscribers.set(websiteId, (set = new Set()));
    set.add(ws);
    // The first figures follow the acknowledgement at once.
    setImmediate(() => void this.#push(websiteId, true, ws));
    return { type: 'subscribed', website_id: websiteId };
  }

  #remove(websiteId: string, ws: Subscriber): void {
    const set = this.#subscribers.get(websiteId);
    set?.delete(ws);
    if (set && set.size === 0) {
      this.#subscribers.delete(websiteId);
      this.#lastSent.delete(websiteId);
    }
  }

  #scheduleRefresh(websiteId: string): void {
    if (!this.#subscribers.has(websiteId) || this.#pendingRefresh.has(websiteId)) return;
    this.#pendingRefresh.set(
      websiteId,
      setTimeout(() => {
        this.#pendingRefresh.delete(websiteId);
        void this.#push(websiteId, false);
      }, 50),
    );
  }

  /** Computes a website's figures and sends them; on change only unless `always`. */
  async #push(websiteId: string, always: boolean, only?: Subscriber): Promise<void> {
    let figures: RealtimeFigures;
    try {
      figures = await realtimeFigures(this.#o.warehouse, websiteId, this.#o.now());
    } catch (err) {
      this.#o.logger.warn({ err, websiteId }, 'realtime: figures failed');
      return;
    }
    const numbers = JSON.stringify([figures.active_users, figures.pageviews_per_minute, figures.top_pages, figures.top_countries]);
    if (!always && this.#lastSent.get(websiteId) === numbers) return;
    const message = JSON.stringify({
      type: 'metrics_update',
      website_id: websiteId,
      timestamp: figures.timestamp,
      active_users: figures.active_users,
      pageviews_last_minute: figures.pageviews_per_minute,
      top_pages: figures.top_pages,
      top_countries: figures.top_countries,
    });
    const targets = only ? [only] : [...(this.#subscribers.get(websiteId) ?? [])];
    if (!targets.length) return;
    this.#lastSent.set(websiteId, numbers);
    for (const client of targets) {
      if (!sendOrDrop(client, message, this.#o.maxBufferedBytes)) this.#remove(websiteId, client);
    }
  }
}
