import { execFile } from 'node:child_process';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeirClient, WeirProblemError } from '../../generated/sdk/src/index.js';
import { testStoreMode } from '../helpers/store-env.js';
import { repoRoot, startServerProcess, type ServerProcess } from '../helpers/server-process.js';

const run = promisify(execFile);
let server: ServerProcess;
let client: WeirClient;
// The admin API key a first start on an empty store prints once (see README, "First authenticated call").
let apiKey: string;

beforeAll(async () => {
  server = await startServerProcess('e2e-sdk');
  apiKey = (server.logs.find((l) => l.bootstrap) as { bootstrap: { api_key: string } }).bootstrap.api_key;
  client = new WeirClient({ baseUrl: server.url, apiKey });
}, 90_000);
afterAll(async () => {
  if (server?.child.exitCode === null) await server.stop('SIGKILL');
});

describe('the real server, driven by the generated SDK', () => {
  it('answers health and readiness with the stores of this mode', async () => {
    await expect(client.getHealth()).resolves.toMatchObject({ status: 'ok' });
    const ready = await client.getReadiness();
    const real = testStoreMode() === 'real';
    expect(ready.stores.metadata.kind).toBe(real ? 'postgres' : 'pglite');
    expect(ready.stores.shared.kind).toBe(real ? 'redis' : 'memory');
    expect(ready.stores.warehouse.kind).toBe('chdb');
  });

  it('creates a dataset, ingests rows and queries them', async () => {
    const dataset = await client.createDataset({
      body: {
        name: 'e2e_events',
        columns: [
          { name: 'event_time', type: 'timestamp', nullable: false },
          { name: 'region', type: 'string', nullable: false },
          { name: 'amount', type: 'float', nullable: true },
        ],
        time_column: 'event_time',
        sort_key: ['region', 'event_time'],
      },
    });
    const datasetId = dataset.id;
    const ingested = await client.ingestRows({
      params: { datasetId },
      raw: { contentType: 'application/x-ndjson', data: '{"event_time":"2026-01-08T10:00:00Z","region":"eu","amount":2.5}\n{"event_time":"2026-01-08T11:00:00Z","region":"us","amount":4}\n{"event_time":"nope","region":"eu"}\n' },
    });
    expect(ingested).toMatchObject({ accepted: 2, quarantined: 1 });
    const result = await client.queryDataset({ params: { datasetId }, body: { metrics: [{ fn: 'sum', column: 'amount', as: 'total' }], dimensions: ['region'], order_by: [{ column: 'region' }] } });
    expect(result.rows).toEqual([
      { region: 'eu', total: 2.5 },
      { region: 'us', total: 4 },
    ]);
  });

  it('raises a missing resource as a 404 problem with the request id', async () => {
    const err = await client.getDataset({ params: { datasetId: 'ds_01J9ZK3M5X8Q2V7N4B' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeirProblemError);
    expect((err as WeirProblemError).status).toBe(404);
    expect((err as WeirProblemError).problem.operationId).toBe('getDataset');
    expect((err as WeirProblemError).requestId).toMatch(/^[0-9A-Z]{26}$/);
  });

  it('raises a request the spec refuses as a 400 problem pointing at the field', async () => {
    const err = await client.createWebsite({ body: { domain: '', name: 'x' } as never }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeirProblemError);
    expect((err as WeirProblemError).status).toBe(400);
    expect((err as WeirProblemError).problem.errors?.[0]).toMatchObject({ in: 'body' });
  });

  it('works as a package a client project imports', async () => {
    await run(join(repoRoot, 'node_modules/.bin/tsc'), ['-p', join(repoRoot, 'generated/sdk')]);
    const project = join(repoRoot, 'test/.tmp/sdk-client');
    await rm(project, { recursive: true, force: true });
    await mkdir(join(project, 'node_modules/@weir'), { recursive: true });
    await symlink(join(repoRoot, 'generated/sdk'), join(project, 'node_modules/@weir/sdk'), 'dir');
    await writeFile(join(project, 'package.json'), JSON.stringify({ type: 'module', private: true }));
    await writeFile(
      join(project, 'client.js'),
      `import { WeirClient, WeirProblemError } from '@weir/sdk';
const weir = new WeirClient({ baseUrl: process.argv[2], apiKey: process.argv[3] });
const health = await weir.getHealth();
const err = await weir.getDataset({ params: { datasetId: 'ds_01J9ZK3M5X8Q2V7N4B' } }).catch((e) => e);
console.log(JSON.stringify({ health: health.status, problem: err instanceof WeirProblemError ? err.status : String(err) }));
`,
    );
    const { stdout } = await run(process.execPath, [join(project, 'client.js'), server.url, apiKey], { cwd: project });
    expect(JSON.parse(stdout)).toEqual({ health: 'ok', problem: 404 });
  }, 60_000);

  it('shuts down gracefully on SIGTERM', async () => {
    const code = await server.stop('SIGTERM');
    expect(code).toBe(0);
    expect(server.logs.map((l) => l.msg)).toEqual(expect.arrayContaining([expect.stringContaining('shutting down'), 'shutdown complete']));
  });
});
