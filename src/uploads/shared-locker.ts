import { randomBytes } from 'node:crypto';
import { ERRORS, MemoryLocker, type Lock, type Locker } from '@tus/server';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SharedState } from '../stores/index.js';

export interface SharedLockerOptions {
  /** How long a lock lives without renewal: a process that dies holding one frees it after this. */
  leaseMs?: number;
  /** How long a request waits for another request's lock before tus answers 500 ERR_LOCK_TIMEOUT. */
  acquireTimeoutMs?: number;
  /** Delay between attempts while the lock is held elsewhere. */
  retryMs?: number;
}

const RELEASE_CHANNEL = 'tus-lock-release';
// Delete / extend only while the key still holds our token: a lock that expired and was taken by
// another process must not be freed or prolonged by its former holder.
const UNLOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;

/**
 * The tus locker for the deployment: in-process (tus's MemoryLocker) with the memory shared state,
 * and across gateway processes through Redis otherwise, so a resumed PATCH that lands on another
 * process than the interrupted one still waits for (and asks for) the first one's lock.
 */
export async function createUploadLocker(shared: SharedState, logger: Logger, options: SharedLockerOptions = {}): Promise<{ locker: Locker; close(): Promise<void> }> {
  if (!shared.redis) return { locker: new MemoryLocker({ acquireLockTimeout: options.acquireTimeoutMs ?? 30_000 }), close: async () => {} };
  const locker = new RedisLocker(shared.redis, shared, logger, options);
  await locker.start();
  return { locker, close: () => locker.close() };
}

/**
 * One Redis key per upload (SET NX PX with a random token, renewed while held). A request that finds
 * the lock taken publishes the upload id; the process holding it calls tus's requestRelease, which
 * ends the holder's PATCH after saving its progress, as the tus locking recommendation asks.
 */
export class RedisLocker implements Locker {
  readonly held = new Map<string, { requestRelease: () => Promise<void> | void }>();
  readonly #o: Required<SharedLockerOptions>;
  #unsubscribe?: () => Promise<void>;

  constructor(
    readonly redis: Redis,
    readonly shared: SharedState,
    readonly logger: Logger,
    options: SharedLockerOptions = {},
  ) {
    // The lease is well under the wait, so a request outlasts the lock of a process that died.
    this.#o = { leaseMs: 10_000, acquireTimeoutMs: 30_000, retryMs: 50, ...options };
  }

  async start(): Promise<void> {
    this.#unsubscribe = await this.shared.subscribe(RELEASE_CHANNEL, (id) => {
      const holder = this.held.get(id);
      if (holder) void Promise.resolve(holder.requestRelease()).catch((err: unknown) => this.logger.warn({ err, uploadId: id }, 'uploads: release request failed'));
    });
  }

  async close(): Promise<void> {
    await this.#unsubscribe?.().catch(() => {});
  }

  newLock(id: string): Lock {
    return new RedisLock(this, id, this.#o);
  }
}

class RedisLock implements Lock {
  readonly #token = randomBytes(16).toString('hex');
  readonly #key: string;
  #renewal?: NodeJS.Timeout;

  constructor(
    private readonly locker: RedisLocker,
    private readonly id: string,
    private readonly o: Required<SharedLockerOptions>,
  ) {
    this.#key = `tus-lock:${id}`;
  }

  async lock(signal: AbortSignal, requestRelease: () => Promise<void> | void): Promise<void> {
    const deadline = Date.now() + this.o.acquireTimeoutMs;
    let asked = false;
    while (!signal.aborted && Date.now() < deadline) {
      if ((await this.locker.redis.set(this.#key, this.#token, 'PX', this.o.leaseMs, 'NX')) === 'OK') {
        this.locker.held.set(this.id, { requestRelease });
        this.#renewal = setInterval(() => void this.#renew(), Math.max(100, Math.floor(this.o.leaseMs / 3)));
        this.#renewal.unref();
        return;
      }
      if (!asked) {
        // Whoever holds it (here or in another process) is asked once to let go.
        await this.locker.shared.publish(RELEASE_CHANNEL, this.id);
        asked = true;
      }
      await new Promise((r) => setTimeout(r, this.o.retryMs));
    }
    throw ERRORS.ERR_LOCK_TIMEOUT;
  }

  async unlock(): Promise<void> {
    clearInterval(this.#renewal);
    this.locker.held.delete(this.id);
    await this.locker.redis.eval(UNLOCK, 1, this.#key, this.#token);
  }

  async #renew(): Promise<void> {
    try {
      const kept = await this.locker.redis.eval(RENEW, 1, this.#key, this.#token, String(this.o.leaseMs));
      if (kept === 0) {
        clearInterval(this.#renewal);
        this.locker.logger.warn({ uploadId: this.id }, 'uploads: lost an upload lock (its lease ran out); the request is asked to stop');
        await this.locker.held.get(this.id)?.requestRelease();
      }
    } catch (err) {
      this.locker.logger.warn({ err, uploadId: this.id }, 'uploads: could not renew an upload lock');
    }
  }
}
