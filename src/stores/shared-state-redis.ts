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

// Compare-and-set over KEYS[1..n] (n = ARGV[1]; ARGV[2i] is 1 when key i must hold ARGV[2i+1], 0
// when it must be absent), then SET ... PX for the remaining keys (value and ttl per key). Answers
// {1}, or {0, current values...} without writing.
const CAS_LUA = `
local n = tonumber(ARGV[1])
local current = {}
local same = true
for i = 1, n do
  local v = redis.call('GET', KEYS[i])
  current[i] = v
  if ARGV[2 * i] == '1' then
    if v ~= ARGV[2 * i + 1] then same = false end
  elseif v then
    same = false
  end
end
if not same then
  local out = {0}
  for i = 1, n do out[i + 1] = current[i] end
  return out
end
local a = 2 * n + 2
for k = n + 1, #KEYS do
  redis.call('SET', KEYS[k], ARGV[a], 'PX', ARGV[a + 1])
  a = a + 2
end
return {1}`;

type CasReply = Array<number | string | null>;
type WeirRedis = Redis & {
  weirIncrByTtl(key: string, by: number, ttlMs: number): Promise<number>;
  weirCompareAndSet(numKeys: number, ...keysAndArgs: Array<string | number>): Promise<CasReply>;
};
type CasPipeline = ReturnType<Redis['pipeline']> & { weirCompareAndSet(numKeys: number, ...keysAndArgs: Array<string | number>): CasPipeline };

/**
 * Sends compare-and-sets to Redis in pipelines, one batch at a time: those asked for while a batch
 * is out go together once it is answered, as do those of one turn of the event loop. Under load
 * that is one write on the socket for many (per-command syscalls were most of their cost); each
 * is still its own script call, atomic and answered on its own.
 */
function casBatcher(redis: WeirRedis): (numKeys: number, keysAndArgs: Array<string | number>) => Promise<CasReply> {
  type Pending = { numKeys: number; keysAndArgs: Array<string | number>; resolve(r: CasReply): void; reject(e: unknown): void };
  let queue: Pending[] = [];
  let busy = false; // a batch is scheduled or out
  const flush = (): void => {
    const batch = queue;
    queue = [];
    if (batch.length === 0) {
      busy = false;
      return;
    }
    const pipeline = redis.pipeline() as CasPipeline;
    for (const c of batch) pipeline.weirCompareAndSet(c.numKeys, ...c.keysAndArgs);
    pipeline.exec().then(
      (results) =>
        batch.forEach((c, i) => {
          const [err, reply] = results?.[i] ?? [new Error('shared: no reply from Redis')];
          if (err) c.reject(err);
          else c.resolve(reply as CasReply);
        }),
      (err: unknown) => batch.forEach((c) => c.reject(err)),
    ).finally(flush);
  };
  return (numKeys, keysAndArgs) =>
    new Promise((resolve, reject) => {
      queue.push({ numKeys, keysAndArgs, resolve, reject });
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
  redis.defineCommand('weirCompareAndSet', { lua: CAS_LUA });
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
      // KEYS: the expected keys, then the written ones; ARGV: as CAS_LUA reads them.
      const keysAndArgs: Array<string | number> = [];
      for (const [key] of expected) keysAndArgs.push(key);
      for (const w of writes) keysAndArgs.push(w.key);
      keysAndArgs.push(expected.length);
      for (const [, value] of expected) keysAndArgs.push(value === null ? 0 : 1, value ?? '');
      for (const w of writes) keysAndArgs.push(w.value, w.ttlMs);
      const [ok, ...current] = await casBatched(expected.length + writes.length, keysAndArgs);
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
