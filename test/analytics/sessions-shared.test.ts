import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { SessionTracker, type SessionHit, type SessionStep } from '../../src/analytics/sessions.js';
import { DIRECT, type TrafficSource } from '../../src/analytics/traffic-source.js';
import { openSharedState, type SharedState } from '../../src/stores/shared-state.js';
import { testRedisUrl } from '../helpers/store-env.js';

const logger = pino({ level: 'silent' });

/** Whether Redis accepts connections: these tests need a real one and are skipped without it. */
function redisReachable(url: string): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname, port: Number(u.port || 6379) }, () => (s.end(), resolve(true)));
    s.setTimeout(1000, () => (s.destroy(), resolve(false)));
    s.on('error', () => resolve(false));
  });
}
const redisUp = await redisReachable(testRedisUrl());

const opened: SharedState[] = [];
afterAll(async () => {
  for (const s of opened) {
    if (s.redis) {
      const keys = await s.redis.keys(`${s.keyPrefix}*`); // SCAN-style patterns get no prefix
      if (keys.length) await s.redis.del(...keys.map((k) => k.slice(s.keyPrefix.length)));
    }
  }
  await Promise.all(opened.map((s) => s.close()));
});

/** Two handles on one store: two Redis connections, or the same in-process map twice. */
async function twoHandles(kind: 'redis' | 'memory'): Promise<[SharedState, SharedState]> {
  const keyPrefix = `weir:t:sessions_shared:${randomBytes(4).toString('hex')}:`;
  if (kind === 'memory') {
    const s = await openSharedState({ keyPrefix, logger });
    opened.push(s);
    return [s, s];
  }
  const pair = await Promise.all([0, 1].map(() => openSharedState({ redisUrl: testRedisUrl(), keyPrefix, logger })));
  opened.push(...pair);
  return [pair[0]!, pair[1]!];
}

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);

function sessionHit(time: number, traffic: TrafficSource = DIRECT): SessionHit {
  return {
    time, hitType: 'pageview', interaction: true, page: '/', hostname: 'shop.example', referrer: '', traffic,
    country: 'ZZ', deviceType: 'desktop', browser: 'Chrome', os: 'Windows', eventCategory: '', eventAction: '', eventLabel: '',
  };
}
const campaign = (name: string): TrafficSource => ({ source: 'newsletter', medium: 'email', campaign: name, keyword: '', content: '' });

for (const kind of ['memory', 'redis'] as const) {
  describe.skipIf(kind === 'redis' && !redisUp)(`shared state compare-and-set (${kind})`, () => {
    it('writes only when every expected key holds its value (null: absent), else answers the current values', async () => {
      const [s] = await twoHandles(kind);
      expect(await s.compareAndSet([['a', null], ['b', null]], [{ key: 'a', value: 'A1', ttlMs: 60_000 }])).toEqual({ ok: true });
      // a is no longer absent: nothing is written, b included.
      expect(await s.compareAndSet([['a', null]], [{ key: 'a', value: 'A2', ttlMs: 60_000 }, { key: 'b', value: 'B', ttlMs: 60_000 }]))
        .toEqual({ ok: false, current: ['A1'] });
      expect(await s.get('b')).toBeNull();
      expect(await s.compareAndSet([['b', 'B'], ['a', 'A1']], [{ key: 'a', value: 'A2', ttlMs: 60_000 }])).toEqual({ ok: false, current: [null, 'A1'] });
      expect(await s.compareAndSet([['a', 'A1'], ['b', null]], [{ key: 'a', value: 'A2', ttlMs: 60_000 }, { key: 'b', value: 'B', ttlMs: 60_000 }]))
        .toEqual({ ok: true });
      expect([await s.get('a'), await s.get('b')]).toEqual(['A2', 'B']);
    });

    it('sets each written key with its own ttl', async () => {
      const [s] = await twoHandles(kind);
      expect(await s.compareAndSet([['short', null]], [{ key: 'short', value: 'x', ttlMs: 60 }, { key: 'long', value: 'y', ttlMs: 60_000 }])).toEqual({ ok: true });
      await new Promise((r) => setTimeout(r, 150));
      expect(await s.get('short')).toBeNull();
      expect(await s.get('long')).toBe('y');
    });

    it('lets exactly one of many concurrent callers expecting the same value win', async () => {
      const [a, b] = await twoHandles(kind);
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).compareAndSet([['race', null]], [{ key: 'race', value: String(i), ttlMs: 60_000 }])));
      expect(results.filter((r) => r.ok)).toHaveLength(1);
    });
  });

  describe.skipIf(kind === 'redis' && !redisUp)(`sessions from two trackers racing on one visitor (${kind})`, () => {
    const VISITORS = 40;
    const HITS = 24;

    /** Every hit of every visitor at once, alternating between the trackers; steps grouped by visitor. */
    async function race(traffic: (hit: number) => TrafficSource): Promise<{ steps: SessionStep[][]; stored: Array<Record<string, unknown> | null> }> {
      const [sa, sb] = await twoHandles(kind);
      const trackers = [new SessionTracker(sa), new SessionTracker(sb)];
      const steps: SessionStep[][] = Array.from({ length: VISITORS }, () => []);
      await Promise.all(
        Array.from({ length: VISITORS * HITS }, async (_, n) => {
          const visitor = n % VISITORS;
          const hit = Math.floor(n / VISITORS);
          const step = await trackers[hit % 2]!.apply('site', `v${visitor}`, 'UTC', sessionHit(T0 + hit, traffic(hit)), []);
          steps[visitor]!.push(step);
        }),
      );
      const stored = await Promise.all(steps.map(async (_, v) => {
        const raw = await sa.get(`an:s:site:v${v}`);
        return raw ? (JSON.parse(raw) as Record<string, unknown>) : null;
      }));
      return { steps, stored };
    }

    it('starts exactly one session per visitor and counts every hit once', async () => {
      const { steps, stored } = await race(() => DIRECT);
      for (const [v, visitorSteps] of steps.entries()) {
        expect(visitorSteps).toHaveLength(HITS);
        expect(new Set(visitorSteps.map((s) => s.current.id)).size).toBe(1);
        // Each hit number exactly once: no two hits were counted from the same state.
        expect(visitorSteps.map((s) => s.hitNumber).sort((a, b) => a - b)).toEqual(Array.from({ length: HITS }, (_, i) => i + 1));
        // Only the first hit starts the session; every later one cancels the row of the state it continued.
        expect(visitorSteps.filter((s) => s.previous === undefined)).toHaveLength(1);
        // The session is the visitor's first.
        expect(visitorSteps.every((s) => s.current.newVisitor)).toBe(true);
        expect(stored[v]).toMatchObject({ id: visitorSteps[0]!.current.id, hits: HITS, pageviews: HITS, newVisitor: true });
      }
    });

    it('marks only the first of a visitor\'s sessions as a new visitor\'s, when racing hits each start one', async () => {
      // Every hit comes from another campaign, so each starts a session of its own.
      const { steps } = await race((hit) => campaign(`c${hit}`));
      for (const visitorSteps of steps) {
        expect(new Set(visitorSteps.map((s) => s.current.id)).size).toBe(HITS);
        expect(visitorSteps.filter((s) => s.current.newVisitor)).toHaveLength(1);
      }
    });
  });
}

describe('session tracker', () => {
  it('continues a session known to another tracker, and starts afresh after forget', async () => {
    const [sa, sb] = await twoHandles('memory');
    const a = new SessionTracker(sa);
    const b = new SessionTracker(sb);
    const first = await a.apply('site', 'v', 'UTC', sessionHit(T0), []);
    const second = await b.apply('site', 'v', 'UTC', sessionHit(T0 + 1000), []);
    // a's own guess (its last state) is now stale: it must retry from b's state, not overwrite it.
    const third = await a.apply('site', 'v', 'UTC', sessionHit(T0 + 2000), []);
    expect([first.hitNumber, second.hitNumber, third.hitNumber]).toEqual([1, 2, 3]);
    expect(new Set([first.current.id, second.current.id, third.current.id]).size).toBe(1);
    expect(third.previous).toMatchObject({ hits: 2 });
    await b.forget('site', 'v');
    const fourth = await a.apply('site', 'v', 'UTC', sessionHit(T0 + 3000), []);
    expect(fourth).toMatchObject({ hitNumber: 1, previous: undefined, current: { newVisitor: false } });
    expect(fourth.current.id).not.toBe(first.current.id);
  });

  it('gives up with 503 when the state keeps changing under it, rather than retrying forever', async () => {
    const [s] = await twoHandles('memory');
    let attempts = 0;
    const contended: SharedState = { ...s, compareAndSet: async (expected) => (attempts++, { ok: false, current: expected.map(() => null) }) };
    const err = await new SessionTracker(contended).apply('site', 'v', 'UTC', sessionHit(T0), []).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503 });
    expect(attempts).toBe(50);
  });

  it('ends a session at local midnight in each website\'s zone', async () => {
    const [s] = await twoHandles('memory');
    const t = new SessionTracker(s);
    // 18:29 and 18:31 UTC are either side of midnight in Asia/Kolkata (UTC+5:30), both on one day in New York.
    const before = Date.UTC(2026, 0, 15, 18, 29);
    const after = Date.UTC(2026, 0, 15, 18, 31);
    const steps = [];
    for (const [zone, time] of [['Asia/Kolkata', before], ['America/New_York', before], ['Asia/Kolkata', after], ['America/New_York', after]] as const) {
      steps.push(await t.apply(`site-${zone}`, 'v', zone, sessionHit(time), []));
    }
    expect(steps.map((st) => [st.current.date, st.hitNumber])).toEqual([['2026-01-15', 1], ['2026-01-15', 1], ['2026-01-16', 1], ['2026-01-15', 2]]);
  });
});
