import { isbot } from 'isbot';
import UAParser from 'ua-parser-js';

export interface DeviceInfo {
  deviceType: 'desktop' | 'mobile' | 'tablet';
  browser: string;
  os: string;
}

const UNKNOWN: DeviceInfo = { deviceType: 'desktop', browser: '(unknown)', os: '(unknown)' };
const CACHE_LIMIT = 2000;
// A handful of user agents make up most traffic; parsing is the costliest step of a hit.
const cache = new Map<string, DeviceInfo>();

/** Device type, browser and OS from a user agent (ua-parser-js); ua-parser leaves desktops without a device type. */
export function parseUserAgent(ua: string): DeviceInfo {
  if (!ua) return UNKNOWN;
  const cached = cache.get(ua);
  if (cached) return cached;
  const result = new UAParser(ua).getResult();
  const type = result.device.type;
  const info: DeviceInfo = {
    deviceType: type === 'mobile' || type === 'wearable' ? 'mobile' : type === 'tablet' ? 'tablet' : 'desktop',
    browser: result.browser.name ?? '(unknown)',
    os: result.os.name ?? '(unknown)',
  };
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  cache.set(ua, info);
  return info;
}

/** Crawlers, monitors and headless browsers, by user agent (isbot's maintained pattern list). */
export function isBotUserAgent(ua: string): boolean {
  return ua !== '' && isbot(ua);
}
