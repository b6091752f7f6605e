import type { MetadataStore } from '../stores/index.js';
import { ProblemError } from '../problem.js';
import { keysetPage } from '../list-cursor.js';
import { checkGoalDefinition, type Goal, type GoalDefinition } from './goal-rules.js';
import { newGoalId, newTrackingId, newWebsiteId } from './ids.js';
import { isValidTimeZone } from './timezone.js';

export interface Website {
  id: string;
  tenant: string;
  trackingId: string;
  domain: string;
  name: string;
  timezone: string;
  currency: string;
  industry: string | null;
  allowedHostnames: string[];
  createdAt: Date;
  updatedAt: Date;
}

export interface WebsiteInput {
  domain?: string;
  name?: string;
  timezone?: string;
  currency?: string;
  industry?: string | null;
  allowed_hostnames?: string[];
}

interface WebsiteRow {
  id: string;
  tenant: string;
  tracking_id: string;
  domain: string;
  name: string;
  timezone: string;
  currency: string;
  industry: string | null;
  allowed_hostnames: string[] | string;
  created_at: Date;
  updated_at: Date;
}

interface GoalRow {
  id: string;
  website_id: string;
  name: string;
  type: GoalDefinition['type'];
  definition: Record<string, unknown> | string;
  value_numeric: number | null;
  created_at: Date;
}

const WEBSITE_COLUMNS = 'id, tenant, tracking_id, domain, name, timezone, currency, industry, allowed_hostnames, created_at, updated_at';
const GOAL_COLUMNS = 'id, website_id, name, type, definition, value_numeric, created_at';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const json = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

function toWebsite(row: WebsiteRow): Website {
  return {
    id: row.id,
    tenant: row.tenant,
    trackingId: row.tracking_id,
    domain: row.domain,
    name: row.name,
    timezone: row.timezone,
    currency: row.currency,
    industry: row.industry,
    allowedHostnames: json(row.allowed_hostnames),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

function toGoal(row: GoalRow): Goal {
  return {
    id: row.id,
    websiteId: row.website_id,
    name: row.name,
    definition: { type: row.type, ...json(row.definition) } as GoalDefinition,
    valueNumeric: row.value_numeric === null ? null : Number(row.value_numeric),
    createdAt: new Date(row.created_at),
  };
}

const isUniqueViolation = (err: unknown) => (err as { code?: string })?.code === '23505';
const constraintOf = (err: unknown) => String((err as { constraint?: string; message?: string })?.constraint ?? (err as Error)?.message ?? '');

function invalidTimeZone(timezone: string): ProblemError {
  return new ProblemError(400, {
    type: 'validation',
    title: 'Request validation failed',
    detail: `${timezone} is not an IANA time zone this gateway knows.`,
    errors: [{ in: 'body', pointer: '#/timezone', detail: 'unknown time zone' }],
  });
}

const domainTaken = (domain: string) => new ProblemError(409, { detail: `Another of your websites already has the domain ${domain}.` });
const websiteNotFound = (id: string) => new ProblemError(404, { detail: `No website ${id}.` });

/** Websites and goals in PostgreSQL, always scoped to the caller's tenant. */
export class WebsiteRepository {
  constructor(private readonly db: MetadataStore) {}

  async create(tenant: string, createdBy: string, input: Required<Pick<WebsiteInput, 'domain' | 'name'>> & WebsiteInput): Promise<Website> {
    const timezone = input.timezone ?? 'UTC';
    if (!isValidTimeZone(timezone)) throw invalidTimeZone(timezone);
    for (let attempt = 0; ; attempt++) {
      try {
        const { rows } = await this.db.query<WebsiteRow>(
          `INSERT INTO analytics_websites (id, tenant, tracking_id, domain, name, timezone, currency, industry, allowed_hostnames, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${WEBSITE_COLUMNS}`,
          [newWebsiteId(), tenant, newTrackingId(), input.domain, input.name, timezone, input.currency ?? 'USD', input.industry ?? null, JSON.stringify(input.allowed_hostnames ?? []), createdBy],
        );
        return toWebsite(rows[0]!);
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        if (constraintOf(err).includes('domain')) throw domainTaken(input.domain);
        // A tracking id collision (about 51 random bits): draw another.
        if (attempt >= 3) throw err;
      }
    }
  }

  async list(tenant: string, opts: { cursor?: string; limit: number }): Promise<{ items: Website[]; next_cursor: string | null }> {
    const page = await keysetPage<WebsiteRow>(
      this.db,
      { select: WEBSITE_COLUMNS, from: 'analytics_websites', where: 'tenant = $1 AND deleted_at IS NULL', params: [tenant], order: 'asc', validId: (id) => UUID_RE.test(id) },
      opts,
    );
    return { items: page.items.map(toWebsite), next_cursor: page.next_cursor };
  }

  /** The tenant's live website, or 404 (another tenant's website is as absent as a missing one). */
  async get(tenant: string, id: string): Promise<Website> {
    const website = UUID_RE.test(id) ? await this.findById(id) : undefined;
    if (!website || website.tenant !== tenant) throw websiteNotFound(id);
    return website;
  }

  /** Any tenant's live website; for the authorization resolver and the WebSocket subscription. */
  async findById(id: string): Promise<Website | undefined> {
    if (!UUID_RE.test(id)) return undefined;
    const { rows } = await this.db.query<WebsiteRow>(`SELECT ${WEBSITE_COLUMNS} FROM analytics_websites WHERE id = $1 AND deleted_at IS NULL`, [id]);
    return rows[0] && toWebsite(rows[0]);
  }

  async findByTrackingId(trackingId: string): Promise<Website | undefined> {
    const { rows } = await this.db.query<WebsiteRow>(`SELECT ${WEBSITE_COLUMNS} FROM analytics_websites WHERE tracking_id = $1 AND deleted_at IS NULL`, [trackingId]);
    return rows[0] && toWebsite(rows[0]);
  }

  async update(tenant: string, id: string, patch: WebsiteInput): Promise<Website> {
    const current = await this.get(tenant, id);
    if (patch.timezone !== undefined && !isValidTimeZone(patch.timezone)) throw invalidTimeZone(patch.timezone);
    const next = {
      domain: patch.domain ?? current.domain,
      name: patch.name ?? current.name,
      timezone: patch.timezone ?? current.timezone,
      currency: patch.currency ?? current.currency,
      industry: patch.industry === undefined ? current.industry : patch.industry,
      allowedHostnames: patch.allowed_hostnames ?? current.allowedHostnames,
    };
    try {
      const { rows } = await this.db.query<WebsiteRow>(
        `UPDATE analytics_websites SET domain = $3, name = $4, timezone = $5, currency = $6, industry = $7, allowed_hostnames = $8, updated_at = now()
         WHERE id = $1 AND tenant = $2 AND deleted_at IS NULL RETURNING ${WEBSITE_COLUMNS}`,
        [id, tenant, next.domain, next.name, next.timezone, next.currency, next.industry, JSON.stringify(next.allowedHostnames)],
      );
      if (!rows[0]) throw websiteNotFound(id);
      return toWebsite(rows[0]);
    } catch (err) {
      if (isUniqueViolation(err)) throw domainTaken(next.domain);
      throw err;
    }
  }

  async remove(tenant: string, id: string): Promise<Website> {
    const website = await this.get(tenant, id);
    await this.db.transaction(async (tx) => {
      await tx.query(`UPDATE analytics_websites SET deleted_at = now(), updated_at = now() WHERE id = $1 AND tenant = $2`, [id, tenant]);
      await tx.query(`DELETE FROM analytics_goals WHERE website_id = $1`, [id]);
    });
    return website;
  }

  async createGoal(website: Website, input: { name: string; value_numeric?: number } & GoalDefinition): Promise<Goal> {
    const { name, value_numeric, type, ...fields } = input;
    checkGoalDefinition(input);
    try {
      const { rows } = await this.db.query<GoalRow>(
        `INSERT INTO analytics_goals (id, website_id, name, type, definition, value_numeric) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${GOAL_COLUMNS}`,
        [newGoalId(), website.id, name, type, JSON.stringify(fields), value_numeric ?? null],
      );
      return toGoal(rows[0]!);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ProblemError(409, { detail: `The website already has a goal named ${name}.` });
      throw err;
    }
  }

  async listGoals(websiteId: string, opts: { cursor?: string; limit: number }): Promise<{ items: Goal[]; next_cursor: string | null }> {
    const page = await keysetPage<GoalRow>(this.db, { select: GOAL_COLUMNS, from: 'analytics_goals', where: 'website_id = $1', params: [websiteId], order: 'asc' }, opts);
    return { items: page.items.map(toGoal), next_cursor: page.next_cursor };
  }

  /** Every goal of a website (the tracker compiles them all). */
  async allGoals(websiteId: string): Promise<Goal[]> {
    const { rows } = await this.db.query<GoalRow>(`SELECT ${GOAL_COLUMNS} FROM analytics_goals WHERE website_id = $1 ORDER BY created_at, id`, [websiteId]);
    return rows.map(toGoal);
  }
}
