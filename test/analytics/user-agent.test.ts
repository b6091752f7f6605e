import { describe, expect, it } from 'vitest';
import { LruMap } from '../../src/analytics/lru.js';
import { isBotUserAgent, parseUserAgent, USER_AGENT_CACHE_LIMIT, userAgentCacheSize, userAgentInfo } from '../../src/analytics/user-agent.js';

const CHROME_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
const SAFARI_IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1';
const IPAD = 'Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1';
const FIREFOX_LINUX = 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0';
const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';

describe('LruMap', () => {
  it('never holds more than its limit', () => {
    for (const limit of [2, 3, 10]) {
      const m = new LruMap<string, number>(limit);
      for (let i = 0; i < 200; i++) {
        m.set(`k${i}`, i);
        if (i % 3 === 0) m.get(`k${i - 1}`);
        expect(m.size).toBeLessThanOrEqual(limit);
      }
    }
  });

  it('keeps what is used, and evicts what is not', () => {
    const m = new LruMap<string, number>(4);
    m.set('used', 1);
    m.set('unused', 2);
    for (let i = 0; i < 50; i++) {
      expect(m.get('used')).toBe(1);
      m.set(`filler${i}`, i);
    }
    expect(m.get('unused')).toBeUndefined();
    expect(m.get('used')).toBe(1);
    expect(m.get('filler49')).toBe(49);
  });

  it('answers only the value last set for a key, or nothing', () => {
    const m = new LruMap<number, string>(16);
    const truth = new Map<number, string>();
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) % 40;
    for (let i = 0; i < 5000; i++) {
      const key = next();
      const op = next() % 4;
      if (op === 0) {
        m.set(key, `v${i}`);
        truth.set(key, `v${i}`);
      } else if (op === 1) {
        m.delete(key);
        truth.delete(key);
      } else {
        const got = m.get(key);
        if (got !== undefined) expect(got).toBe(truth.get(key));
      }
    }
  });

  it('refuses a limit below 2 or not an integer', () => {
    expect(() => new LruMap(1)).toThrow();
    expect(() => new LruMap(2.5)).toThrow();
  });
});

describe('user agent', () => {
  it('answers each user agent with its own device and bot verdict, from the cache as on the first call', () => {
    const agents = [CHROME_WINDOWS, SAFARI_IPHONE, IPAD, FIREFOX_LINUX, GOOGLEBOT];
    const expected = [
      { bot: false, device: { deviceType: 'desktop', browser: 'Chrome', os: 'Windows' } },
      { bot: false, device: { deviceType: 'mobile', browser: 'Mobile Safari', os: 'iOS' } },
      { bot: false, device: { deviceType: 'tablet', browser: 'Mobile Safari', os: 'iOS' } },
      { bot: false, device: { deviceType: 'desktop', browser: 'Firefox', os: 'Linux' } },
      { bot: true, device: { deviceType: 'desktop', browser: '(unknown)', os: '(unknown)' } },
    ];
    for (let round = 0; round < 3; round++) {
      for (const [i, ua] of agents.entries()) expect(userAgentInfo(ua)).toEqual(expected[i]);
    }
    expect(userAgentInfo('')).toEqual({ bot: false, device: { deviceType: 'desktop', browser: '(unknown)', os: '(unknown)' } });
  });

  it('matches uncached parsing for many distinct user agents, and never holds more than its limit', () => {
    const agents = Array.from({ length: USER_AGENT_CACHE_LIMIT + 500 }, (_, i) =>
      i % 3 === 0 ? `${CHROME_WINDOWS} build/${i}` : i % 3 === 1 ? `${SAFARI_IPHONE} build/${i}` : `MonitorBot/${i}.0 (+https://example.com/bot)`,
    );
    for (const ua of agents) {
      const info = userAgentInfo(ua);
      expect(info.bot).toBe(isBotUserAgent(ua));
      if (!info.bot) expect(info.device).toEqual(parseUserAgent(ua));
    }
    expect(userAgentCacheSize()).toBeLessThanOrEqual(USER_AGENT_CACHE_LIMIT);
    expect(userAgentCacheSize()).toBeGreaterThanOrEqual(USER_AGENT_CACHE_LIMIT / 2);
    // Evicted or not, an earlier user agent is answered correctly again.
    for (const ua of [agents[0]!, agents[1]!, agents.at(-1)!]) {
      const info = userAgentInfo(ua);
      expect(info.bot).toBe(isBotUserAgent(ua));
      if (!info.bot) expect(info.device).toEqual(parseUserAgent(ua));
    }
  });

  it('shares frozen answers, so one hit cannot change another\'s', () => {
    const info = userAgentInfo(CHROME_WINDOWS);
    expect(Object.isFrozen(info) && Object.isFrozen(info.device)).toBe(true);
    expect(() => {
      (info.device as { browser: string }).browser = 'Changed';
    }).toThrow(TypeError);
    expect(userAgentInfo(CHROME_WINDOWS).device.browser).toBe('Chrome');
  });
});
