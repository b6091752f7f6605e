import type { Logger } from 'pino';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { PendingAuditEvent } from './event.js';
import type { AuditStore } from './store.js';

export interface AuditWriterOptions {
  /** Most events held at once: buffered, being written, or promised to admitted requests. */
  bufferSize: number;
  /** A batch this big is written at once, without waiting for the timer. */
  batchSize: number;
  /** The longest an event waits in the buffer. */
  flushMs: number;
  /** When the buffer is full: `block` holds new requests back (until blockTimeoutMs, then 503); `drop` drops events, counted. */
  overflow: 'block' | 'drop';
  blockTimeoutMs: number;
}

const MAX_RETRY_DELAY_MS = 5000;
const CLOSE_ATTEMPTS = 5;

/**
 * Batches audit events off the request path into AuditStore.append. In `block` mode a request
 * reserves its event's slot before it runs (admit), so an admitted request's event always fits;
 * in `drop` mode an event that doesn't fit is dropped, counted and logged. A failed write keeps the
 * batch and retries with backoff.
 */
export class AuditWriter {
  private readonly buffer: PendingAuditEvent[] = [];
  private reserved = 0;
  private readonly waiting: Array<() => void> = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;
  private droppedSinceLog = 0;

  constructor(
    private readonly store: AuditStore,
    private readonly opts: AuditWriterOptions,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    metrics.audit.watchBufferDepth(() => this.buffer.length);
  }

  get depth(): number {
    return this.buffer.length;
  }

  /**
   * Called before a request runs. Returns true at once when its event will fit (or in drop mode);
   * otherwise a promise of whether a slot freed up within blockTimeoutMs.
   */
  admit(): true | Promise<boolean> {
    if (this.opts.overflow === 'drop' || this.tryReserve()) return true;
    return new Promise<boolean>((resolve) => {
      const wake = () => {
        if (!this.tryReserve()) return false;
        clearTimeout(timer);
        resolve(true);
        return true;
      };
      const entry = () => void wake();
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        resolve(false);
      }, this.opts.blockTimeoutMs);
      this.waiting.push(entry);
    });
  }

  /** Adds the event of a request that admit() let in. */
  add(event: PendingAuditEvent): void {
    if (this.opts.overflow === 'block') {
      this.reserved = Math.max(0, this.reserved - 1);
    } else if (this.buffer.length >= this.opts.bufferSize) {
      this.metrics.audit.dropped.inc();
      if (this.droppedSinceLog++ === 0) {
        this.logger.error({ bufferSize: this.opts.bufferSize }, 'audit: buffer full, dropping events (AUDIT_OVERFLOW=drop); see weir_audit_events_dropped_total');
      }
      return;
    }
    this.buffer.push(event);
    if (this.closed) void this.flush();
    else if (this.buffer.length >= this.opts.batchSize) this.schedule(0);
    else this.schedule(this.opts.flushMs);
  }

  /** Writes everything buffered so far (one batch at a time). */
  flush(): Promise<void> {
    this.flushing ??= this.drain().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Stops the timer and writes what is left, retrying a few times; what still can't be written is logged, never silently lost. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (let attempt = 0; attempt < CLOSE_ATTEMPTS && this.buffer.length; attempt++) {
      if (attempt) await new Promise((r) => setTimeout(r, 100 * attempt));
      await this.flush();
    }
    if (this.buffer.length) this.logger.error({ events: this.buffer.length }, 'audit: could not write these events before shutdown');
    for (const wake of this.waiting.splice(0)) wake();
  }

  private tryReserve(): boolean {
    if (this.buffer.length + this.reserved >= this.opts.bufferSize) return false;
    this.reserved++;
    return true;
  }

  private schedule(delayMs: number): void {
    if (this.timer && delayMs > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delayMs);
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    while (this.buffer.length) {
      const batch = this.buffer.slice(0, this.opts.batchSize);
      const started = performance.now();
      try {
        await this.store.append(batch);
      } catch (err) {
        this.failures++;
        this.metrics.audit.flushFailures.inc();
        const retryMs = Math.min(MAX_RETRY_DELAY_MS, this.opts.flushMs * 2 ** this.failures);
        this.logger.error({ err, events: this.buffer.length, retryMs }, 'audit: writing a batch failed; will retry');
        if (!this.closed) this.schedule(retryMs);
        return;
      }
      this.failures = 0;
      this.buffer.splice(0, batch.length);
      this.metrics.audit.flushSeconds.observe((performance.now() - started) / 1000);
      this.metrics.audit.written.inc(batch.length);
      this.droppedSinceLog = 0;
      // Slots freed: let requests held back by a full buffer in.
      while (this.waiting.length && this.buffer.length + this.reserved < this.opts.bufferSize) this.waiting.shift()!();
    }
  }
}
