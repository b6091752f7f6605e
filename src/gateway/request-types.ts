import type { OperationInfo } from '../../generated/registry.js';

/** Who is calling, as the auth plugin established it. Nothing after auth reads raw credentials. */
export interface Principal {
  /** User id, OAuth client id, or API key owner. */
  subject: string;
  tenant: string;
  roles: string[];
  scopes: string[];
  /** ABAC attributes (e.g. region), from token claims or the API key record. */
  attributes: Record<string, string | number | boolean | string[]>;
  authMethod: 'jwt' | 'api_key';
  /** A second factor was shown (JWT `amr`); never true for API keys. */
  mfa: boolean;
  /** The credential used: API key id or token `jti`, for audit and rate-limit keys. */
  credentialId?: string;
}

// What the gateway adds to a request, typed by declaration merging (plugins add their own members).
declare global {
  namespace Express {
    interface Request {
      /** The request id (X-Request-Id), set by the request-id plugin before anything else. */
      id: string;
      /** The operation the request was routed to, from the registry. */
      operationInfo?: OperationInfo;
      /** The authenticated caller; absent on public operations called anonymously. */
      principal?: Principal;
    }
  }
}

export {};
