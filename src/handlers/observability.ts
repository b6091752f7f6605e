import type { Handler } from '../../generated/handlers.js';
import { ANONYMOUS_TENANT, type AuditLog } from '../audit/index.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { decodeCursor, encodeCursor } from '../list-cursor.js';
import { ProblemError } from '../problem.js';
import { checkStores, type Stores } from '../stores/index.js';

export interface ObservabilityDeps {
  stores: Stores;
  metrics: GatewayMetrics;
  audit: AuditLog;
}

const ADMIN_ROLE = 'admin';

export function observabilityHandlers({ stores, metrics, audit }: ObservabilityDeps): {
  getPrometheusMetrics: Handler<'getPrometheusMetrics'>;
  getUsageMetrics: Handler<'getUsageMetrics'>;
  listAuditEvents: Handler<'listAuditEvents'>;
} {
  return {
    getPrometheusMetrics: async () => ({ status: 200, contentType: 'text/plain; version=0.0.4', body: await metrics.registry.metrics() }),

    getUsageMetrics: async ({ query, req }) => {
      const p = req.principal;
      // Callers see their own tenant; admins see every tenant.
      const visible = p?.roles.includes(ADMIN_ROLE) ? undefined : [p?.tenant ?? ANONYMOUS_TENANT];
      const window = query.window ?? '5m';
      const [usage, check] = [metrics.usage.summary(window, visible), await checkStores(stores, 1000)];
      return {
        status: 200,
        headers: { 'Cache-Control': 'no-store' },
        body: {
          generated_at: usage.to.toISOString(),
          window: { from: usage.from.toISOString(), to: usage.to.toISOString() },
          tenants: usage.tenants,
          health: { stores: check.stores, rate_limit_fallbacks: usage.fallbacks, audit_buffer_depth: audit.writer.depth },
        },
      };
    },

    listAuditEvents: async ({ query, req }) => {
      const p = req.principal;
      const own = p?.tenant ?? ANONYMOUS_TENANT;
      const tenant = query.tenant ?? own;
      if (tenant !== own && !p?.roles.includes(ADMIN_ROLE)) {
        throw new ProblemError(403, { detail: `Reading tenant "${tenant}"'s audit log needs the ${ADMIN_ROLE} role.` });
      }
      if (query.from && query.to && Date.parse(query.to) <= Date.parse(query.from)) {
        throw new ProblemError(400, { detail: '`to` must be after `from`.', errors: [{ in: 'query', parameter: 'to', detail: 'must be after from' }] });
      }
      const limit = query.limit ?? 50;
      const items = await audit.store.list({
        tenant,
        from: query.from,
        to: query.to,
        principal: query.principal,
        operationId: query.operation_id,
        outcome: query.outcome,
        afterSeq: decodeCursor<{ s: number }>(query.cursor, ['s'], 'query', ({ s }) => Number.isInteger(s) && s >= 0)?.s,
        limit,
      });
      const more = items.length > limit;
      const page = more ? items.slice(0, limit) : items;
      return { status: 200, body: { items: page, next_cursor: more ? encodeCursor({ s: page.at(-1)!.seq }) : null } };
    },
  };
}
