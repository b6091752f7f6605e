import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Stores } from '../stores/index.js';
import { IngestService } from '../ingest/ingest-service.js';
import { DatasetService } from './service.js';

/** One upgrade route: a WebSocket endpoint's path pattern and what to do with a matching upgrade. */
export type UpgradeHandler = (req: import('node:http').IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => boolean;

/** The dataset, ingest and upload capabilities of one app, made once at boot. */
export interface DataServices {
  datasets: DatasetService;
  ingest: IngestService;
  /** Tried in order for each HTTP upgrade; one that returns true has taken the socket. */
  upgradeHandlers: UpgradeHandler[];
  close(): Promise<void>;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export function createDataServices({ config, stores, logger }: { config: Config; stores: Stores; logger: Logger }): DataServices {
  const datasets = new DatasetService(stores, logger.child({ component: 'datasets' }), {
    purgeGraceMs: config.datasets.purgeGraceDays * DAY_MS,
    purgeSweepMs: 60_000,
  });
  const ingest = new IngestService(stores, datasets, logger.child({ component: 'ingest' }), {
    batchBytes: config.ingest.batchBytes,
    maxInflightBytes: config.ingest.maxInflightBytes,
  });
  return {
    datasets,
    ingest,
    upgradeHandlers: [],
    async close() {
      datasets.close();
    },
  };
}
