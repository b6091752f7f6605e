import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

export function createLogger(config: Pick<Config, 'log'>): Logger {
  return pino({
    level: config.log.level,
    base: { service: 'weir' },
    redact: { paths: ['req.headers.authorization', 'req.headers["x-api-key"]', '*.password', '*.secret', '*.token'], censor: '[redacted]' },
    ...(config.log.format === 'pretty' && { transport: { target: 'pino-pretty', options: { colorize: true } } }),
  });
}
