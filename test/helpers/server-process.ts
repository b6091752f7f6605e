import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StoreConfig } from '../../src/stores/index.js';
import { testStoreConfig } from './store-env.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '../..');

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Every JSON log line the server printed so far. */
  logs: Record<string, unknown>[];
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** A gateway entry point that trusts test principal headers (see test/helpers/test-principal.ts). */
export const TEST_SERVER_ENTRY = 'test/helpers/test-server-main.ts';

/** The environment that points a gateway process (or the CLI) at these stores. */
export function storeEnv(c: StoreConfig): Record<string, string> {
  return {
    DATA_DIR: c.dataDir,
    DATABASE_SCHEMA: c.databaseSchema,
    CLICKHOUSE_DATABASE: c.clickhouseDatabase,
    REDIS_KEY_PREFIX: c.redisKeyPrefix,
    ...(c.databaseUrl && { DATABASE_URL: c.databaseUrl }),
    ...(c.redisUrl && { REDIS_URL: c.redisUrl }),
  };
}

/**
 * Starts `src/main.ts` (or `options.entry`) as its own process on a free port, with isolated
 * stores, and waits until it listens. Pass `options.stores` to restart on the stores of an
 * earlier process (e.g. after killing it).
 */
export async function startServerProcess(
  name: string,
  env: Record<string, string> = {},
  options: { entry?: string; stores?: StoreConfig } = {},
): Promise<ServerProcess> {
  return spawnServer(options.entry ?? 'src/main.ts', { ...storeEnv(options.stores ?? testStoreConfig(name)), ...env });
}

/** Runs a gateway entry script with `env` as its own process and waits until it listens. */
export async function spawnServer(entry: string, env: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, entry)], {
    cwd: repoRoot,
    env: { ...process.env, NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', LOG_FORMAT: 'json', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s:\n${stderr}`)), 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (typeof entry.url === 'string' && String(entry.msg).startsWith('Weir is listening')) {
          clearTimeout(timer);
          resolve(entry.url);
        }
      } catch {
        // not a log line
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${stderr}`));
    });
  });
  return {
    url,
    child,
    logs,
    stop: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
