import type { OperationInfo } from '../../generated/registry.js';

// What the gateway adds to a request, typed by declaration merging (plugins add their own members).
declare global {
  namespace Express {
    interface Request {
      /** The request id (X-Request-Id), set by the request-id plugin before anything else. */
      id: string;
      /** The operation the request was routed to, from the registry. */
      operationInfo?: OperationInfo;
    }
  }
}

export {};
