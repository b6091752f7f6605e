import { addInto, bucketOf, newHistogram, quantileMs } from './latency-histogram.js';

/** Per-minute traffic tallies for the last hour, per tenant and operation (GET /v1/metrics). */
interface Tally { requests: number; errors: number; latency: Uint32Array }
interface Minute { start: number; tenants: Map<string, Map<string, Tally>>; fallbacks: number }

const MINUTE_MS = 60_000;
const KEPT_MINUTES = 61;

export const USAGE_WINDOWS = { '1m': 1, '5m': 5, '15m': 15, '1h': 60 } as const;
export type UsageWindow = keyof typeof USAGE_WINDOWS;

export interface TenantUsage {
  tenant: string;
  requests: number;
  errors: number;
  error_rate: number;
  latency_ms: { p50: number; p95: number; p99: number };
  by_operation: { operation_id: string; requests: number; error_rate: number; p95_ms: number }[];
}

/** The usage summary's notion of an error: a 5xx, or a 4xx that is not the caller being refused (401, 403, 429). */
export function isUsageError(status: number): boolean {
  return status >= 500 || (status >= 400 && status !== 401 && status !== 403 && status !== 429);
}

export class UsageWindows {
  private readonly minutes: Minute[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  record(tenant: string, operationId: string, status: number, ms: number): void {
    const ops = this.current().tenants;
    let byOp = ops.get(tenant);
    if (!byOp) ops.set(tenant, (byOp = new Map()));
    let tally = byOp.get(operationId);
    if (!tally) byOp.set(operationId, (tally = { requests: 0, errors: 0, latency: newHistogram() }));
    tally.requests++;
    if (isUsageError(status)) tally.errors++;
    tally.latency[bucketOf(ms)]!++;
  }

  recordFallback(): void {
    this.current().fallbacks++;
  }

  /** The window's range and figures; `tenants` filters to those named (all when undefined). */
  summary(window: UsageWindow, tenants?: readonly string[]): { from: Date; to: Date; tenants: TenantUsage[]; fallbacks: number } {
    const to = this.now();
    const from = to - USAGE_WINDOWS[window] * MINUTE_MS;
    const merged = new Map<string, Map<string, Tally>>();
    let fallbacks = 0;
    for (const minute of this.minutes) {
      if (minute.start + MINUTE_MS <= from) continue;
      fallbacks += minute.fallbacks;
      for (const [tenant, ops] of minute.tenants) {
        if (tenants && !tenants.includes(tenant)) continue;
        let into = merged.get(tenant);
        if (!into) merged.set(tenant, (into = new Map()));
        for (const [op, t] of ops) {
          let sum = into.get(op);
          if (!sum) into.set(op, (sum = { requests: 0, errors: 0, latency: newHistogram() }));
          sum.requests += t.requests;
          sum.errors += t.errors;
          addInto(sum.latency, t.latency);
        }
      }
    }
    const result: TenantUsage[] = [];
    for (const [tenant, ops] of merged) {
      const all: Tally = { requests: 0, errors: 0, latency: newHistogram() };
      const byOperation = [...ops].map(([operationId, t]) => {
        all.requests += t.requests;
        all.errors += t.errors;
        addInto(all.latency, t.latency);
        return { operation_id: operationId, requests: t.requests, error_rate: rate(t), p95_ms: quantileMs(t.latency, 0.95) };
      });
      byOperation.sort((a, b) => b.requests - a.requests || a.operation_id.localeCompare(b.operation_id));
      result.push({
        tenant,
        requests: all.requests,
        errors: all.errors,
        error_rate: rate(all),
        latency_ms: { p50: quantileMs(all.latency, 0.5), p95: quantileMs(all.latency, 0.95), p99: quantileMs(all.latency, 0.99) },
        by_operation: byOperation,
      });
    }
    result.sort((a, b) => b.requests - a.requests || a.tenant.localeCompare(b.tenant));
    return { from: new Date(from), to: new Date(to), tenants: result, fallbacks };
  }

  private current(): Minute {
    const start = Math.floor(this.now() / MINUTE_MS) * MINUTE_MS;
    const last = this.minutes.at(-1);
    if (last?.start === start) return last;
    const minute: Minute = { start, tenants: new Map(), fallbacks: 0 };
    this.minutes.push(minute);
    while (this.minutes.length > KEPT_MINUTES) this.minutes.shift();
    return minute;
  }
}

function rate(t: { requests: number; errors: number }): number {
  return t.requests === 0 ? 0 : Math.round((t.errors / t.requests) * 10_000) / 10_000;
}
