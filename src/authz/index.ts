import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Stores } from '../stores/index.js';
import { Authorizer } from './authorizer.js';
import { GrantStore } from './grants.js';
import { defaultPolicyDir } from './policy-files.js';
import { ResourceResolvers } from './resources.js';

export type { ResourceOwner, ResourceResolver } from './resources.js';

/** Authorization: the Casbin-backed decisions, the grants store, and who owns each resource. */
export interface AccessControl {
  authorizer: Authorizer;
  grants: GrantStore;
  resources: ResourceResolvers;
  close(): Promise<void>;
}

// Long enough to spare Casbin's linear policy scan on repeated requests, short enough that an
// expiring grant lapses on time.
const DECISION_CACHE_MS = 1000;

export async function openAccessControl(config: Config, stores: Pick<Stores, 'metadata' | 'shared'>, logger: Logger): Promise<AccessControl> {
  const grants = new GrantStore(stores.metadata);
  const authorizer = await Authorizer.open({
    policyDir: config.auth.policyDir ?? defaultPolicyDir(),
    grants,
    shared: stores.shared,
    logger,
    reloadMs: config.auth.authzReloadMs,
    decisionCacheMs: DECISION_CACHE_MS,
  });
  return { authorizer, grants, resources: new ResourceResolvers(), close: () => authorizer.close() };
}
