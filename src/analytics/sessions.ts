import { ProblemError } from '../problem.js';
import type { SharedState } from '../stores/index.js';
import type { CasResult } from '../stores/shared-state.js';
import type { GoalContext } from './goal-rules.js';
import { newSessionId } from './ids.js';
import { LruMap } from './lru.js';
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
// Present once the visitor's first session is stored (its value is always '1').
const seenKey = (websiteId: string, visitorKey: string) => `an:v:${websiteId}:${visitorKey}`;
const isPageview = (t: string) => t === 'pageview' || t === 'screenview';

const STATE_TTL_MS = SESSION_TIMEOUT_MS + 60_000;
/** Compare-and-set attempts for one hit before giving up (each retry means another process moved the session meanwhile). */
const MAX_ATTEMPTS = 50;
const KNOWN_STATES = 10_000;

/**
 * Sessions per (website, visitor) in shared state, so every gateway process agrees: a hit more
 * than 30 minutes after the last one, on another local day, or from a new campaign or referrer
 * starts a new session. A hit's step is computed from the state it expects and stored with a
 * compare-and-set, retried from the actual state when another process changed it meanwhile;
 * the first-visit flag is checked and set in the same compare-and-set as the session it starts.
 * Within a process, updates for one visitor are also serialised, so they don't retry each other.
 */
export class SessionTracker {
  readonly #locks = new Map<string, Promise<unknown>>();
  /**
   * The state this process last stored per key: the expected value of the next compare-and-set.
   * For a visitor it doesn't know, the guess is "no session and never seen", so a new visitor's
   * hit takes one round trip; a wrong guess costs one retry.
   */
  readonly #known = new LruMap<string, string>(KNOWN_STATES);

  constructor(private readonly shared: SharedState) {}

  /**
   * Applies a hit and saves the new state. The caller then writes the step's rows; if that fails
   * it must call `forget`, so the next hit starts afresh rather than cancelling a row that never landed.
   */
  async apply(websiteId: string, visitorKey: string, timeZone: string, hit: SessionHit, goals: readonly CompiledGoal[]): Promise<SessionStep> {
    const key = stateKey(websiteId, visitorKey);
    return this.#serialised(key, async () => {
      let stored = this.#known.get(key) ?? null;
      let seen: string | null = null;
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const previous = stored === null ? undefined : (JSON.parse(stored) as SessionState);
        const step = this.#advance(previous, hit, timeZone, goals, seen === null);
        const value = JSON.stringify(step.current);
        const write = { key, value, ttlMs: STATE_TTL_MS };
        const result: CasResult = step.previous
          ? await this.shared.compareAndSet([[key, stored]], [write])
          : await this.shared.compareAndSet(
              [[key, stored], [seenKey(websiteId, visitorKey), seen]],
              seen === null ? [write, { key: seenKey(websiteId, visitorKey), value: '1', ttlMs: FIRST_VISIT_TTL_MS }] : [write],
            );
        if (result.ok) {
          this.#known.set(key, value);
          return step;
        }
        stored = result.current[0] ?? null;
        if (result.current.length > 1) seen = result.current[1] ?? null;
      }
      this.#known.delete(key);
      throw new ProblemError(503, { detail: 'The visitor\'s session changed too often to record the hit; retry shortly.', headers: { 'Retry-After': '1' } });
    });
  }

  async forget(websiteId: string, visitorKey: string): Promise<void> {
    const key = stateKey(websiteId, visitorKey);
    this.#known.delete(key);
    await this.shared.del(key).catch(() => {});
  }

  #advance(previous: SessionState | undefined, hit: SessionHit, timeZone: string, goals: readonly CompiledGoal[], firstVisit: boolean): SessionStep {
    const date = localDate(hit.time, timeZone);
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
        newVisitor: firstVisit,
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
    const before = this.#locks.get(key);
    const run = before ? before.then(fn, fn) : fn();
    const settled = run.catch(() => {});
    this.#locks.set(key, settled);
    try {
      return await run;
    } finally {
      if (this.#locks.get(key) === settled) this.#locks.delete(key);
    }
  }
}

const QUARTER_HOUR_MS = 15 * 60_000;
// Per zone, the local date throughout the latest UTC quarter hour asked for: hits come in time
// order, mostly, and formatting a date is a large part of a session step otherwise.
const localDates = new Map<string, { quarter: number; date: string }>();

function localDate(ms: number, timeZone: string): string {
  const quarter = Math.floor(ms / QUARTER_HOUR_MS);
  const known = localDates.get(timeZone);
  if (known?.quarter === quarter) return known.date;
  const date = localDateHour(ms, timeZone).date;
  const start = quarter * QUARTER_HOUR_MS;
  // Zones whose offset isn't whole quarter hours change date inside a quarter hour: not remembered.
  if (localDateHour(start, timeZone).date === date && localDateHour(start + QUARTER_HOUR_MS - 1, timeZone).date === date) {
    localDates.set(timeZone, { quarter, date });
  }
  return date;
}
