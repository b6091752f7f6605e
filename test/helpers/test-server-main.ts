// A gateway process for tests that trusts the test principal headers (test/helpers/test-principal.ts)
// instead of real credentials. Started by startServerProcess(name, env, { entry: TEST_SERVER_ENTRY }).
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { listen } from '../../src/server.js';
import { pluginsWithTestPrincipal } from './test-principal.js';

const config = loadConfig();
const logger = createLogger(config);
const app = await buildApp(config, { logger, plugins: pluginsWithTestPrincipal() });
const running = await listen(app, config, logger);
logger.info({ url: running.url }, `Weir is listening on ${running.url}`);
process.on('SIGTERM', () => void running.shutdown('SIGTERM').then(() => process.exit(0)));
