import { z } from 'zod';

// The authorizer itself is configured from the app config (POLICY_DIR, AUTHZ_RELOAD_MS); the plugin has no options yet.
export const AuthzOptions = z.object({}).prefault({});

export type AuthzOptions = z.infer<typeof AuthzOptions>;
