import { z } from 'zod';

/** Web-analytics settings, spread into the gateway's settings (src/config.ts). */
export const analyticsSettings = {
  /** A MaxMind-format country database to use instead of the one shipped in @ip-location-db/geo-whois-asn-country-mmdb. */
  ANALYTICS_GEOIP_DB: z.string().min(1).optional(),
  /** A header carrying the visitor's country set by a trusted proxy (e.g. cf-ipcountry); preferred to the IP lookup. */
  ANALYTICS_COUNTRY_HEADER: z.string().regex(/^[A-Za-z0-9-]+$/, 'expected a header name such as cf-ipcountry').optional(),
  ANALYTICS_MAX_QUEUED_HITS: z.coerce.number().int().min(1).max(10_000_000).default(50_000),
  ANALYTICS_SITE_CACHE_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
  ANALYTICS_REALTIME_INTERVAL_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  ANALYTICS_WS_MAX_BUFFERED_BYTES: z.coerce.number().int().min(1024).max(1 << 30).default(1 << 20),
};

export interface AnalyticsConfig {
  geoipDb?: string;
  countryHeader?: string;
  maxQueuedHits: number;
  siteCacheMs: number;
  realtimeIntervalMs: number;
  wsMaxBufferedBytes: number;
}

type Parsed = z.infer<z.ZodObject<typeof analyticsSettings>>;

export function toAnalyticsConfig(s: Parsed): AnalyticsConfig {
  return {
    geoipDb: s.ANALYTICS_GEOIP_DB,
    countryHeader: s.ANALYTICS_COUNTRY_HEADER?.toLowerCase(),
    maxQueuedHits: s.ANALYTICS_MAX_QUEUED_HITS,
    siteCacheMs: s.ANALYTICS_SITE_CACHE_MS,
    realtimeIntervalMs: s.ANALYTICS_REALTIME_INTERVAL_MS,
    wsMaxBufferedBytes: s.ANALYTICS_WS_MAX_BUFFERED_BYTES,
  };
}
