// Facts about a request that handlers and plugins report for the plugins wrapping them (audit,
// rate-limit, metrics), typed on the request by declaration merging.
declare global {
  namespace Express {
    interface Request {
      /** Rows written, deleted or returned, set by handlers that know it (audit `rows_affected`; rate-limit `cost: rows`). */
      rowsAffected?: number;
      /** The rate-limit decision for this request, when the rate-limit plugin ran. */
      rateLimit?: { policy: string; remaining: number; source: 'shared' | 'local' };
    }
  }
}

export {};
