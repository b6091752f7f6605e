import type { Handler } from '../../generated/handlers.js';
import { checkStores, type Stores } from '../stores/index.js';

export interface OperationsDeps {
  stores: Stores;
  version: string;
  startedAt: number;
}

export function operationsHandlers({ stores, version, startedAt }: OperationsDeps): {
  getHealth: Handler<'getHealth'>;
  getReadiness: Handler<'getReadiness'>;
} {
  return {
    getHealth: () => ({
      status: 200,
      headers: { 'Cache-Control': 'no-store' },
      body: { status: 'ok', version, uptime_s: Math.round((Date.now() - startedAt) / 100) / 10 },
    }),
    getReadiness: async () => {
      const check = await checkStores(stores);
      const body = { status: check.ready ? ('ready' as const) : ('not_ready' as const), stores: check.stores };
      return check.ready
        ? { status: 200, headers: { 'Cache-Control': 'no-store' }, body }
        : { status: 503, headers: { 'Cache-Control': 'no-store' }, body };
    },
  };
}
