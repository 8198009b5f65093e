// In-memory object storage: the Vary variants of each cache key, bounded in total bytes, LRU eviction.

/** What the storage needs to know about an entry: the cache key it is a variant of. */
export interface StorageEntry {
  readonly key: string;
}

/**
 * Byte-bounded LRU storage of entries grouped by cache key (one entry per Vary variant).
 *
 * The LRU order is the insertion order of one Map (touch = delete + set, both O(1)); the Map's value
 * is the entry's accounted size, so callers may mutate their entries freely without breaking the
 * byte count. Nothing here scans the whole storage except `clear()`.
 */
export class MemoryStorage<E extends StorageEntry> {
  readonly maxBytes: number;
  /** entry → accounted bytes, least recently used first. */
  readonly #lru = new Map<E, number>();
  readonly #byKey = new Map<string, E[]>();
  #bytes = 0;

  constructor(maxBytes: number) {
    if (!(maxBytes >= 0)) throw new RangeError(`maxBytes must be >= 0, got ${maxBytes}`);
    this.maxBytes = maxBytes;
  }

  /** Total accounted bytes; never above `maxBytes` after a call returns. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Number of entries (variants), not keys. */
  get count(): number {
    return this.#lru.size;
  }

  /** The variants stored under `key`, oldest first; undefined when none. Does not touch the LRU. */
  variants(key: string): readonly E[] | undefined {
    return this.#byKey.get(key);
  }

  has(entry: E): boolean {
    return this.#lru.has(entry);
  }

  /**
   * Adds an entry of `size` bytes as the most recently used, then evicts least recently used entries
   * until the total fits. An entry larger than `maxBytes` is refused (`stored: false`) and nothing is
   * evicted for it. Returns the evicted entries so the caller can drop its own references.
   */
  add(entry: E, size: number): { stored: boolean; evicted: E[] } {
    if (size > this.maxBytes) return { stored: false, evicted: [] };
    if (this.#lru.has(entry)) this.remove(entry);
    this.#lru.set(entry, size);
    this.#bytes += size;
    const list = this.#byKey.get(entry.key);
    if (list === undefined) this.#byKey.set(entry.key, [entry]);
    else list.push(entry);
    return { stored: true, evicted: this.#evict(entry) };
  }

  /** Marks an entry most recently used. */
  touch(entry: E): void {
    const size = this.#lru.get(entry);
    if (size === undefined) return;
    this.#lru.delete(entry);
    this.#lru.set(entry, size);
  }

  /** Removes one entry; false when it was not stored. */
  remove(entry: E): boolean {
    const size = this.#lru.get(entry);
    if (size === undefined) return false;
    this.#lru.delete(entry);
    this.#bytes -= size;
    const list = this.#byKey.get(entry.key);
    if (list !== undefined) {
      const i = list.indexOf(entry);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#byKey.delete(entry.key);
    }
    return true;
  }

  /** Removes every variant of `key`; returns them. */
  removeKey(key: string): E[] {
    const list = this.#byKey.get(key);
    if (list === undefined) return [];
    const removed = [...list];
    for (const e of removed) this.remove(e);
    return removed;
  }

  clear(): void {
    this.#lru.clear();
    this.#byKey.clear();
    this.#bytes = 0;
  }

  /** Evicts from the LRU end until within budget; `added` (the newest, which fits alone) stays. */
  #evict(added: E): E[] {
    const evicted: E[] = [];
    while (this.#bytes > this.maxBytes) {
      const victim = this.#lru.keys().next().value;
      if (victim === undefined || victim === added) break;
      this.remove(victim);
      evicted.push(victim);
    }
    return evicted;
  }
}
