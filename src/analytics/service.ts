import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Principal } from '../gateway/request-types.js';
import type { Stores } from '../stores/index.js';
import { Collector } from './collector.js';
import { openCountryLookup, type CountryLookup } from './geo.js';
import { GroupCommitter } from './group-commit.js';
import { registerJournalMetrics } from './journal-metrics.js';
import type { OpenJournalFile } from './hit-journal.js';
import { RealtimeHub, type TokenAuthenticator } from './realtime-hub.js';
import { SessionTracker } from './sessions.js';
import { SiteLimiter } from './site-limit.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { TrackingDirectory } from './tracking-directory.js';
import { createAnalyticsTables, deleteWebsiteData } from './warehouse-tables.js';
import { WebsiteRepository, type Website } from './websites.js';
import type { UpgradeHandler } from '../datasets/services.js';

export interface AnalyticsOptions {
  /** The clock hits are dated and checked against (tests move it). */
  now?: () => number;
  /** Turns a WebSocket subscription's token into a principal; without it subscriptions are refused. */
  authenticate?: TokenAuthenticator;
  countryOf?: CountryLookup;
  /** The hit journal's file operations (tests inject failures). */
  openJournalFile?: OpenJournalFile;
}

/** The web-analytics capability of one app: websites and goals, tracking, reports and realtime. */
export interface AnalyticsServices {
  websites: WebsiteRepository;
  directory: TrackingDirectory;
  collector: Collector;
  realtime: RealtimeHub;
  stores: Stores;
  config: Config['analytics'];
  now(): number;
  /** Deletes a website (its tracking id stops at once) and its warehouse data in the background. */
  deleteWebsite(principal: Principal, websiteId: string): Promise<void>;
  /** Resolver for authorization: the website's tenant, or undefined when there is none. */
  resolveWebsite(id: string): Promise<{ tenant: string } | undefined>;
  upgradeHandler: UpgradeHandler;
  /** Ships every hit acknowledged so far into the warehouse: reports see them once it resolves. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export async function createAnalyticsServices(
  { config, stores, logger, metrics }: { config: Config; stores: Stores; logger: Logger; metrics: GatewayMetrics },
  options: AnalyticsOptions = {},
): Promise<AnalyticsServices> {
  const log = logger.child({ component: 'analytics' });
  const now = options.now ?? Date.now;
  await createAnalyticsTables(stores.warehouse, { rollups: config.analytics.rollups });
  const websites = new WebsiteRepository(stores.metadata);
  const directory = new TrackingDirectory(websites, stores.shared, config.analytics.siteCacheMs, log);
  await directory.start();
  const realtime = new RealtimeHub({
    warehouse: stores.warehouse,
    shared: stores.shared,
    websites,
    authenticate: options.authenticate,
    intervalMs: config.analytics.realtimeIntervalMs,
    maxBufferedBytes: config.analytics.wsMaxBufferedBytes,
    now,
    logger: log,
  });
  await realtime.start();
  // Hits are acknowledged once journaled; realtime pushes once the shipper made them visible.
  const committer = await GroupCommitter.open(stores.warehouse, {
    maxQueuedRows: config.analytics.maxQueuedHits * 3,
    maxJournalRows: config.analytics.journalMaxRows,
    journalRoot: config.analytics.journalDir ?? path.join(config.dataDir, 'analytics-journal'),
    shipIntervalMs: config.analytics.shipIntervalMs,
    shipBatchRows: config.analytics.shipBatchRows,
    logger: log,
    onShipped: (websiteIds) => {
      for (const id of websiteIds) realtime.changed(id);
    },
    openJournalFile: options.openJournalFile,
  });
  registerJournalMetrics(metrics.registry, committer);
  const collector = new Collector({
    directory,
    sessions: new SessionTracker(stores.shared),
    committer,
    shared: stores.shared,
    countryOf: options.countryOf ?? openCountryLookup(config.analytics.geoipDb),
    siteLimiter: new SiteLimiter(config.analytics.siteRateLimit, { shared: stores.shared, failMode: config.rateLimit.failMode, logger: log, metrics }),
    now,
  });
  const pendingDeletes = new Set<Promise<void>>();
  return {
    websites,
    directory,
    collector,
    realtime,
    stores,
    config: config.analytics,
    now,
    async deleteWebsite(principal, websiteId) {
      const website: Website = await websites.remove(principal.tenant, websiteId);
      await directory.changed(website.trackingId);
      // Hits journaled before the delete go in first, so the delete takes them too.
      const deleting = committer
        .flush()
        .then(() => deleteWebsiteData(stores.warehouse, website.id))
        .catch((err: unknown) => log.error({ err, websiteId }, 'analytics: deleting a website\'s hits failed'))
        .finally(() => pendingDeletes.delete(deleting));
      pendingDeletes.add(deleting);
    },
    async resolveWebsite(id) {
      const website = await websites.findById(id);
      return website && { tenant: website.tenant };
    },
    upgradeHandler: (req, socket, head) => realtime.handleUpgrade(req, socket, head),
    flush: () => committer.flush(),
    async close() {
      await committer.close();
      await realtime.close();
      await directory.close();
      await Promise.all(pendingDeletes);
    },
  };
}
