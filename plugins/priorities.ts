/**
 * The order of the request path, in one place. Higher runs first (ties by name).
 * Authentication and authorization come before anything reads the body, and rate limits before
 * the body is read too, so a flood is refused cheaply.
 */
export const PRIORITY = {
  'request-id': 1000,
  metrics: 950,
  audit: 925,
  auth: 900,
  authz: 850,
  'rate-limit': 800,
  deprecation: 780,
  body: 750,
  validation: 700,
} as const;
