import type { components } from '../../generated/types.js';
import type { Request } from 'express';
import type { Handler } from '../../generated/handlers.js';
import type { AnalyticsServices } from '../analytics/service.js';
import type { HitInput, HitOrigin, TrackingError } from '../analytics/collector.js';
import type { Goal, GoalDefinition } from '../analytics/goal-rules.js';
import { batchEventParams, MAX_BATCH_HITS, MAX_HIT_BYTES, parseFormPayload, parseHit } from '../analytics/hit.js';
import { requirePrincipal } from '../analytics/principal.js';
import type { ReportSpec } from '../analytics/report-compiler.js';
import { compileHitExport, type HitExportSpec } from '../analytics/hit-export.js';
import type { ExportJobs } from '../exports/jobs.js';
import { realtimeFigures, runReport } from '../analytics/reports.js';
import type { Website, WebsiteInput } from '../analytics/websites.js';
import { clientIp } from '../gateway/client-ip.js';
import { ProblemError } from '../problem.js';

type AnalyticsOps =
  | 'collectHit'
  | 'collectHitPixel'
  | 'collectBatch'
  | 'createWebsite'
  | 'listWebsites'
  | 'getWebsite'
  | 'updateWebsite'
  | 'deleteWebsite'
  | 'createGoal'
  | 'listGoals'
  | 'getRealtime'
  | 'queryWebsite'
  | 'exportWebsite';

// The 43-byte transparent GIF that Measurement Protocol pixels answer.
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');

const limitOf = (v: unknown) => Math.min(1000, Math.max(1, Number(v ?? 50) || 50));
const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

export function presentWebsite(w: Website) {
  return {
    website_id: w.id,
    tracking_id: w.trackingId,
    domain: w.domain,
    name: w.name,
    timezone: w.timezone,
    currency: w.currency,
    industry: w.industry,
    allowed_hostnames: w.allowedHostnames,
    created_at: w.createdAt.toISOString(),
    updated_at: w.updatedAt.toISOString(),
  };
}

export function presentGoal(g: Goal): components['schemas']['Goal'] {
  const { type, ...fields } = g.definition;
  // The definition is one of the Goal schema's variants, tagged by `type`; spreading it loses the tag's link for tsc.
  return { goal_id: g.id, website_id: g.websiteId, name: g.name, type, ...fields, value_numeric: g.valueNumeric, created_at: g.createdAt.toISOString() } as components['schemas']['Goal'];
}

function malformedHit(detail: string, where: 'body' | 'query'): ProblemError {
  return new ProblemError(400, {
    type: 'validation',
    title: 'Request validation failed',
    detail: `The hit is not well formed: ${detail}.`,
    errors: [where === 'body' ? { in: 'body', pointer: '#', detail } : { in: 'query', detail }],
  });
}

export function analyticsHandlers(analytics: AnalyticsServices, exportJobs: ExportJobs): { [K in AnalyticsOps]: Handler<K> } {
  const { websites, collector } = analytics;
  const countryHeader = analytics.config.countryHeader;

  const originOf = (req: Request): HitOrigin => {
    const country = countryHeader ? req.get(countryHeader)?.trim().toUpperCase() : undefined;
    return {
      ip: clientIp(req) ?? req.socket.remoteAddress ?? '',
      userAgent: req.headers['user-agent'] ?? '',
      // XX and T1 (Tor) are what proxies send when they don't know.
      country: country && /^[A-Z]{2}$/.test(country) && country !== 'XX' && country !== 'T1' ? country : undefined,
    };
  };

  const collectOne = async (req: Request, params: Record<string, unknown>, where: 'body' | 'query') => {
    const parsed = parseHit(params);
    if (!parsed.ok) throw malformedHit(parsed.detail, where);
    return collector.collect([{ index: 0, hit: parsed.hit }], originOf(req), { single: true });
  };

  return {
    collectHit: async ({ req, body }) => {
      const params = typeof body === 'string' ? parseFormPayload(body) : (body as Record<string, unknown>);
      const { received, errors } = await collectOne(req, params, 'body');
      return {
        status: 200,
        body: received ? { status: 'ok', received: 1 } : { status: 'ok', received: 0, failed: 1, errors: errors.slice(0, 1) },
      };
    },
    collectHitPixel: async ({ req }) => {
      if ((req.originalUrl ?? '').length > MAX_HIT_BYTES) throw new ProblemError(400, { detail: `The URL is longer than ${MAX_HIT_BYTES} bytes.` });
      await collectOne(req, req.query as Record<string, unknown>, 'query');
      return { status: 200, contentType: 'image/gif', headers: { 'Cache-Control': 'no-store' }, body: PIXEL };
    },
    collectBatch: async ({ req, body }) => {
      const inputs: HitInput[] = [];
      const tooLarge = (index: number): HitInput => ({ index, error: { index, reason: 'hit_too_large', detail: `Hit ${index} is larger than ${MAX_HIT_BYTES} bytes.` } });
      if (typeof body === 'string') {
        const lines = body.split(/\r?\n/).filter((line) => line.trim() !== '');
        if (lines.length > MAX_BATCH_HITS) throw malformedHit(`a batch holds at most ${MAX_BATCH_HITS} hits, this one ${lines.length}`, 'body');
        lines.forEach((line, index) => {
          if (Buffer.byteLength(line) > MAX_HIT_BYTES) inputs.push(tooLarge(index));
          else {
            const params = parseFormPayload(line);
            const parsed = parseHit(params);
            inputs.push(parsed.ok ? { index, hit: parsed.hit } : { index, error: { index, reason: 'invalid_hit', detail: `Line ${index + 1}: ${parsed.detail}.` } });
          }
        });
      } else {
        const batch = body as { tracking_id: string; client_id?: string; events: Array<Record<string, unknown>> };
        batch.events.forEach((event, index) => {
          if (Buffer.byteLength(JSON.stringify(event)) > MAX_HIT_BYTES) return inputs.push(tooLarge(index));
          const params = batchEventParams(event, batch);
          // Without any id the collector derives a day-scoped pseudonymous one.
          if (params.cid === undefined && params.uid === undefined) params.__derive_cid = true;
          inputs.push({ index, params });
        });
      }
      const { received, errors } = await collector.collect(inputs, originOf(req));
      const result: { status: 'ok'; received: number; failed: number; errors?: TrackingError[] } = { status: 'ok', received, failed: errors.length };
      if (errors.length) result.errors = errors;
      return { status: 200, body: result };
    },

    createWebsite: async ({ req, body }) => {
      const principal = requirePrincipal(req);
      const website = await websites.create(principal.tenant, principal.subject, body as WebsiteInput & { domain: string; name: string });
      return { status: 201, headers: { Location: `/v1/websites/${website.id}` }, body: presentWebsite(website) };
    },
    listWebsites: async ({ req, query }) => {
      const page = await websites.list(requirePrincipal(req).tenant, { cursor: text(query.cursor), limit: limitOf(query.limit) });
      return { status: 200, body: { items: page.items.map(presentWebsite), next_cursor: page.next_cursor } };
    },
    getWebsite: async ({ req, params }) => ({ status: 200, body: presentWebsite(await websites.get(requirePrincipal(req).tenant, params.websiteId)) }),
    updateWebsite: async ({ req, params, body }) => {
      const website = await websites.update(requirePrincipal(req).tenant, params.websiteId, body as WebsiteInput);
      await analytics.directory.changed(website.trackingId);
      return { status: 200, body: presentWebsite(website) };
    },
    deleteWebsite: async ({ req, params }) => {
      await analytics.deleteWebsite(requirePrincipal(req), params.websiteId);
      return { status: 204 };
    },
    createGoal: async ({ req, params, body }) => {
      const website = await websites.get(requirePrincipal(req).tenant, params.websiteId);
      const goal = await websites.createGoal(website, body as { name: string; value_numeric?: number } & GoalDefinition);
      await analytics.directory.changed(website.trackingId);
      return { status: 201, body: presentGoal(goal) };
    },
    listGoals: async ({ req, params, query }) => {
      const website = await websites.get(requirePrincipal(req).tenant, params.websiteId);
      const page = await websites.listGoals(website.id, { cursor: text(query.cursor), limit: limitOf(query.limit) });
      return { status: 200, body: { items: page.items.map(presentGoal), next_cursor: page.next_cursor } };
    },
    getRealtime: async ({ req, params }) => {
      const website = await websites.get(requirePrincipal(req).tenant, params.websiteId);
      return { status: 200, body: (await realtimeFigures(analytics.stores.warehouse, website.id, analytics.now())) };
    },
    queryWebsite: async ({ req, params, body }) => {
      const website = await websites.get(requirePrincipal(req).tenant, params.websiteId);
      const goalIds = new Set((await websites.allGoals(website.id)).map((g) => g.id));
      return { status: 200, body: (await runReport(analytics.stores.warehouse, website, goalIds, body as ReportSpec & { cursor?: string })) };
    },
    exportWebsite: async ({ req, params, body }) => {
      const principal = requirePrincipal(req);
      const website = await websites.get(principal.tenant, params.websiteId);
      const spec = body as HitExportSpec;
      const job = await exportJobs.create({
        tenant: principal.tenant,
        createdBy: principal.subject,
        sourceType: 'website',
        sourceId: website.id,
        format: spec.format,
        compression: 'none',
        query: compileHitExport(spec, website),
      });
      return {
        status: 202,
        headers: { Location: `/v1/exports/${job.id}` },
        body: { export_id: job.id, status: 'processing' as const, estimated_completion: new Date(Date.now() + 60_000).toISOString() },
      };
    },
  };
}
