import { hash as digest, randomBytes } from 'node:crypto';
import { ProblemError } from '../problem.js';
import type { SharedState } from '../stores/index.js';
import type { CountryLookup } from './geo.js';
import type { GroupCommitter } from './group-commit.js';
import { parseHit, type MpHit } from './hit.js';
import { hostnameAllowed } from './hostnames.js';
import type { SiteLimiter } from './site-limit.js';
import type { SessionHit, SessionTracker } from './sessions.js';
import type { TrackingDirectory } from './tracking-directory.js';
import { trafficSource } from './traffic-source.js';
import { userAgentInfo } from './user-agent.js';
import { sessionRow, type HitRow, type SessionRow } from './warehouse-tables.js';

export type DropReason = 'unknown_tracking_id' | 'hostname_not_allowed' | 'bot' | 'invalid_hit' | 'hit_too_large' | 'too_old' | 'rate_limited';
export interface TrackingError {
  index: number;
  reason: DropReason;
  detail: string;
  /** For rate_limited: seconds until the website's bucket has room again (not sent to clients). */
  retryAfterS?: number;
}

/** Where a request came from. The IP is only read for the country lookup and the no-cid fallback. */
export interface HitOrigin {
  ip: string;
  userAgent: string;
  /** A trusted proxy's country header (e.g. CF-IPCountry), when configured. */
  country?: string;
}

/** One hit of a request: its parameters, the hit they parsed to, or why it was refused before parsing (too large). */
export type HitInput = { index: number; params: Record<string, unknown> } | { index: number; hit: MpHit } | { index: number; error: TrackingError };

export interface CollectorOptions {
  directory: TrackingDirectory;
  sessions: SessionTracker;
  committer: GroupCommitter;
  shared: SharedState;
  countryOf: CountryLookup;
  /** The per-website hit limit; without it, websites are not limited. */
  siteLimiter?: SiteLimiter;
  now?: () => number;
}

const MAX_AGE_MS = 4 * 3600 * 1000;
const MAX_FUTURE_MS = 5 * 60 * 1000;

const hash = (text: string) => digest('sha256', text, 'hex').slice(0, 32);
const dropped = (index: number, reason: DropReason, detail: string): TrackingError => ({ index, reason, detail });

function urlParts(location: string | undefined): { path?: string; host?: string } {
  if (!location) return {};
  try {
    const u = new URL(location);
    return { path: u.pathname + u.search, host: u.hostname };
  } catch {
    return {};
  }
}

/**
 * The tracking pipeline: check, enrich (device, browser, OS, country; bots dropped), place in a
 * session, match goals, and commit through the group committer. Hits that can't be recorded are
 * reported with a reason, never thrown; only a full queue or a failed insert throws (503).
 */
export class Collector {
  readonly #now: () => number;
  #salt?: { day: string; value: Promise<string> };

  constructor(private readonly o: CollectorOptions) {
    this.#now = o.now ?? Date.now;
  }

  /**
   * Records a request's hits. With `single` (POST/GET /collect), a hit refused by its website's
   * rate limit throws 429 with Retry-After instead of being reported as failed.
   */
  async collect(inputs: HitInput[], origin: HitOrigin, options: { single?: boolean } = {}): Promise<{ received: number; errors: TrackingError[] }> {
    const errors: TrackingError[] = [];
    const hits: HitRow[] = [];
    const sessions: SessionRow[] = [];
    const receivedAt = this.#now();
    // In order, so one visitor's hits in a batch build their session in sequence.
    for (const input of inputs) {
      if ('error' in input) {
        errors.push(input.error);
        continue;
      }
      const outcome = await this.#prepare(input, origin, receivedAt);
      if ('reason' in outcome) {
        if (outcome.reason === 'rate_limited' && options.single) {
          const retryAfter = String(outcome.retryAfterS ?? 1);
          throw new ProblemError(429, { detail: outcome.detail, headers: { 'Retry-After': retryAfter }, extra: { reason: 'rate_limited' } });
        }
        errors.push(outcome);
        continue;
      }
      hits.push(outcome.hit);
      sessions.push(...outcome.sessions);
    }
    if (hits.length) {
      try {
        await this.o.committer.write(hits, sessions);
      } catch (err) {
        await Promise.all(hits.map((h) => this.o.sessions.forget(h.website_id, h.visitor)));
        throw err;
      }
    }
    if (errors.length === 0) return { received: hits.length, errors };
    return { received: hits.length, errors: errors.sort((a, b) => a.index - b.index).map(({ retryAfterS: _r, ...e }) => e) };
  }

  async #prepare(input: { index: number; params: Record<string, unknown> } | { index: number; hit: MpHit }, origin: HitOrigin, receivedAt: number): Promise<TrackingError | { hit: HitRow; sessions: SessionRow[] }> {
    const index = input.index;
    let hit: MpHit;
    if ('hit' in input) hit = input.hit;
    else {
      let params = input.params;
      if (params.cid === undefined && params.uid === undefined && params.__derive_cid) {
        params = { ...params, cid: await this.#derivedClientId(origin, String(params.tid)) };
      }
      const parsed = parseHit(params);
      if (!parsed.ok) return dropped(index, 'invalid_hit', parsed.detail);
      hit = parsed.hit;
    }
    const tracked = await this.o.directory.lookup(hit.tid);
    if (!tracked) return dropped(index, 'unknown_tracking_id', `No website has tracking id ${hit.tid}.`);
    const { website, goals } = tracked;
    const agent = userAgentInfo(hit.ua ?? origin.userAgent);
    if (agent.bot) return dropped(index, 'bot', 'The user agent is a known bot or crawler.');
    const location = urlParts(hit.dl);
    const hostname = (hit.dh ?? location.host ?? '').toLowerCase();
    if (!hostnameAllowed(hostname, website.allowedHostnames)) {
      return dropped(index, 'hostname_not_allowed', `Host name ${hostname} is not allowed for this website.`);
    }
    const time = hit.timestamp ?? receivedAt - (hit.qt ?? 0);
    if (receivedAt - time > MAX_AGE_MS) return dropped(index, 'too_old', 'The hit happened more than 4 hours ago.');
    if (time - receivedAt > MAX_FUTURE_MS) return dropped(index, 'invalid_hit', 'The hit is dated more than 5 minutes in the future.');
    // Last of the checks: only hits that would be recorded spend the website's tokens.
    if (this.o.siteLimiter) {
      const decision = await this.o.siteLimiter.take(website);
      if (!decision.allowed) return { index, reason: 'rate_limited', detail: decision.detail, retryAfterS: decision.retryAfterS };
    }

    const device = agent.device;
    const country = origin.country ?? this.o.countryOf(hit.uip ?? origin.ip);
    const traffic = trafficSource(hit, (host) => host === hostname || matchesOwn(host, website.domain) || website.allowedHostnames.some((own) => matchesOwn(host, own)));
    const page = hit.dp ?? location.path ?? '/';
    const idDigest = digest('sha256', `${website.id}:${hit.uid ? `u:${hit.uid}` : `c:${hit.cid}`}`, 'buffer');
    // 64 bits of the hash, as the decimal text of a UInt64: distinct counts over integers are several times faster than over strings.
    const visitor = idDigest.readBigUInt64BE(0).toString();
    // Without a user id the client id's hash is the same digest (of `${website.id}:c:${cid}`).
    const clientId = !hit.cid ? '' : hit.uid ? hash(`${website.id}:c:${hit.cid}`) : idDigest.toString('hex', 0, 16);
    const sessionHit: SessionHit = {
      time,
      hitType: hit.t,
      interaction: !hit.ni,
      page,
      hostname,
      referrer: hit.dr ?? '',
      traffic,
      country,
      deviceType: device.deviceType,
      browser: device.browser,
      os: device.os,
      eventCategory: hit.ec ?? '',
      eventAction: hit.ea ?? '',
      eventLabel: hit.el ?? '',
    };
    const step = await this.o.sessions.apply(website.id, visitor, website.timezone, sessionHit, goals);
    const session = step.current;
    const current = sessionRow(website.id, visitor, session, 1);
    const sessions = step.previous ? [sessionRow(website.id, visitor, step.previous, -1), current] : [current];
    return { hit: hitRow(website.id, visitor, clientId, hit, sessionHit, step), sessions };
  }

  /** For JSON batch events without any id: a pseudonymous id from IP and user agent, salted per day, so the visitor counts for that day only. */
  async #derivedClientId(origin: HitOrigin, trackingId: string): Promise<string> {
    const day = new Date(this.#now()).toISOString().slice(0, 10);
    if (this.#salt?.day !== day) {
      const key = `an:salt:${day}`;
      const value = this.o.shared
        .setIfAbsent(key, randomBytes(16).toString('hex'), 48 * 3600 * 1000)
        .then(() => this.o.shared.get(key))
        .then((v) => v ?? randomBytes(16).toString('hex'));
      this.#salt = { day, value };
    }
    return `d.${hash(`${await this.#salt.value}:${trackingId}:${origin.ip}:${origin.userAgent}`)}`;
  }
}

function matchesOwn(host: string, own: string): boolean {
  const o = own.toLowerCase();
  return o.startsWith('*.') ? host.endsWith(o.slice(1)) : host === o || host === `www.${o}`;
}

function hitRow(websiteId: string, visitor: string, clientId: string, hit: MpHit, s: SessionHit, step: { current: { id: string; newVisitor: boolean; traffic: SessionHit['traffic'] }; hitNumber: number; completedGoals: string[] }): HitRow {
  const traffic = step.current.traffic;
  return {
    website_id: websiteId,
    time: new Date(s.time).toISOString(),
    hit_type: hit.t,
    visitor,
    client_id: clientId,
    user_id: hit.uid ?? '',
    session_id: step.current.id,
    session_hit_number: step.hitNumber,
    is_new_visitor: step.current.newVisitor ? 1 : 0,
    is_interaction: s.interaction ? 1 : 0,
    page: s.page,
    hostname: s.hostname,
    title: hit.dt ?? '',
    referrer: s.referrer,
    // A hit belongs to its session's acquisition, as in GA: later internal hits keep the entry source.
    source: traffic.source,
    medium: traffic.medium,
    campaign: traffic.campaign,
    keyword: traffic.keyword,
    content: traffic.content,
    event_category: s.eventCategory,
    event_action: s.eventAction,
    event_label: s.eventLabel,
    event_value: hit.ev ?? null,
    country: s.country,
    device_type: s.deviceType,
    browser: s.browser,
    os: s.os,
    language: hit.ul ?? '',
    screen_resolution: hit.sr ?? '',
    goal_ids: step.completedGoals,
  };
}
