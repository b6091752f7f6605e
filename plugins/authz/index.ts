import { definePlugin } from '../../src/gateway/plugin.js';
import { PRIORITY } from '../priorities.js';
import { authorizeMiddleware, authzSettings } from './authorize.js';
import { AuthzOptions } from './schema.js';

/** Authorization of each operation's x-weir-authz against the Casbin policy (policies/ and grants). */
export const authzPlugin = definePlugin({
  name: 'authz',
  priority: PRIORITY.authz,
  options: AuthzOptions,
  forOperation: (op) => authzSettings(op),
  middleware: (settings, { access, logger }) => authorizeMiddleware(settings, access, logger),
});
