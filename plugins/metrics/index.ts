import type { RequestHandler } from 'express';
import type { OperationInfo } from '../../generated/registry.js';
import { ANONYMOUS_TENANT } from '../../src/audit/event.js';
import { definePlugin } from '../../src/gateway/plugin.js';
import { statusClass, type GatewayMetrics } from '../../src/observability/metrics.js';
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
  const inFlight = metrics.http.inFlight.labels({ operation_id: operationId });
  const duration = metrics.http.duration.labels({ operation_id: operationId });
  // Labelled children by status class and tenant label: prom-client hashes a labels object on every inc().
  const requests = new Map<string, ReturnType<GatewayMetrics['http']['requests']['labels']>>();
  const requestsFor = (statusClassLabel: string, tenantLabel: string) => {
    const key = `${statusClassLabel}\0${tenantLabel}`;
    let child = requests.get(key);
    if (!child) requests.set(key, (child = metrics.http.requests.labels({ operation_id: operationId, status_class: statusClassLabel, tenant: tenantLabel })));
    return child;
  };
  return (req, res, next) => {
    const started = performance.now();
    inFlight.inc();
    res.once('close', () => {
      const ms = performance.now() - started;
      const status = res.headersSent ? res.statusCode : 499;
      const tenant = req.principal?.tenant ?? ANONYMOUS_TENANT;
      inFlight.dec();
      duration.observe(ms / 1000);
      requestsFor(statusClass(status), metrics.tenantLabel(tenant)).inc();
      metrics.usage.record(tenant, operationId, status, ms);
      if (status === 401 || status === 403) metrics.authFailures.inc({ reason: res.locals.weirProblem?.type ?? `http-${status}` });
    });
    next();
  };
}
