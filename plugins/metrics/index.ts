import type { RequestHandler } from 'express';
import type { OperationInfo } from '../../generated/registry.js';
import { ANONYMOUS_TENANT } from '../../src/audit/event.js';
import { definePlugin } from '../../src/gateway/plugin.js';
import { statusClass, type Cell, type GatewayMetrics } from '../../src/observability/metrics.js';
import '../../src/observability/problem-recorder.js';
import { PRIORITY } from '../priorities.js';
import { MetricsOptions } from './schema.js';

/** Counts and times every request that reaches an operation; first in the chain, so refusals are counted too. */
export const metricsPlugin = definePlugin({
  name: 'metrics',
  priority: PRIORITY.metrics,
  options: MetricsOptions,
  forOperation: (op) => op,
  middleware: (op, { metrics }) => metricsMiddleware(op, metrics),
});

function metricsMiddleware(op: OperationInfo, metrics: GatewayMetrics): RequestHandler {
  const operationId = op.operationId;
  const inFlight = metrics.http.inFlightCell({ operation_id: operationId });
  const duration = metrics.http.duration.labels({ operation_id: operationId });
  // Counted in cells (see Cell), by tenant label, then status class (1xx..5xx): a key string per
  // request would be garbage.
  const requests = new Map<string, Cell[]>();
  const requestsFor = (status: number, tenantLabel: string) => {
    let byClass = requests.get(tenantLabel);
    if (!byClass) requests.set(tenantLabel, (byClass = []));
    const digit = Math.floor(status / 100);
    return (byClass[digit] ??= metrics.http.requestsCell({ operation_id: operationId, status_class: statusClass(status), tenant: tenantLabel }));
  };
  return (req, res, next) => {
    const started = performance.now();
    inFlight.value++;
    // 'close' comes once per response (after the answer, or when the client goes away first).
    res.on('close', () => {
      const ms = performance.now() - started;
      const status = res.headersSent ? res.statusCode : 499;
      const tenant = req.principal?.tenant ?? ANONYMOUS_TENANT;
      inFlight.value--;
      duration.observe(ms / 1000);
      requestsFor(status, metrics.tenantLabel(tenant)).value++;
      metrics.usage.record(tenant, operationId, status, ms);
      if (status === 401 || status === 403) metrics.authFailures.inc({ reason: res.locals.weirProblem?.type ?? `http-${status}` });
    });
    next();
  };
}
