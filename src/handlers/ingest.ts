import type { Request } from 'express';
import type { Handler } from '../../generated/handlers.js';
import { parseByteSize } from '../config.js';
import { requirePrincipal } from '../datasets/principal.js';
import type { IngestService } from '../ingest/ingest-service.js';

export interface IngestDeps {
  ingest: IngestService;
}

const DEFAULT_LIMIT = 256 * 1024 * 1024;
const DRAIN_LIMIT = 1024 * 1024;

/**
 * A refusal can come before the body was read. A small rest is read and dropped so the client
 * sees the answer instead of a reset connection; a large one is cut off with the connection.
 */
function discardUnreadBody(req: Request): void {
  if (req.complete || req.readableEnded) return;
  const length = Number(req.headers['content-length']);
  if (Number.isFinite(length) && length <= DRAIN_LIMIT) req.resume();
  else req.res?.setHeader('Connection', 'close');
}

export function ingestHandlers(deps: IngestDeps): { ingestRows: Handler<'ingestRows'> } {
  return {
    ingestRows: async ({ req, params, headers }) => {
      const principal = requirePrincipal(req);
      const key = headers['idempotency-key'];
      const limit = req.operationInfo?.body?.limit ? parseByteSize(req.operationInfo.body.limit) : DEFAULT_LIMIT;
      try {
        const body = await deps.ingest.ingestRequest(req, {
          tenant: principal.tenant,
          datasetId: params.datasetId,
          limit,
          idempotencyKey: typeof key === 'string' ? key : undefined,
        });
        return { status: 200, body };
      } catch (err) {
        discardUnreadBody(req);
        throw err;
      }
    },
  };
}
