import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { OAuthClient } from './clients.js';
import type { SigningKeys } from './signing-keys.js';

export interface IssuedToken {
  accessToken: string;
  expiresIn: number;
  scope: string;
}

/** Signs the short-lived access tokens of the client credentials grant with the current signing key. */
export class TokenIssuer {
  constructor(
    private readonly keys: SigningKeys,
    private readonly settings: { issuer: string; audience: string; ttlS: number },
  ) {}

  async issue(client: OAuthClient, scopes: string[], now = Date.now()): Promise<IssuedToken> {
    const signer = await this.keys.signer(now);
    const iat = Math.floor(now / 1000);
    const scope = scopes.join(' ');
    const accessToken = await new SignJWT({ tenant: client.tenant, roles: client.roles, scope, client_id: client.clientId, attrs: client.attributes })
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'at+jwt' })
      .setIssuer(this.settings.issuer)
      .setAudience(this.settings.audience)
      .setSubject(client.clientId)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(iat + this.settings.ttlS)
      .setJti(randomBytes(12).toString('base64url'))
      .sign(signer.key);
    return { accessToken, expiresIn: this.settings.ttlS, scope };
  }
}
