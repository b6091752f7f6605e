import { randomUUID } from 'node:crypto';
import type { Watcher } from 'casbin';
import type { Logger } from 'pino';
import type { SharedState } from '../stores/index.js';

export const POLICY_CHANNEL = 'authz:policy';

/**
 * A Casbin watcher over the shared-state pub/sub (Redis, or in-process): `update()` tells every
 * other gateway process that grants changed, and each reloads its policy on the message.
 */
export class SharedStateWatcher implements Watcher {
  readonly #origin = randomUUID();
  #callback: () => void = () => {};
  #unsubscribe?: () => Promise<void>;

  constructor(
    private readonly shared: SharedState,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    this.#unsubscribe = await this.shared.subscribe(POLICY_CHANNEL, (message) => {
      if (message !== this.#origin) this.#callback();
    });
  }

  setUpdateCallback(cb: () => void): void {
    this.#callback = cb;
  }

  async update(): Promise<boolean> {
    try {
      await this.shared.publish(POLICY_CHANNEL, this.#origin);
      return true;
    } catch (err) {
      // Other processes still pick the change up at their periodic reload (AUTHZ_RELOAD_MS).
      this.logger.warn({ err }, 'authz: could not publish a policy change');
      return false;
    }
  }

  async close(): Promise<void> {
    await this.#unsubscribe?.().catch(() => {});
  }
}
