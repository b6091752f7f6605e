import { isbot } from 'isbot';
import UAParser from 'ua-parser-js';
import { LruMap } from './lru.js';

export interface DeviceInfo {
  deviceType: 'desktop' | 'mobile' | 'tablet';
  browser: string;
  os: string;
}

/** What a hit needs to know about its user agent. */
export interface UserAgentInfo {
  bot: boolean;
  /** Not parsed for bots (their hits are dropped). */
  device: DeviceInfo;
}

const UNKNOWN: DeviceInfo = Object.freeze({ deviceType: 'desktop', browser: '(unknown)', os: '(unknown)' });
const NO_AGENT: UserAgentInfo = Object.freeze({ bot: false, device: UNKNOWN });
export const USER_AGENT_CACHE_LIMIT = 2000;
// A handful of user agents make up most traffic, and parsing is the costliest step of a hit.
const cache = new LruMap<string, UserAgentInfo>(USER_AGENT_CACHE_LIMIT);

/** Device type, browser and OS from a user agent (ua-parser-js); ua-parser leaves desktops without a device type. */
export function parseUserAgent(ua: string): DeviceInfo {
  if (!ua) return UNKNOWN;
  const result = new UAParser(ua).getResult();
  const type = result.device.type;
  return {
    deviceType: type === 'mobile' || type === 'wearable' ? 'mobile' : type === 'tablet' ? 'tablet' : 'desktop',
    browser: result.browser.name ?? '(unknown)',
    os: result.os.name ?? '(unknown)',
  };
}

/** Crawlers, monitors and headless browsers, by user agent (isbot's maintained pattern list). */
export function isBotUserAgent(ua: string): boolean {
  return ua !== '' && isbot(ua);
}

/** Whether the user agent is a bot and, if not, its device: cached per user-agent string (LRU). */
export function userAgentInfo(ua: string): UserAgentInfo {
  if (!ua) return NO_AGENT;
  let info = cache.get(ua);
  if (!info) {
    const bot = isBotUserAgent(ua);
    // Frozen: every hit with this user agent shares the object.
    info = Object.freeze({ bot, device: bot ? UNKNOWN : Object.freeze(parseUserAgent(ua)) });
    cache.set(ua, info);
  }
  return info;
}

/** Entries in the user-agent cache (for tests). */
export const userAgentCacheSize = (): number => cache.size;
