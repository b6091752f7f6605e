import { Redis } from 'ioredis';
import type { SharedState, SharedStateOptions } from './shared-state.js';
import { redisEndpoint } from './shared-state.js';

const CONNECT_TIMEOUT_MS = 5000;

// INCRBY, setting the expiry only when this call created the key.
const INCR_LUA = `
local created = redis.call('EXISTS', KEYS[1]) == 0
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if created then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v`;

// A batch of compare-and-sets, each decided on its own, in order (a later one sees an earlier one's
// writes). ARGV[1] is the number of CASes; then per CAS: its expected-key count n and write count
// m, then for each expected key 1 and the value it must hold or 0 when it must be absent, then
// value and ttl per written key. KEYS are each CAS's n expected keys then its m written ones, CAS
// after CAS. Answers one entry per CAS: {1} once written, {0, current values...} without writing,
// or the error of a key it cannot read (e.g. WRONGTYPE), without failing the others.
const CAS_BATCH_LUA = `
local count = tonumber(ARGV[1])
local out = {}
local k = 0
local a = 2
for c = 1, count do
  local n = tonumber(ARGV[a])
  local m = tonumber(ARGV[a + 1])
  a = a + 2
  local current = {}
  local same = true
  local failed
  for i = 1, n do
    local v = redis.pcall('GET', KEYS[k + i])
    if type(v) == 'table' then failed = failed or v end
    current[i] = v
    if ARGV[a] == '1' then
      if v ~= ARGV[a + 1] then same = false end
    elseif v then
      same = false
    end
    a = a + 2
  end
  if failed then
    a = a + 2 * m
    out[c] = failed
  elseif same then
    for j = 1, m do
      redis.call('SET', KEYS[k + n + j], ARGV[a], 'PX', ARGV[a + 1])
      a = a + 2
    end
    out[c] = {1}
  else
    a = a + 2 * m
    local reply = {0}
    for i = 1, n do reply[i + 1] = current[i] end
    out[c] = reply
  end
  k = k + n + m
end
return out`;

/** Compare-and-sets per script call: a larger batch goes as several calls, so no script runs long. */
const MAX_CAS_BATCH = 256;

type CasReply = Array<number | string | null>;
type WeirRedis = Redis & {
  weirIncrByTtl(key: string, by: number, ttlMs: number): Promise<number>;
  weirCompareAndSetBatch(numKeys: number, keys: string[], args: Array<string | number>): Promise<CasReply[]>;
};

/** One compare-and-set as CAS_BATCH_LUA reads it: its keys, and its ARGV after the count. */
export interface CasCall {
  keys: string[];
  args: Array<string | number>;
}

/**
 * Sends compare-and-sets to Redis one batch at a time: those asked for while a batch is out go
 * together once it is answered, as do those of one turn of the event loop. A batch is one script
 * call (one ioredis command, one reply) that decides each compare-and-set atomically and on its
 * own, in order; a failed call fails each of its compare-and-sets.
 */
export function casBatcher(redis: Pick<WeirRedis, 'weirCompareAndSetBatch'>): (cas: CasCall) => Promise<CasReply> {
  type Pending = CasCall & { resolve(r: CasReply): void; reject(e: unknown): void };
  let queue: Pending[] = [];
  let busy = false; // a batch is scheduled or out
  const send = (batch: Pending[]): Promise<void> => {
    const keys: string[] = [];
    const args: Array<string | number> = [batch.length];
    for (const c of batch) {
      for (const key of c.keys) keys.push(key);
      for (const arg of c.args) args.push(arg);
    }
    return redis.weirCompareAndSetBatch(keys.length, keys, args).then(
      (replies) => {
        for (let i = 0; i < batch.length; i++) {
          const reply: unknown = Array.isArray(replies) ? replies[i] : undefined;
          if (Array.isArray(reply)) batch[i]!.resolve(reply as CasReply);
          else batch[i]!.reject(reply instanceof Error ? reply : new Error('shared: unexpected compare-and-set reply from Redis'));
        }
      },
      (err: unknown) => {
        for (const c of batch) c.reject(err);
      },
    );
  };
  const flush = (): void => {
    const batch = queue;
    queue = [];
    if (batch.length === 0) {
      busy = false;
      return;
    }
    const sent: Promise<void>[] = [];
    for (let i = 0; i < batch.length; i += MAX_CAS_BATCH) sent.push(send(batch.length <= MAX_CAS_BATCH ? batch : batch.slice(i, i + MAX_CAS_BATCH)));
    void Promise.all(sent).finally(flush);
  };
  return (cas) =>
    new Promise((resolve, reject) => {
      queue.push({ keys: cas.keys, args: cas.args, resolve, reject });
      if (!busy) {
        busy = true;
        setImmediate(flush);
      }
    });
}

async function connect(client: Redis, endpoint: string, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      }),
    ]);
  } catch (err) {
    client.disconnect();
    throw new Error(`Could not connect to Redis at ${endpoint} (${what}): ${(err as Error).message}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  // Queue commands only during the first connect; afterwards an outage fails calls fast
  // so callers can choose to fail open or closed.
  client.options.enableOfflineQueue = false;
}

function watch(client: Redis, opts: SharedStateOptions, endpoint: string, what: string): void {
  let down = false;
  client.on('error', (err: Error) => {
    // ioredis emits an error for every failed reconnect attempt; log the first one loudly.
    if (down) opts.logger.debug({ err, endpoint }, `shared: Redis ${what} connection error`);
    else opts.logger.error({ err, endpoint }, `shared: Redis ${what} connection error`);
    down = true;
  });
  client.on('reconnecting', (delayMs: number) => {
    down = true;
    opts.logger.warn({ endpoint, delayMs }, `shared: reconnecting to Redis (${what})`);
  });
  client.on('ready', () => {
    if (down) opts.logger.info({ endpoint }, `shared: reconnected to Redis (${what})`);
    down = false;
  });
}

export async function openRedisSharedState(opts: SharedStateOptions & { redisUrl: string }): Promise<SharedState> {
  const endpoint = redisEndpoint(opts.redisUrl);
  const prefix = opts.keyPrefix;
  const redis = new Redis(opts.redisUrl, {
    keyPrefix: prefix,
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 2,
    commandTimeout: opts.commandTimeoutMs ?? 2000,
  }) as WeirRedis;
  watch(redis, opts, endpoint, 'commands');
  redis.defineCommand('weirIncrByTtl', { numberOfKeys: 1, lua: INCR_LUA });
  // numberOfKeys left out: each call passes its batch's key count first.
  redis.defineCommand('weirCompareAndSetBatch', { lua: CAS_BATCH_LUA });
  const casBatched = casBatcher(redis);
  await connect(redis, endpoint, 'commands');

  // Subscriber connection, created on first subscribe. Channels are prefixed here:
  // ioredis' keyPrefix applies to keys only.
  let sub: Promise<Redis> | undefined;
  const handlers = new Map<string, { fns: Set<(m: string) => void>; ready: Promise<unknown> }>();
  const subscriber = (): Promise<Redis> => {
    sub ??= (async () => {
      const s = redis.duplicate({ keyPrefix: '', lazyConnect: true, enableOfflineQueue: true });
      watch(s, opts, endpoint, 'subscriber');
      s.on('message', (channel: string, message: string) => {
        for (const fn of handlers.get(channel)?.fns ?? []) {
          try {
            fn(message);
          } catch (err) {
            opts.logger.error({ err, channel }, 'shared: subscriber handler threw');
          }
        }
      });
      await connect(s, endpoint, 'subscriber');
      return s;
    })().catch((err: unknown) => {
      sub = undefined;
      throw err;
    });
    return sub;
  };

  let closed: Promise<void> | undefined;
  const quit = async (c: Redis): Promise<void> => {
    try {
      await c.quit();
    } catch {
      c.disconnect();
    }
  };

  return {
    kind: 'redis',
    keyPrefix: prefix,
    redis,
    get: (key) => redis.get(key),
    async set(key, value, ttlMs) {
      if (ttlMs === undefined) await redis.set(key, value);
      else await redis.set(key, value, 'PX', ttlMs);
    },
    async setIfAbsent(key, value, ttlMs) {
      return (await redis.set(key, value, 'PX', ttlMs, 'NX')) === 'OK';
    },
    async del(key) {
      await redis.del(key);
    },
    async compareAndSet(expected, writes) {
      for (const w of writes) if (!Number.isInteger(w.ttlMs) || w.ttlMs <= 0) throw new Error(`ttlMs must be a positive integer, got ${w.ttlMs}`);
      // KEYS: the expected keys, then the written ones; ARGV: as CAS_BATCH_LUA reads them.
      const keys: string[] = [];
      for (const [key] of expected) keys.push(key);
      for (const w of writes) keys.push(w.key);
      const args: Array<string | number> = [expected.length, writes.length];
      for (const [, value] of expected) args.push(value === null ? 0 : 1, value ?? '');
      for (const w of writes) args.push(w.value, w.ttlMs);
      const [ok, ...current] = await casBatched({ keys, args });
      return ok === 1 ? { ok: true } : { ok: false, current: current.map((v) => (v === null ? null : String(v))) };
    },
    async incrBy(key, by, ttlMs) {
      if (ttlMs === undefined) return redis.incrby(key, by);
      return Number(await redis.weirIncrByTtl(key, by, ttlMs));
    },
    async publish(channel, message) {
      await redis.publish(prefix + channel, message);
    },
    async subscribe(channel, onMessage) {
      const full = prefix + channel;
      const s = await subscriber();
      const fn = (m: string): void => onMessage(m); // distinct identity per subscription
      let entry = handlers.get(full);
      if (!entry) {
        const created = { fns: new Set<(m: string) => void>(), ready: s.subscribe(full) };
        entry = created;
        handlers.set(full, created);
        created.ready.catch(() => {
          if (handlers.get(full) === created) handlers.delete(full);
        });
      }
      entry.fns.add(fn);
      await entry.ready;
      const current = entry;
      return async () => {
        current.fns.delete(fn);
        if (current.fns.size === 0 && handlers.get(full) === current) {
          handlers.delete(full);
          await s.unsubscribe(full);
        }
      };
    },
    async ping() {
      await redis.ping();
    },
    close() {
      closed ??= (async () => {
        const s = sub ? await sub.catch(() => undefined) : undefined;
        handlers.clear();
        await Promise.all([quit(redis), s ? quit(s) : Promise.resolve()]);
      })();
      return closed;
    },
  };
}
