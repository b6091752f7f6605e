import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import type { StoreConfig } from '../../src/stores/index.js';
import { repoRoot } from '../helpers/server-process.js';

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

/** `npm run weir -- <args>` against the given environment; resolves with its exit code and output. */
export async function weirCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, LOG_LEVEL: 'silent', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
  logs: Record<string, unknown>[];
  stop(): Promise<number | null>;
}

/** Runs a gateway entry script (such as fixtures/serve-with-resources.ts) as its own process and waits until it listens. */
export async function spawnGateway(entry: string, env: Record<string, string>): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: repoRoot,
    env: { ...process.env, NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', LOG_FORMAT: 'json', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start in 60 s:\n${stderr}`)), 60_000);
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
      reject(new Error(`gateway exited with ${code} before listening:\n${stderr}`));
    });
  });
  return {
    url,
    child,
    logs,
    stop: () => {
      if (child.exitCode !== null) return exited;
      child.kill('SIGTERM');
      return exited;
    },
  };
}
