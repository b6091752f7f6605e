import type { Warehouse } from '../stores/index.js';
import type { SessionState } from './sessions.js';

export const HITS_TABLE = 'analytics_hits';
export const SESSIONS_TABLE = 'analytics_sessions';

/**
 * One hits table for every website, in time order per website. No IP address column: the IP is
 * used for the country lookup and dropped before anything is written. `visitor` is 64 bits of a
 * hash of the website and the client (or user) id, never the id itself.
 */
const HITS_DDL = `CREATE TABLE IF NOT EXISTS ${HITS_TABLE} (
  website_id UUID,
  time DateTime64(3, 'UTC'),
  hit_type LowCardinality(String),
  visitor UInt64,
  client_id String,
  user_id String,
  session_id UUID,
  session_hit_number UInt32,
  is_new_visitor UInt8,
  is_interaction UInt8,
  page String,
  hostname String,
  title String,
  referrer String,
  source String,
  medium String,
  campaign String,
  keyword String,
  content String,
  event_category String,
  event_action String,
  event_label String,
  event_value Nullable(UInt32),
  country LowCardinality(String),
  device_type LowCardinality(String),
  browser LowCardinality(String),
  os LowCardinality(String),
  language String,
  screen_resolution String,
  goal_ids Array(String)
) ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (website_id, time)`;

/**
 * One row per session as it stands after its latest hit. Each hit cancels the session's previous
 * row (sign -1) and writes the new one (sign +1), so sums weighted by sign are exact before and
 * after ClickHouse collapses the pairs in the background. The version (the session's hit count)
 * pairs each cancel row with the row it cancels whatever order the rows arrive or sort in: a
 * plain CollapsingMergeTree keeps "the last positive row", which depends on the order within an
 * insert, and could drop the wrong state.
 */
const SESSIONS_DDL = `CREATE TABLE IF NOT EXISTS ${SESSIONS_TABLE} (
  website_id UUID,
  session_id UUID,
  sign Int8,
  version UInt32,
  start_time DateTime64(3, 'UTC'),
  end_time DateTime64(3, 'UTC'),
  visitor UInt64,
  is_new_visitor UInt8,
  hits UInt32,
  pageviews UInt32,
  interactions UInt32,
  entry_page String,
  entry_hostname String,
  referrer String,
  source String,
  medium String,
  campaign String,
  country LowCardinality(String),
  device_type LowCardinality(String),
  browser LowCardinality(String),
  os LowCardinality(String),
  goal_ids Array(String),
  goal_values Array(Float64)
) ENGINE = VersionedCollapsingMergeTree(sign, version)
PARTITION BY toYYYYMM(start_time)
ORDER BY (website_id, start_time, session_id)`;

export async function createAnalyticsTables(warehouse: Warehouse): Promise<void> {
  await warehouse.client.command({ query: HITS_DDL });
  await warehouse.client.command({ query: SESSIONS_DDL });
}

export interface HitRow {
  website_id: string;
  time: string;
  hit_type: string;
  visitor: string;
  client_id: string;
  user_id: string;
  session_id: string;
  session_hit_number: number;
  is_new_visitor: number;
  is_interaction: number;
  page: string;
  hostname: string;
  title: string;
  referrer: string;
  source: string;
  medium: string;
  campaign: string;
  keyword: string;
  content: string;
  event_category: string;
  event_action: string;
  event_label: string;
  event_value: number | null;
  country: string;
  device_type: string;
  browser: string;
  os: string;
  language: string;
  screen_resolution: string;
  goal_ids: string[];
}

export type SessionRow = ReturnType<typeof sessionRow>;

const iso = (ms: number) => new Date(ms).toISOString();

export function sessionRow(websiteId: string, visitor: string, s: SessionState, sign: 1 | -1) {
  return {
    website_id: websiteId,
    session_id: s.id,
    sign,
    version: s.hits,
    start_time: iso(s.start),
    end_time: iso(s.last),
    visitor,
    is_new_visitor: s.newVisitor ? 1 : 0,
    hits: s.hits,
    pageviews: s.pageviews,
    interactions: s.interactions,
    entry_page: s.entryPage,
    entry_hostname: s.entryHostname,
    referrer: s.referrer,
    source: s.traffic.source,
    medium: s.traffic.medium,
    campaign: s.traffic.campaign,
    country: s.country,
    device_type: s.deviceType,
    browser: s.browser,
    os: s.os,
    goal_ids: s.goalIds,
    goal_values: s.goalValues,
  };
}

/** Deletes a website's hits and sessions (a mutation, run in the background by ClickHouse). */
export async function deleteWebsiteData(warehouse: Warehouse, websiteId: string): Promise<void> {
  for (const table of [HITS_TABLE, SESSIONS_TABLE]) {
    await warehouse.client.command({ query: `ALTER TABLE ${table} DELETE WHERE website_id = {w:UUID}`, query_params: { w: websiteId } });
  }
}
