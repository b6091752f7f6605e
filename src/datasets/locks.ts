/**
 * Per-key async lock: schema changes and undos of one dataset (`run`, exclusive) never overlap
 * each other nor any warehouse flush of it; flushes (`runShared`) may overlap each other.
 * Waiters are served in arrival order: a shared run queued after an exclusive one waits for it.
 */
export class KeyedMutex {
  /** Settles when every exclusive run queued so far for the key is done. */
  private readonly tails = new Map<string, Promise<void>>();
  /** Shared runs queued or running, per key. */
  private readonly readers = new Map<string, Set<Promise<void>>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const active = [...(this.readers.get(key) ?? [])];
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const ready = active.length ? Promise.all([previous, ...active]).then(() => {}) : previous;
    const tail = ready.then(() => current);
    this.tails.set(key, tail);
    await ready;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  async runShared<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    let set = this.readers.get(key);
    if (!set) this.readers.set(key, (set = new Set()));
    set.add(done);
    try {
      if (previous) await previous;
      return await fn();
    } finally {
      release();
      set.delete(done);
      if (!set.size && this.readers.get(key) === set) this.readers.delete(key);
    }
  }
}
