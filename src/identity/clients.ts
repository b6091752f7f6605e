import type { MetadataStore } from '../stores/index.js';
import { toAttributes, type Principal } from './principal.js';
import { randomBase62 } from './random.js';
import { digestsEqual, hashSecret } from './secrets.js';

export interface OAuthClient {
  clientId: string;
  tenant: string;
  name: string;
  roles: string[];
  scopes: string[];
  attributes: Principal['attributes'];
  disabled: boolean;
}

export interface NewOAuthClient {
  clientId: string;
  tenant: string;
  name?: string;
  roles: string[];
  scopes: string[];
  attributes?: Principal['attributes'];
}

interface Row {
  client_id: string;
  tenant: string;
  name: string;
  secret_hash: string;
  roles: string[];
  scopes: string[];
  attributes: unknown;
  disabled: boolean;
}

const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}$/;

/**
 * OAuth 2.0 clients for the client credentials grant. Weir generates their secrets (about 238
 * bits), so a keyed HMAC is enough to store them; a human-chosen password would need a slow hash.
 */
export class OAuthClientStore {
  // Compared against when the client id is unknown, so both failures take the same work.
  readonly #decoy: string;

  constructor(
    private readonly metadata: MetadataStore,
    private readonly pepper: Buffer,
  ) {
    this.#decoy = hashSecret(pepper, randomBase62(40));
  }

  async create(input: NewOAuthClient): Promise<{ client: OAuthClient; secret: string }> {
    if (!CLIENT_ID.test(input.clientId)) throw new Error(`client id ${JSON.stringify(input.clientId)} must match ${CLIENT_ID}`);
    const secret = `weir_cs_${randomBase62(40)}`;
    const { rows } = await this.metadata.query<Row>(
      `INSERT INTO oauth_clients (client_id, tenant, name, secret_hash, roles, scopes, attributes)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (client_id) DO NOTHING RETURNING *`,
      [input.clientId, input.tenant, input.name ?? input.clientId, hashSecret(this.pepper, secret), input.roles, input.scopes, JSON.stringify(input.attributes ?? {})],
    );
    if (!rows[0]) throw new Error(`An OAuth client ${input.clientId} already exists`);
    return { client: toClient(rows[0]), secret };
  }

  /** The client when the id and secret match and it is enabled; otherwise undefined, in constant time per secret. */
  async authenticate(clientId: string, secret: string): Promise<OAuthClient | undefined> {
    const { rows } = CLIENT_ID.test(clientId)
      ? await this.metadata.query<Row>(`SELECT * FROM oauth_clients WHERE client_id = $1`, [clientId])
      : { rows: [] as Row[] };
    const row = rows[0];
    const matches = digestsEqual(row?.secret_hash ?? this.#decoy, hashSecret(this.pepper, secret));
    return row && matches && !row.disabled ? toClient(row) : undefined;
  }

  async count(): Promise<number> {
    const { rows } = await this.metadata.query<{ n: string }>(`SELECT count(*) AS n FROM oauth_clients`);
    return Number(rows[0]?.n ?? 0);
  }
}

const toClient = (r: Row): OAuthClient => ({
  clientId: r.client_id,
  tenant: r.tenant,
  name: r.name,
  roles: r.roles,
  scopes: r.scopes,
  attributes: toAttributes(r.attributes),
  disabled: r.disabled,
});
