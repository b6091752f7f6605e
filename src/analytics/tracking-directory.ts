import type { Logger } from 'pino';
import type { SharedState } from '../stores/index.js';
import { compileGoal } from './goal-rules.js';
import type { CompiledGoal } from './sessions.js';
import type { Website, WebsiteRepository } from './websites.js';

export interface TrackedWebsite {
  website: Website;
  goals: CompiledGoal[];
}

const CHANGES_CHANNEL = 'analytics:website-changed';

/**
 * Tracking id → website and compiled goals, cached in process for a few seconds so `/collect`
 * doesn't query PostgreSQL per hit. Changes made through any process are announced over shared
 * pub/sub and evict the entry everywhere; the TTL bounds staleness if a message is lost.
 */
export class TrackingDirectory {
  readonly #entries = new Map<string, { value: Promise<TrackedWebsite | undefined>; expires: number }>();
  #unsubscribe?: () => Promise<void>;

  constructor(
    private readonly repo: WebsiteRepository,
    private readonly shared: SharedState,
    private readonly ttlMs: number,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.#unsubscribe = await this.shared.subscribe(CHANGES_CHANNEL, (trackingId) => this.#entries.delete(trackingId));
  }

  async close(): Promise<void> {
    await this.#unsubscribe?.();
  }

  lookup(trackingId: string, now = Date.now()): Promise<TrackedWebsite | undefined> {
    const cached = this.#entries.get(trackingId);
    if (cached && cached.expires > now) return cached.value;
    const value = this.#load(trackingId);
    this.#entries.set(trackingId, { value, expires: now + this.ttlMs });
    // A failed load is not cached.
    value.catch(() => this.#entries.delete(trackingId));
    if (this.#entries.size > 10_000) this.#evictExpired(now);
    return value;
  }

  /** Call after changing a website or its goals. */
  async changed(trackingId: string): Promise<void> {
    this.#entries.delete(trackingId);
    await this.shared.publish(CHANGES_CHANNEL, trackingId).catch((err: unknown) => this.logger.warn({ err }, 'analytics: could not announce a website change'));
  }

  async #load(trackingId: string): Promise<TrackedWebsite | undefined> {
    const website = await this.repo.findByTrackingId(trackingId);
    if (!website) return undefined;
    const goals = (await this.repo.allGoals(website.id)).map((g) => ({ id: g.id, value: g.valueNumeric ?? 0, matches: compileGoal(g.definition) }));
    return { website, goals };
  }

  #evictExpired(now: number): void {
    for (const [key, entry] of this.#entries) if (entry.expires <= now) this.#entries.delete(key);
  }
}
