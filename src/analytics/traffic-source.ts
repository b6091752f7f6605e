import { LruMap } from './lru.js';

/** Where a visit came from: campaign parameters first, else the referrer, else direct. */
export interface TrafficSource {
  source: string;
  medium: string;
  campaign: string;
  keyword: string;
  content: string;
}

export const DIRECT: TrafficSource = { source: '(direct)', medium: '(none)', campaign: '(not set)', keyword: '', content: '' };

const SEARCH_ENGINES: Array<[RegExp, string]> = [
  [/(^|\.)google\.[a-z.]+$/, 'google'],
  [/(^|\.)bing\.com$/, 'bing'],
  [/(^|\.)search\.yahoo\.[a-z.]+$/, 'yahoo'],
  [/(^|\.)duckduckgo\.com$/, 'duckduckgo'],
  [/(^|\.)baidu\.com$/, 'baidu'],
  [/(^|\.)yandex\.[a-z.]+$/, 'yandex'],
  [/(^|\.)ecosia\.org$/, 'ecosia'],
];

export interface CampaignParams {
  cn?: string;
  cs?: string;
  cm?: string;
  ck?: string;
  cc?: string;
  gclid?: string;
}

function fromUrlQuery(location: string | undefined): CampaignParams {
  if (!location || (!location.includes('utm_') && !location.includes('gclid'))) return {};
  try {
    const q = new URL(location).searchParams;
    const get = (k: string) => q.get(k) ?? undefined;
    return { cn: get('utm_campaign'), cs: get('utm_source'), cm: get('utm_medium'), ck: get('utm_term'), cc: get('utm_content'), gclid: get('gclid') };
  } catch {
    return {};
  }
}

// Referrers repeat (search engines, a site's own pages), and parsing a URL is a large part of a hit's cost.
const referrerHosts = new LruMap<string, string | null>(1000);

function hostOf(url: string): string | undefined {
  let host = referrerHosts.get(url);
  if (host === undefined) {
    try {
      host = new URL(url).hostname.toLowerCase();
    } catch {
      host = null;
    }
    referrerHosts.set(url, host);
  }
  return host ?? undefined;
}

/**
 * The hit's traffic source. `ownHosts` says which referrers are the site itself (navigation
 * inside the site is not a new source).
 */
export function trafficSource(params: CampaignParams & { dl?: string; dr?: string }, isOwnHost: (host: string) => boolean): TrafficSource {
  const fromUrl = params.cn || params.cs || params.cm || params.gclid ? params : fromUrlQuery(params.dl);
  if (fromUrl.gclid && !fromUrl.cs) {
    return { source: 'google', medium: 'cpc', campaign: fromUrl.cn || '(not set)', keyword: fromUrl.ck ?? '', content: fromUrl.cc ?? '' };
  }
  if (fromUrl.cn || fromUrl.cs || fromUrl.cm) {
    return {
      source: fromUrl.cs || '(not set)',
      medium: fromUrl.cm || '(not set)',
      campaign: fromUrl.cn || '(not set)',
      keyword: fromUrl.ck ?? '',
      content: fromUrl.cc ?? '',
    };
  }
  const host = params.dr ? hostOf(params.dr) : undefined;
  if (!host || isOwnHost(host)) return DIRECT;
  const engine = SEARCH_ENGINES.find(([re]) => re.test(host));
  if (engine) return { source: engine[1], medium: 'organic', campaign: '(not set)', keyword: '', content: '' };
  return { source: host.replace(/^www\./, ''), medium: 'referral', campaign: '(not set)', keyword: '', content: '' };
}

export const isDirect = (s: TrafficSource) => s.source === DIRECT.source && s.medium === DIRECT.medium;
export const sameSource = (a: TrafficSource, b: TrafficSource) => a.source === b.source && a.medium === b.medium && a.campaign === b.campaign;
