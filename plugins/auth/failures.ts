import type { ApiKeyFailure } from '../../src/identity/api-keys.js';
import type { JwtFailure } from '../../src/identity/jwt-verifier.js';

/** Why a presented credential was refused. The texts are fixed: no part of a credential is ever echoed. */
export type CredentialFailure = { scheme: 'bearer'; reason: JwtFailure } | { scheme: 'apiKey'; reason: ApiKeyFailure; prefix?: string };

export const JWT_DETAIL: Record<JwtFailure, string> = {
  malformed: 'The bearer token is not a well-formed JWT.',
  'untrusted-issuer': 'The bearer token was not issued by an issuer this gateway trusts.',
  algorithm: "The bearer token's signing algorithm is not accepted for its issuer.",
  signature: "The bearer token's signature does not verify.",
  'unknown-key': "No key of the token's issuer matches the token's kid.",
  'keys-unavailable': "The signing keys of the token's issuer could not be fetched; try again later.",
  expired: 'The bearer token has expired; get a new one.',
  'not-yet-valid': 'The bearer token is not valid yet (nbf).',
  'wrong-audience': 'The bearer token is not meant for this API (aud).',
  claims: 'The bearer token lacks a required claim (exp, sub) or has an invalid one.',
  'no-tenant': 'The bearer token names no tenant.',
  invalid: 'The bearer token could not be verified.',
};

export const API_KEY_DETAIL: Record<ApiKeyFailure, string> = {
  malformed: 'The API key is malformed (its format, environment or checksum is wrong); check that it was copied whole.',
  invalid: 'The API key is not valid.',
  revoked: 'The API key has been revoked.',
  expired: 'The API key has expired.',
};

export function describeFailure(f: CredentialFailure): string {
  return f.scheme === 'bearer' ? JWT_DETAIL[f.reason] : API_KEY_DETAIL[f.reason];
}
