import type { Request } from 'express';
import type { Handler } from '../../generated/handlers.js';
import type { AccessControl } from '../authz/index.js';
import type { Principal } from '../gateway/request-types.js';
import { apiKeyPrefix, RotationConflict, type ApiKeyRecord } from '../identity/api-keys.js';
import type { Identity } from '../identity/index.js';
import { ProblemError } from '../problem.js';

export interface IdentityDeps {
  identity: Identity;
  access: AccessControl;
}

type OAuthErrorCode = 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unauthorized_client' | 'unsupported_grant_type' | 'invalid_scope';

const NO_STORE = { 'Cache-Control': 'no-store' };
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

export function identityHandlers({ identity, access }: IdentityDeps): {
  issueToken: Handler<'issueToken'>;
  getJwks: Handler<'getJwks'>;
  createApiKey: Handler<'createApiKey'>;
  listApiKeys: Handler<'listApiKeys'>;
  revokeApiKey: Handler<'revokeApiKey'>;
  rotateApiKey: Handler<'rotateApiKey'>;
} {
  const oauthError = (status: 400 | 401, error: OAuthErrorCode, description: string, basic = false) =>
    ({
      status,
      headers: { ...NO_STORE, ...(basic && status === 401 && { 'WWW-Authenticate': 'Basic realm="weir", charset="UTF-8"' }) },
      body: { error, error_description: description },
    }) as const;

  return {
    // RFC 6749 section 4.4: every refusal is an OAuth error document, never a problem document.
    issueToken: async ({ body, headers }) => {
      const form = (body ?? {}) as Record<string, unknown>;
      const field = (name: string) => form[name];
      for (const name of ['grant_type', 'client_id', 'client_secret', 'scope']) {
        const v = field(name);
        if (v !== undefined && typeof v !== 'string') return oauthError(400, 'invalid_request', `${name} must be given once, as a string.`);
      }
      if (field('grant_type') === undefined) return oauthError(400, 'invalid_request', 'grant_type is required.');
      if (field('grant_type') !== 'client_credentials') return oauthError(400, 'unsupported_grant_type', 'Only the client_credentials grant is supported.');

      const basic = parseBasic(headers.authorization);
      if (basic === 'malformed') return oauthError(400, 'invalid_request', 'The Authorization header is not valid HTTP Basic authentication.');
      const inBody = field('client_id') !== undefined || field('client_secret') !== undefined;
      if (basic && inBody) return oauthError(400, 'invalid_request', 'Authenticate the client with HTTP Basic or with client_id and client_secret in the body, not both.');
      const clientId = basic ? basic.id : (field('client_id') as string | undefined);
      const secret = basic ? basic.secret : (field('client_secret') as string | undefined);
      if (!clientId) return oauthError(400, 'invalid_request', 'client_id is required unless the client authenticates with HTTP Basic.');
      if (!secret) return oauthError(400, 'invalid_request', 'client_secret is required unless the client authenticates with HTTP Basic.');
      if (clientId.length > 255 || secret.length > 512) return oauthError(401, 'invalid_client', 'Client authentication failed.', Boolean(basic));

      const client = await identity.clients.authenticate(clientId, secret);
      if (!client) return oauthError(401, 'invalid_client', 'Client authentication failed.', Boolean(basic));

      const requested = typeof field('scope') === 'string' ? (field('scope') as string).split(' ') : undefined;
      if (requested && (requested.some((s) => !SCOPE_TOKEN.test(s)) || (field('scope') as string).length > 2048)) {
        return oauthError(400, 'invalid_scope', 'scope must be space-separated scope tokens.');
      }
      const outside = requested?.find((s) => !client.scopes.includes(s) && !client.scopes.includes('*'));
      if (outside) return oauthError(400, 'invalid_scope', `The client may not request scope "${outside}".`);
      const issued = await identity.tokens.issue(client, requested ? [...new Set(requested)] : client.scopes);
      return {
        status: 200,
        headers: { ...NO_STORE, Pragma: 'no-cache' },
        body: { access_token: issued.accessToken, token_type: 'Bearer', expires_in: issued.expiresIn, scope: issued.scope },
      };
    },

    getJwks: async () => ({
      status: 200,
      headers: { 'Cache-Control': 'public, max-age=300' },
      body: (await identity.signingKeys.jwks()),
    }),

    createApiKey: async ({ body, req }) => {
      const principal = principalOf(req);
      const roles = body.roles ?? [];
      const scopes = body.scopes ?? [];
      const missingRole = roles.find((r) => !access.authorizer.holdsRole(principal, r));
      if (missingRole) throw new ProblemError(403, { detail: `A key cannot have role "${missingRole}": the caller does not hold it.` });
      const missingScope = scopes.find((s) => !principal.scopes.includes(s) && !principal.scopes.includes('*'));
      if (missingScope) throw new ProblemError(403, { detail: `A key cannot have scope "${missingScope}": the caller does not hold it.` });
      const now = new Date();
      let expiresAt: Date | null = null;
      if (body.ttl_days !== undefined) expiresAt = new Date(now.getTime() + body.ttl_days * 86_400_000);
      else if (body.expires_at) {
        expiresAt = new Date(body.expires_at);
        if (expiresAt <= now) {
          throw new ProblemError(400, { detail: 'expires_at must be in the future.', errors: [{ in: 'body', pointer: '#/expires_at', detail: 'must be in the future' }] });
        }
      }
      const { record, secret } = await identity.apiKeys.create({
        tenant: principal.tenant,
        name: body.name,
        roles,
        scopes,
        expiresAt,
        createdBy: principal.subject,
        createdAt: now,
      });
      return { status: 201, headers: NO_STORE, body: { ...apiKeyJson(record), secret } };
    },

    listApiKeys: async ({ query, req }) => {
      const page = await identity.apiKeys.list(principalOf(req).tenant, query.limit ?? 50, query.cursor);
      return { status: 200, body: { items: page.items.map(apiKeyJson), next_cursor: page.nextCursor } };
    },

    revokeApiKey: async ({ params, req }) => {
      if (!(await identity.apiKeys.revoke(principalOf(req).tenant, params.keyId))) throw notFound();
      return { status: 204 };
    },

    rotateApiKey: async ({ params, body, req }) => {
      const principal = principalOf(req);
      try {
        const rotated = await identity.apiKeys.rotate(principal.tenant, params.keyId, body?.grace_seconds ?? 3600, principal.subject);
        if (!rotated) throw notFound();
        return { status: 201, headers: NO_STORE, body: { ...apiKeyJson(rotated.record), secret: rotated.secret } };
      } catch (err) {
        if (err instanceof RotationConflict) throw new ProblemError(409, { detail: err.message });
        throw err;
      }
    },
  };
}

/** An API key's metadata as the spec's ApiKey: never its hash, never its secret. */
export function apiKeyJson(r: ApiKeyRecord) {
  return {
    key_id: r.keyId,
    prefix: apiKeyPrefix(r),
    name: r.name,
    tenant: r.tenant,
    roles: r.roles,
    scopes: r.scopes,
    created_at: r.createdAt.toISOString(),
    expires_at: r.expiresAt?.toISOString() ?? null,
    last_used_at: r.lastUsedAt?.toISOString() ?? null,
    revoked: r.revokedAt !== null,
    created_by: r.createdBy,
  };
}

/** The caller; the auth plugin guarantees one on every operation with security requirements. */
export function principalOf(req: Request): Principal {
  if (!req.principal) throw new ProblemError(401, { detail: 'This operation needs credentials.' });
  return req.principal;
}

const notFound = () => new ProblemError(404, { detail: 'No such api-key, or the caller may not see it.' });

/** RFC 6749 section 2.3.1: `Basic base64(urlencode(id):urlencode(secret))`. */
function parseBasic(header: string | undefined): { id: string; secret: string } | 'malformed' | undefined {
  if (!header || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'malformed';
  try {
    return { id: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')), secret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')) };
  } catch {
    return 'malformed';
  }
}
