import { pino } from 'pino';
import { loadConfig, type Config } from '../config.js';
import { openIdentity, type Identity } from '../identity/index.js';
import { openMetadataStore } from '../stores/metadata.js';
import { openSharedState } from '../stores/shared-state.js';

/** Opens the configured metadata and shared-state stores (not the warehouse) and the identity services on them. */
export async function withIdentity<T>(fn: (identity: Identity, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const logger = pino({ level: 'warn' });
  const metadata = await openMetadataStore({ databaseUrl: config.database.url, dataDir: config.dataDir, schema: config.database.schema, logger });
  try {
    const shared = await openSharedState({ redisUrl: config.redis.url, keyPrefix: config.redis.keyPrefix, logger });
    try {
      const identity = await openIdentity(config, { metadata, shared }, logger);
      try {
        return await fn(identity, config);
      } finally {
        await identity.close();
      }
    } finally {
      await shared.close();
    }
  } finally {
    await metadata.close();
  }
}

export const csvList = (text: string | undefined): string[] => (text ?? '').split(',').map((s) => s.trim()).filter(Boolean);
