import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { listen } from './server.js';

/** `npm start`: load config, open the stores, serve, and shut down gracefully on SIGINT/SIGTERM. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`${err.message}\nSee "Configuration" in README.md for every setting.`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config);
  const app = await buildApp(config, { logger });
  const running = await listen(app, config, logger);
  logger.info({ url: running.url, docs: `${running.url}/docs`, dataDir: config.dataDir }, `Weir is listening on ${running.url}`);
  if (process.stdout.isTTY || config.log.format === 'pretty') {
    console.log(`\n  Weir gateway: ${running.url}\n  API reference: ${running.url}/docs\n  Health: ${running.url}/healthz  Readiness: ${running.url}/readyz\n`);
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    running.shutdown(signal).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

main().catch((err: unknown) => {
  console.error('Weir failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
