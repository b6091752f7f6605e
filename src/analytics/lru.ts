/**
 * A Map bounded to `limit` entries that evicts the least recently used ones, approximately: entries
 * live in two generations of limit/2 each; a read finds an entry in the recent one without moving
 * it (one lookup, where an exact LRU deletes and re-inserts on every read), or promotes it from
 * the older one; when the recent generation is full, the older one is dropped whole. An entry read
 * or written within the last limit/2 insertions is never evicted.
 */
export class LruMap<K, V> {
  #recent = new Map<K, V>();
  #older = new Map<K, V>();
  readonly #half: number;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 2) throw new Error(`limit must be an integer of at least 2, got ${limit}`);
    this.#half = Math.floor(limit / 2);
  }

  get size(): number {
    return this.#recent.size + this.#older.size;
  }

  get(key: K): V | undefined {
    const value = this.#recent.get(key);
    if (value !== undefined) return value;
    const old = this.#older.get(key);
    if (old !== undefined) {
      this.#older.delete(key);
      this.#add(key, old);
    }
    return old;
  }

  set(key: K, value: V): void {
    if (this.#recent.has(key)) {
      this.#recent.set(key, value);
      return;
    }
    this.#older.delete(key);
    this.#add(key, value);
  }

  delete(key: K): void {
    this.#recent.delete(key);
    this.#older.delete(key);
  }

  #add(key: K, value: V): void {
    if (this.#recent.size >= this.#half) {
      this.#older = this.#recent;
      this.#recent = new Map();
    }
    this.#recent.set(key, value);
  }
}
