import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  ClickHouseLogLevel,
  createClient,
  type ClickHouseClient,
  type ClickHouseSettings,
  type ErrorLogParams,
  type LogParams,
} from '@clickhouse/client';
import type { Logger } from 'pino';

export interface Warehouse {
  readonly kind: 'clickhouse' | 'chdb';
  /** Unqualified table names resolve to `database` on both backends. */
  readonly client: ClickHouseClient;
  readonly database: string;
  /**
   * `INSERT INTO <table> FORMAT <format>` of bytes that are already in that format (one
   * statement, so one part). On chDB the Buffer goes to the engine as is (no JS string is built);
   * on a server it is streamed as the request body.
   */
  insertRaw(table: string, format: RawInsertFormat, data: Buffer | readonly Buffer[], settings?: Record<string, string | number>): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type RawInsertFormat = 'JSONEachRow' | 'JSONCompactEachRow' | 'TabSeparated';

export interface WarehouseOptions {
  clickhouseUrl?: string;
  dataDir: string;
  database: string;
  logger: Logger;
  requestTimeoutMs?: number;
}

type ClientConfig = NonNullable<Parameters<typeof createClient>[0]>;

const DB_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

// Same on both backends: ISO timestamps accepted on insert, 64-bit ints come back as strings in JSON.
const SETTINGS: ClickHouseSettings = {
  date_time_input_format: 'best_effort',
  output_format_json_quote_64bit_integers: 1,
};

export const CHDB_MISSING_MESSAGE =
  'Embedded ClickHouse (chDB) is not installed (it is an optional dependency). Install it with `npm install chdb`, ' +
  'or set CLICKHOUSE_URL to a ClickHouse server such as http://localhost:8123.';

/** "embedded chDB at ./data/chdb" or "ClickHouse at host:port/db" (never the password). */
export function describeWarehouse(opts: Pick<WarehouseOptions, 'clickhouseUrl' | 'dataDir' | 'database'>): string {
  if (!opts.clickhouseUrl) return `embedded chDB at ${path.join(opts.dataDir, 'chdb')} (database ${opts.database})`;
  try {
    const u = new URL(opts.clickhouseUrl);
    return `ClickHouse at ${u.host}/${opts.database}`;
  } catch {
    return 'ClickHouse (unparseable CLICKHOUSE_URL)';
  }
}

/** Routes @clickhouse/client's own logging (console by default) to pino. */
function clientLog(logger: Logger): NonNullable<ClientConfig['log']> {
  const log = logger.child({ component: 'clickhouse-client' });
  const fields = (p: LogParams & { err?: Error }) => ({ module: p.module, args: p.args, err: p.err });
  return {
    level: ClickHouseLogLevel.WARN,
    LoggerClass: class {
      trace(p: LogParams) { log.trace(fields(p), p.message); }
      debug(p: LogParams) { log.debug(fields(p), p.message); }
      info(p: LogParams) { log.info(fields(p), p.message); }
      warn(p: LogParams & { err?: Error }) { log.warn(fields(p), p.message); }
      // Failed requests also reject to the caller, who decides how loud to be.
      error(p: ErrorLogParams) { log.warn(fields(p), p.message); }
    },
  };
}

export async function openWarehouse(opts: WarehouseOptions): Promise<Warehouse> {
  if (!DB_RE.test(opts.database)) {
    throw new Error(`Invalid ClickHouse database name ${JSON.stringify(opts.database)}: expected ${DB_RE.source}`);
  }
  return opts.clickhouseUrl ? openServer(opts, opts.clickhouseUrl) : openChdb(opts);
}

/** chDB's raw passthrough insert (`connection.chdb.rawInsert`): the Buffer is handed to the engine zero-copy. */
type ChdbRawInsert = (params: { table: string; values: Buffer; format: string; settings?: Record<string, string | number> }) => Promise<unknown>;

const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

function wrap(
  kind: Warehouse['kind'],
  client: ClickHouseClient,
  database: string,
  onClose: () => Promise<void>,
  rawInsert?: ChdbRawInsert,
): Warehouse {
  let closed: Promise<void> | undefined;
  return {
    kind,
    client,
    database,
    async insertRaw(table, format, data, settings) {
      if (!IDENT_RE.test(table)) throw new Error(`Invalid table name ${JSON.stringify(table)}`);
      const parts = Buffer.isBuffer(data) ? [data] : (data as readonly Buffer[]);
      if (!parts.some((p) => p.length)) return;
      if (rawInsert) {
        const values = parts.length === 1 ? parts[0]! : Buffer.concat(parts as Buffer[]);
        await rawInsert({ table: `${database}.${table}`, values, format, settings });
        return;
      }
      const result = await client.exec({
        query: `INSERT INTO \`${database}\`.\`${table}\` FORMAT ${format}`,
        values: Readable.from(parts),
        clickhouse_settings: settings as ClickHouseSettings,
      });
      result.stream.resume();
      await new Promise<void>((resolve, reject) => result.stream.once('end', resolve).once('close', resolve).once('error', reject));
    },
    async ping() {
      await client.command({ query: 'SELECT 1' });
    },
    close() {
      closed ??= (async () => {
        try {
          await client.close();
        } finally {
          await onClose();
        }
      })();
      return closed;
    },
  };
}

async function openServer(opts: WarehouseOptions, rawUrl: string): Promise<Warehouse> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new Error('CLICKHOUSE_URL is not a valid URL (expected http[s]://[user:password@]host:port[/database])');
  }
  const request_timeout = opts.requestTimeoutMs ?? 30_000;
  // The URL's database (or "default") is only used to create ours: a client whose database
  // doesn't exist yet can't run CREATE DATABASE.
  const log = clientLog(opts.logger);
  const bootstrap = createClient({ url: url.toString(), request_timeout, clickhouse_settings: SETTINGS, log });
  try {
    await bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${opts.database}` });
  } catch (err) {
    throw new Error(`Could not connect to ${describeWarehouse(opts)}: ${(err as Error).message}`, { cause: err });
  } finally {
    await bootstrap.close();
  }
  url.pathname = '/'; // the URL's database would override `database`
  const client = createClient({ url: url.toString(), database: opts.database, request_timeout, clickhouse_settings: SETTINGS, log });
  return wrap('clickhouse', client, opts.database, async () => {});
}

// chdb is an optional dependency: the image is built with --omit=optional, so tsc must not
// need its types. A non-literal specifier keeps TypeScript from resolving the module.
interface ChdbModule { drainPending(): Promise<void> }
interface ChdbConnectionModule { createChdbConnection(opts: { path: string }): { chdb?: { rawInsert?: ChdbRawInsert } } }
const importOptional = (specifier: string): Promise<unknown> => import(specifier);

// chDB binds one data directory per process.
let chdbOpen: { path: string; refs: number } | undefined;

async function openChdb(opts: WarehouseOptions): Promise<Warehouse> {
  const dir = path.resolve(opts.dataDir, 'chdb');
  if (chdbOpen && chdbOpen.path !== dir) {
    throw new Error(
      `Embedded ClickHouse (chDB) is already open at ${chdbOpen.path} in this process and can only bind one data directory per process; ` +
        `close it before opening ${dir}, or set CLICKHOUSE_URL to use a ClickHouse server.`,
    );
  }
  let chdb: ChdbModule;
  let conn: ChdbConnectionModule;
  try {
    [chdb, conn] = (await Promise.all([importOptional('chdb'), importOptional('chdb/connection')])) as [
      ChdbModule,
      ChdbConnectionModule,
    ];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') throw new Error(CHDB_MISSING_MESSAGE, { cause: err });
    throw new Error(`Embedded ClickHouse (chDB) failed to load: ${(err as Error).message}`, { cause: err });
  }
  await mkdir(dir, { recursive: true });
  // Re-check: another open may have bound a different path while we awaited. No await from here
  // until the path is recorded.
  if (chdbOpen && chdbOpen.path !== dir) return openChdb(opts);

  const connection = conn.createChdbConnection({ path: dir });
  chdbOpen = chdbOpen ? { path: dir, refs: chdbOpen.refs + 1 } : { path: dir, refs: 1 };
  const release = async (): Promise<void> => {
    if (chdbOpen && chdbOpen.path === dir && --chdbOpen.refs > 0) return;
    // Wait until the engine has really let go of the directory, so a later open elsewhere works.
    await chdb.drainPending();
    if (chdbOpen?.path === dir && chdbOpen.refs <= 0) chdbOpen = undefined;
  };
  // `connection` is @clickhouse/client's experimental hook for chDB; its Connection type isn't exported.
  const client = createClient({
    connection: connection as ClientConfig['connection'],
    clickhouse_settings: SETTINGS,
    log: clientLog(opts.logger),
  });
  try {
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${opts.database}` });
    // chDB ignores the client's `database` option; USE sticks for this connection's session.
    await client.command({ query: `USE ${opts.database}` });
  } catch (err) {
    await client.close().catch(() => {});
    await release();
    throw err;
  }
  const rawInsert = connection.chdb?.rawInsert;
  return wrap('chdb', client, opts.database, release, rawInsert);
}
