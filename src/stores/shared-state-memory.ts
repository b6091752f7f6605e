import { EventEmitter } from 'node:events';
import type { SharedState, SharedStateOptions } from './shared-state.js';

interface Entry { value: string; expiresAt?: number }

const SWEEP_MS = 30_000;

/** Single-process stand-in for Redis: a Map with expiry and an EventEmitter for pub/sub. */
export function openMemorySharedState(opts: Pick<SharedStateOptions, 'keyPrefix' | 'logger'>): SharedState {
  const prefix = opts.keyPrefix;
  const data = new Map<string, Entry>();
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  let closed = false;

  const live = (key: string): Entry | undefined => {
    const e = data.get(prefix + key);
    if (e?.expiresAt !== undefined && e.expiresAt <= Date.now()) {
      data.delete(prefix + key);
      return undefined;
    }
    return e;
  };
  const expiry = (ttlMs?: number): number | undefined => {
    if (ttlMs === undefined) return undefined;
    if (!Number.isInteger(ttlMs) || ttlMs <= 0) throw new Error(`ttlMs must be a positive integer, got ${ttlMs}`);
    return Date.now() + ttlMs;
  };
  const open = (): void => {
    if (closed) throw new Error('shared state is closed');
  };

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [k, e] of data) if (e.expiresAt !== undefined && e.expiresAt <= now) data.delete(k);
  }, SWEEP_MS);
  sweep.unref();

  return {
    kind: 'memory',
    keyPrefix: prefix,
    async get(key) {
      open();
      return live(key)?.value ?? null;
    },
    async set(key, value, ttlMs) {
      open();
      data.set(prefix + key, { value, expiresAt: expiry(ttlMs) });
    },
    async setIfAbsent(key, value, ttlMs) {
      open();
      if (live(key)) return false;
      data.set(prefix + key, { value, expiresAt: expiry(ttlMs) });
      return true;
    },
    async del(key) {
      open();
      data.delete(prefix + key);
    },
    async compareAndSet(expected, writes) {
      open();
      const current = expected.map(([key]) => live(key)?.value ?? null);
      if (current.some((value, i) => value !== expected[i]![1])) return { ok: false, current };
      const entries = writes.map((w) => ({ key: prefix + w.key, entry: { value: w.value, expiresAt: expiry(w.ttlMs) } }));
      for (const { key, entry } of entries) data.set(key, entry);
      return { ok: true };
    },
    async incrBy(key, by, ttlMs) {
      open();
      if (!Number.isInteger(by)) throw new Error(`incrBy amount must be an integer, got ${by}`);
      const e = live(key);
      if (!e) {
        data.set(prefix + key, { value: String(by), expiresAt: expiry(ttlMs) });
        return by;
      }
      if (!/^-?\d+$/.test(e.value)) throw new Error('ERR value is not an integer or out of range');
      const next = Number(e.value) + by;
      e.value = String(next);
      return next;
    },
    async publish(channel, message) {
      open();
      const listeners = bus.listeners(prefix + channel) as Array<(m: string) => void>;
      // Redis delivers asynchronously; a handler removed before delivery gets nothing.
      setImmediate(() => {
        for (const fn of listeners) {
          if (!bus.listeners(prefix + channel).includes(fn)) continue;
          try {
            fn(message);
          } catch (err) {
            opts.logger.error({ err, channel }, 'shared: subscriber handler threw');
          }
        }
      });
    },
    async subscribe(channel, onMessage) {
      open();
      // Wrap so the same function subscribed twice unsubscribes independently.
      const fn = (m: string): void => onMessage(m);
      bus.on(prefix + channel, fn);
      return async () => {
        bus.off(prefix + channel, fn);
      };
    },
    async ping() {
      open();
    },
    async close() {
      closed = true;
      clearInterval(sweep);
      bus.removeAllListeners();
      data.clear();
    },
  };
}
