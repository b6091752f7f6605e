import type { SharedState } from '../stores/index.js';
import type { GoalContext } from './goal-rules.js';
import { newSessionId } from './ids.js';
import { localDateHour } from './timezone.js';
import { isDirect, sameSource, type TrafficSource } from './traffic-source.js';

export const SESSION_TIMEOUT_MS = 30 * 60 * 1000;
const FIRST_VISIT_TTL_MS = 2 * 365 * 24 * 3600 * 1000;

/** A session as it stands after its latest hit; also the shape of its row in the sessions table. */
export interface SessionState {
  id: string;
  start: number;
  last: number;
  /** The start's calendar date in the website's time zone: a session ends at local midnight. */
  date: string;
  hits: number;
  pageviews: number;
  interactions: number;
  newVisitor: boolean;
  entryPage: string;
  entryHostname: string;
  referrer: string;
  traffic: TrafficSource;
  country: string;
  deviceType: string;
  browser: string;
  os: string;
  goalIds: string[];
  goalValues: number[];
}

/** The facts of one hit that sessions and goals need. */
export interface SessionHit {
  time: number;
  hitType: string;
  interaction: boolean;
  page: string;
  hostname: string;
  referrer: string;
  traffic: TrafficSource;
  country: string;
  deviceType: string;
  browser: string;
  os: string;
  eventCategory: string;
  eventAction: string;
  eventLabel: string;
}

export interface CompiledGoal {
  id: string;
  value: number;
  matches(ctx: GoalContext): boolean;
}

export interface SessionStep {
  /** The session before this hit, when the hit continues it: its row must be cancelled. */
  previous?: SessionState;
  current: SessionState;
  hitNumber: number;
  /** Goals this hit completed (each at most once a session). */
  completedGoals: string[];
}

const stateKey = (websiteId: string, visitorKey: string) => `an:s:${websiteId}:${visitorKey}`;
const isPageview = (t: string) => t === 'pageview' || t === 'screenview';

/**
 * Sessions per (website, visitor) in shared state, so every gateway process agrees: a hit more
 * than 30 minutes after the last one, on another local day, or from a new campaign or referrer
 * starts a new session. Updates for one visitor are serialised within a process.
 */
export class SessionTracker {
  readonly #locks = new Map<string, Promise<unknown>>();

  constructor(private readonly shared: SharedState) {}

  /**
   * Applies a hit and saves the new state. The caller then writes the step's rows; if that fails
   * it must call `forget`, so the next hit starts afresh rather than cancelling a row that never landed.
   */
  async apply(websiteId: string, visitorKey: string, timeZone: string, hit: SessionHit, goals: readonly CompiledGoal[]): Promise<SessionStep> {
    const key = stateKey(websiteId, visitorKey);
    return this.#serialised(key, async () => {
      const stored = await this.shared.get(key);
      const previous = stored ? (JSON.parse(stored) as SessionState) : undefined;
      const step = await this.#advance(websiteId, visitorKey, timeZone, previous, hit, goals);
      await this.shared.set(key, JSON.stringify(step.current), SESSION_TIMEOUT_MS + 60_000);
      return step;
    });
  }

  async forget(websiteId: string, visitorKey: string): Promise<void> {
    await this.shared.del(stateKey(websiteId, visitorKey)).catch(() => {});
  }

  async #advance(websiteId: string, visitorKey: string, timeZone: string, previous: SessionState | undefined, hit: SessionHit, goals: readonly CompiledGoal[]): Promise<SessionStep> {
    const date = localDateHour(hit.time, timeZone).date;
    const continues =
      previous !== undefined &&
      hit.time - previous.last <= SESSION_TIMEOUT_MS &&
      previous.date === date &&
      (isDirect(hit.traffic) || sameSource(hit.traffic, previous.traffic));
    let current: SessionState;
    if (continues) {
      current = { ...previous, goalIds: [...previous.goalIds], goalValues: [...previous.goalValues] };
      current.last = Math.max(previous.last, hit.time);
      current.start = Math.min(previous.start, hit.time);
    } else {
      current = {
        id: newSessionId(),
        start: hit.time,
        last: hit.time,
        date,
        hits: 0,
        pageviews: 0,
        interactions: 0,
        newVisitor: await this.shared.setIfAbsent(`an:v:${websiteId}:${visitorKey}`, '1', FIRST_VISIT_TTL_MS),
        entryPage: hit.page,
        entryHostname: hit.hostname,
        referrer: hit.referrer,
        traffic: hit.traffic,
        country: hit.country,
        deviceType: hit.deviceType,
        browser: hit.browser,
        os: hit.os,
        goalIds: [],
        goalValues: [],
      };
    }
    current.hits += 1;
    if (isPageview(hit.hitType)) current.pageviews += 1;
    if (hit.interaction) current.interactions += 1;
    const ctx: GoalContext = {
      hitType: hit.hitType,
      page: hit.page,
      eventCategory: hit.eventCategory,
      eventAction: hit.eventAction,
      eventLabel: hit.eventLabel,
      sessionSeconds: (current.last - current.start) / 1000,
      sessionPageviews: current.pageviews,
    };
    const completedGoals: string[] = [];
    for (const goal of goals) {
      if (current.goalIds.includes(goal.id) || !goal.matches(ctx)) continue;
      current.goalIds.push(goal.id);
      current.goalValues.push(goal.value);
      completedGoals.push(goal.id);
    }
    return { previous: continues ? previous : undefined, current, hitNumber: current.hits, completedGoals };
  }

  async #serialised<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#locks.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const settled = run.catch(() => {});
    this.#locks.set(key, settled);
    try {
      return await run;
    } finally {
      if (this.#locks.get(key) === settled) this.#locks.delete(key);
    }
  }
}
