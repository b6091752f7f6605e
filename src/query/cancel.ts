import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { openWarehouse, type Warehouse } from '../stores/warehouse.js';

/**
 * Stopping a warehouse query when its caller goes away. Aborting the client's request is not
 * enough: a ClickHouse server keeps running a SELECT whose HTTP connection closed (unless told
 * otherwise), and embedded chDB cannot interrupt a running query at all; the abort only settles
 * the JavaScript promise. So each query carries a tag (its `log_comment` setting, visible in
 * `system.processes`) and an abort sends `KILL QUERY` for that tag. A server takes it on any
 * connection; chDB runs one query at a time per connection, so the KILL goes through a second,
 * short-lived connection to the same engine (the data directory is learnt while the first is idle).
 */
const TAG = /^weir-q:[0-9a-f]{24}$/;

export function newQueryTag(): string {
  return `weir-q:${randomBytes(12).toString('hex')}`;
}

const chdbDirs = new WeakMap<Warehouse, Promise<string | undefined>>();

/** For chDB: learn (once) where the engine keeps its data, so a later KILL can open a second connection to it. */
export function prepareCancellation(warehouse: Warehouse): void {
  if (warehouse.kind !== 'chdb' || chdbDirs.has(warehouse)) return;
  chdbDirs.set(
    warehouse,
    warehouse.client
      .query({ query: "SELECT path FROM system.disks WHERE name = 'default'", format: 'JSONEachRow' })
      .then((r) => r.json<{ path: string }>())
      .then((rows) => {
        // The engine's path is <DATA_DIR>/chdb/; openWarehouse takes DATA_DIR.
        const dir = rows[0]?.path.replace(/\/+$/, '');
        return dir && path.basename(dir) === 'chdb' ? path.dirname(dir) : undefined;
      })
      .catch(() => undefined),
  );
}

/**
 * Kills the running queries carrying `tag`. A query that has not reached the engine yet (queued
 * behind another) is not found at first, so the KILL is repeated a few times until one is found.
 * Resolves with how many were killed; never throws (the query's own time limit is the backstop).
 */
export async function killQuery(warehouse: Warehouse, tag: string, logger?: Logger, attempts = 3): Promise<number> {
  if (!TAG.test(tag)) throw new Error(`not a query tag: ${tag}`);
  // No parameters: chDB serialises parameterised queries process-wide, so a KILL with parameters
  // would wait behind the very query it is meant to stop. The tag is ours and checked above.
  const sql = `KILL QUERY WHERE Settings['log_comment'] = '${tag}' ASYNC`;
  let control: Warehouse | undefined;
  try {
    if (warehouse.kind === 'chdb') {
      const dataDir = await chdbDirs.get(warehouse);
      if (!dataDir) return 0;
      control = await openWarehouse({ dataDir, database: warehouse.database, logger: logger ?? pino({ level: 'silent' }) });
    }
    const client = (control ?? warehouse).client;
    for (let i = 0; i < attempts; i++) {
      const killed = (await (await client.query({ query: sql, format: 'JSONEachRow' })).json<unknown>()).length;
      if (killed) return killed;
      await new Promise((r) => setTimeout(r, 100));
    }
    return 0;
  } catch (err) {
    logger?.warn({ err, tag }, 'could not stop a cancelled query; it stops at its time limit');
    return 0;
  } finally {
    await control?.close().catch(() => {});
  }
}

/**
 * Runs `fn` with a tagged `log_comment` setting to pass to every warehouse call it makes, and
 * kills those calls if `signal` aborts first.
 */
export async function cancellable<T>(
  warehouse: Warehouse,
  signal: AbortSignal | undefined,
  fn: (tagSettings: { log_comment: string }) => Promise<T>,
  logger?: Logger,
): Promise<T> {
  signal?.throwIfAborted();
  const tag = newQueryTag();
  if (!signal) return fn({ log_comment: tag });
  prepareCancellation(warehouse);
  const onAbort = () => void killQuery(warehouse, tag, logger);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await fn({ log_comment: tag });
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
