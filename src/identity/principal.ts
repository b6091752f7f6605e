import type { Principal } from '../gateway/request-types.js';

export type { Principal };
export type AttributeValue = Principal['attributes'][string];

/** Keeps only attribute values a policy condition can compare (strings, numbers, booleans, string lists). */
export function toAttributes(value: unknown): Principal['attributes'] {
  const out: Principal['attributes'] = {};
  if (typeof value !== 'object' || value === null) return out;
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
    else if (Array.isArray(v) && v.every((x) => typeof x === 'string')) out[k] = v as string[];
  }
  return out;
}

/** Principals are shared between requests (one per cached credential) and remembered by identity: never changed. */
export function freezePrincipal(p: Principal): Principal {
  Object.freeze(p.roles);
  Object.freeze(p.scopes);
  Object.freeze(p.attributes);
  return Object.freeze(p);
}
