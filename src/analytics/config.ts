import { resolve } from 'node:path';
import { z } from 'zod';

const SiteLimit = z.object({ burst: z.number().int().min(1).max(10_000_000), rate: z.number().positive().max(10_000_000) }).strict();
export type SiteLimit = z.infer<typeof SiteLimit>;

/** A JSON setting (env text, or an object from the config file, which loadConfig passes as JSON text). */
const json = <T extends z.ZodType>(schema: T) =>
  z.string().transform((text, ctx) => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected JSON' });
      return z.NEVER;
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      ctx.addIssue({ code: 'custom', message: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') });
      return z.NEVER;
    }
    return parsed.data as z.infer<T>;
  });

/** Web-analytics settings, spread into the gateway's settings (src/config.ts). */
export const analyticsSettings = {
  /** A MaxMind-format country database to use instead of the one shipped in @ip-location-db/geo-whois-asn-country-mmdb. */
  ANALYTICS_GEOIP_DB: z.string().min(1).optional(),
  /** A header carrying the visitor's country set by a trusted proxy (e.g. cf-ipcountry); preferred to the IP lookup. */
  ANALYTICS_COUNTRY_HEADER: z.string().regex(/^[A-Za-z0-9-]+$/, 'expected a header name such as cf-ipcountry').optional(),
  ANALYTICS_MAX_QUEUED_HITS: z.coerce.number().int().min(1).max(10_000_000).default(50_000),
  /** Where hits are journaled before they are shipped to the warehouse (default <DATA_DIR>/analytics-journal). */
  ANALYTICS_JOURNAL_DIR: z.string().min(1).optional(),
  /** Journaled rows not yet in the warehouse, at most; beyond it hits are refused with 503. */
  ANALYTICS_JOURNAL_MAX_ROWS: z.coerce.number().int().min(1).max(1_000_000_000).default(1_000_000),
  /** Ship journaled hits once the oldest is this old (ms); 0 ships at once and acknowledges a hit only once it is in the warehouse. */
  ANALYTICS_SHIP_INTERVAL_MS: z.coerce.number().int().min(0).max(600_000).default(1_000),
  /** ... or once this many rows (a hit and its one or two session rows) are waiting. */
  ANALYTICS_SHIP_BATCH_ROWS: z.coerce.number().int().min(1).max(10_000_000).default(50_000),
  ANALYTICS_SITE_CACHE_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
  ANALYTICS_REALTIME_INTERVAL_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  ANALYTICS_WS_MAX_BUFFERED_BYTES: z.coerce.number().int().min(1024).max(1 << 30).default(1 << 20),
  /** Whether inserts maintain the report rollups (materialized views): faster reports, slower inserts. */
  ANALYTICS_ROLLUPS: z.enum(['true', 'false', '1', '0', 'yes', 'no']).default('true').transform((v) => ['true', '1', 'yes'].includes(v)),
  /** Hits a website may send, as a token bucket shared by every gateway process (Redis when configured). */
  ANALYTICS_SITE_RATE_LIMIT: json(SiteLimit).default({ burst: 20_000, rate: 10_000 }),
  /** Other limits by tracking id (`site:UA-…`/`site:WA-…`) or owning tenant (`tenant:<id>`); a site's own entry wins. */
  ANALYTICS_SITE_RATE_LIMIT_OVERRIDES: json(z.record(z.string().regex(/^(site|tenant):.+$/, 'expected "site:<tracking id>" or "tenant:<id>"'), SiteLimit)).default({}),
};

export interface AnalyticsConfig {
  geoipDb?: string;
  countryHeader?: string;
  maxQueuedHits: number;
  /** The journal's directory; undefined: <DATA_DIR>/analytics-journal. */
  journalDir?: string;
  journalMaxRows: number;
  shipIntervalMs: number;
  shipBatchRows: number;
  siteCacheMs: number;
  realtimeIntervalMs: number;
  wsMaxBufferedBytes: number;
  rollups: boolean;
  /** Per-site hit limit; overrides keyed `site:<tracking id>` or `tenant:<id>`. */
  siteRateLimit: { default: SiteLimit; overrides: Record<string, SiteLimit> };
}

type Parsed = z.infer<z.ZodObject<typeof analyticsSettings>>;

export function toAnalyticsConfig(s: Parsed): AnalyticsConfig {
  return {
    geoipDb: s.ANALYTICS_GEOIP_DB,
    countryHeader: s.ANALYTICS_COUNTRY_HEADER?.toLowerCase(),
    maxQueuedHits: s.ANALYTICS_MAX_QUEUED_HITS,
    journalDir: s.ANALYTICS_JOURNAL_DIR && resolve(s.ANALYTICS_JOURNAL_DIR),
    journalMaxRows: s.ANALYTICS_JOURNAL_MAX_ROWS,
    shipIntervalMs: s.ANALYTICS_SHIP_INTERVAL_MS,
    shipBatchRows: s.ANALYTICS_SHIP_BATCH_ROWS,
    siteCacheMs: s.ANALYTICS_SITE_CACHE_MS,
    realtimeIntervalMs: s.ANALYTICS_REALTIME_INTERVAL_MS,
    wsMaxBufferedBytes: s.ANALYTICS_WS_MAX_BUFFERED_BYTES,
    rollups: s.ANALYTICS_ROLLUPS,
    siteRateLimit: { default: s.ANALYTICS_SITE_RATE_LIMIT, overrides: s.ANALYTICS_SITE_RATE_LIMIT_OVERRIDES },
  };
}
