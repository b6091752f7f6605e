import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { checkStores, type Stores } from '../stores/index.js';
import { UsageWindows } from './usage-windows.js';

/** Distinct tenant label values kept before the rest are counted as `_other`, so a tenant flood can't blow up the series count. */
const MAX_TENANT_LABELS = 200;

/**
 * Every metric the gateway exposes, on a registry of its own (not prom-client's global one) so
 * several apps in one process (tests) don't collide. Labels are bounded: operationId, status class,
 * policy, reason slug, store; never raw paths or ids.
 */
export interface GatewayMetrics {
  registry: Registry;
  usage: UsageWindows;
  http: {
    requests: Counter<'operation_id' | 'status_class' | 'tenant'>;
    /** A child of `requests` for the request path (see Cell). */
    requestsCell(labels: Record<'operation_id' | 'status_class' | 'tenant', string>): Cell;
    duration: Histogram<'operation_id'>;
    inFlight: Gauge<'operation_id'>;
    /** A child of `inFlight` for the request path (see Cell). */
    inFlightCell(labels: Record<'operation_id', string>): Cell;
  };
  authFailures: Counter<'reason'>;
  rateLimit: {
    decisions: Counter<'policy' | 'decision' | 'source'>;
    /** A child of `decisions` for the request path (see Cell). */
    decisionsCell(labels: Record<'policy' | 'decision' | 'source', string>): Cell;
    fallbacks: Counter<'mode'>;
  };
  audit: {
    /** Read at scrape time from the function given to watchBufferDepth (not set per event). */
    bufferDepth: Gauge;
    watchBufferDepth(depth: () => number): void;
    flushSeconds: Histogram;
    written: Counter;
    dropped: Counter;
    flushFailures: Counter;
  };
  /** The tenant label for a tenant id, capped in cardinality. */
  tenantLabel(tenant: string): string;
}

/**
 * A labelled series kept as a plain number that the request path changes (`cell.value++`), and that
 * its metric reads when scraped. prom-client's own labelled children hash their labels and validate
 * them on every call (and a Counter's inc() lists all its series), a measurable part of a small
 * request; the figures scraped are the same.
 */
export interface Cell {
  value: number;
}

interface CellSet<L extends string> {
  cell(labels: Record<L, string>): Cell;
  /** Counters: what the cells counted since the last scrape is added (counters only go up). */
  publishCounts(counter: Counter<L>): void;
  /** Gauges: each series is set to its cell's value. */
  publishValues(gauge: Gauge<L>): void;
}

function cellSet<L extends string>(): CellSet<L> {
  const cells = new Map<string, { labels: Record<L, string>; value: number; published: number }>();
  return {
    cell(labels) {
      const key = JSON.stringify(labels);
      let c = cells.get(key);
      if (!c) cells.set(key, (c = { labels: { ...labels }, value: 0, published: 0 }));
      return c;
    },
    publishCounts(counter) {
      for (const c of cells.values()) {
        const delta = c.value - c.published;
        if (delta > 0) counter.inc(c.labels, delta);
        c.published = c.value;
      }
    },
    publishValues(gauge) {
      for (const c of cells.values()) gauge.set(c.labels, c.value);
    },
  };
}

export function createGatewayMetrics(stores: Stores): GatewayMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  // Stores are checked at scrape time (so the figures are as fresh as the scrape and cost nothing
  // between scrapes), once per scrape for both gauges: prom-client collects metrics concurrently.
  let checking: ReturnType<typeof checkStores> | undefined;
  const check = () =>
    (checking ??= checkStores(stores, 1000).finally(() => {
      checking = undefined;
    }));
  new Gauge({
    name: 'weir_store_up',
    help: 'Whether a store answered its last check (1) or not (0).',
    labelNames: ['store', 'kind'],
    registers,
    async collect() {
      for (const [store, c] of Object.entries((await check()).stores)) this.set({ store, kind: c.kind }, c.status === 'up' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'weir_store_check_seconds',
    help: 'How long the last check of a store took.',
    labelNames: ['store', 'kind'],
    registers,
    async collect() {
      for (const [store, c] of Object.entries((await check()).stores)) this.set({ store, kind: c.kind }, c.latency_ms / 1000);
    },
  });

  const tenants = new Set<string>();
  const requestCells = cellSet<'operation_id' | 'status_class' | 'tenant'>();
  const inFlightCells = cellSet<'operation_id'>();
  const decisionCells = cellSet<'policy' | 'decision' | 'source'>();
  let auditDepth: (() => number) | undefined;
  return {
    registry,
    usage: new UsageWindows(),
    http: {
      requests: new Counter({
        name: 'weir_http_requests_total',
        help: 'HTTP requests answered, by operation and status class.',
        labelNames: ['operation_id', 'status_class', 'tenant'],
        registers,
        collect() {
          requestCells.publishCounts(this);
        },
      }),
      requestsCell: (labels) => requestCells.cell(labels),
      duration: new Histogram({
        name: 'weir_http_request_duration_seconds',
        help: 'Time to answer, by operation.',
        labelNames: ['operation_id'],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers,
      }),
      inFlight: new Gauge({
        name: 'weir_http_requests_in_flight',
        help: 'Requests being answered now, by operation.',
        labelNames: ['operation_id'],
        registers,
        collect() {
          inFlightCells.publishValues(this);
        },
      }),
      inFlightCell: (labels) => inFlightCells.cell(labels),
    },
    authFailures: new Counter({
      name: 'weir_auth_failures_total',
      help: 'Requests refused by authentication (401) or authorization (403), by problem type.',
      labelNames: ['reason'],
      registers,
    }),
    rateLimit: {
      decisions: new Counter({
        name: 'weir_rate_limit_decisions_total',
        help: 'Rate-limit decisions, by policy, outcome (allowed, limited, unavailable) and where they were taken (shared, local).',
        labelNames: ['policy', 'decision', 'source'],
        registers,
        collect() {
          decisionCells.publishCounts(this);
        },
      }),
      decisionsCell: (labels) => decisionCells.cell(labels),
      fallbacks: new Counter({
        name: 'weir_rate_limit_fallbacks_total',
        help: 'Decisions taken without the shared store because it did not answer, by fail mode (open: local limiter; closed: 503).',
        labelNames: ['mode'],
        registers,
      }),
    },
    audit: {
      bufferDepth: new Gauge({
        name: 'weir_audit_buffer_depth',
        help: 'Audit events accepted but not yet written.',
        registers,
        collect() {
          if (auditDepth) this.set(auditDepth());
        },
      }),
      watchBufferDepth(depth) {
        auditDepth = depth;
      },
      flushSeconds: new Histogram({
        name: 'weir_audit_flush_seconds',
        help: 'Time to write one batch of audit events.',
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers,
      }),
      written: new Counter({ name: 'weir_audit_events_written_total', help: 'Audit events written to the log.', registers }),
      dropped: new Counter({
        name: 'weir_audit_events_dropped_total',
        help: 'Audit events dropped because the buffer was full (AUDIT_OVERFLOW=drop).',
        registers,
      }),
      flushFailures: new Counter({ name: 'weir_audit_flush_failures_total', help: 'Batches that failed to write (retried).', registers }),
    },
    tenantLabel(tenant) {
      if (tenants.has(tenant)) return tenant;
      if (tenants.size >= MAX_TENANT_LABELS) return '_other';
      tenants.add(tenant);
      return tenant;
    },
  };
}

export function statusClass(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}
