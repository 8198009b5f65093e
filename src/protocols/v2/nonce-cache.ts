// Legacy v2 replay protection (TENCENT-API §1.2-§1.3: "a repeated Nonce is rejected", common code 4500):
// remembers each signed (SecretId, Timestamp, Nonce) for as long as its Timestamp can still pass the window.

export type NonceOutcome = 'recorded' | 'replayed' | 'full';

interface Entry {
  readonly expiresAt: number;
  readonly key: string;
}

/**
 * Bounded, in-process memory of used nonces.
 *
 * The key includes the signed Timestamp: a replay re-sends the same signed Timestamp and Nonce (it
 * cannot change either without the key), so it is always caught, while two genuine requests that
 * drew the same 16-bit Nonce (qcloudapi-sdk draws 0–65535) in different seconds are not refused.
 * An entry lives until its Timestamp falls out of the window; after that the timestamp check
 * refuses the request anyway. At capacity it refuses new requests rather than forget live entries.
 * Per process: replicas behind a load balancer each keep their own.
 */
export class NonceCache {
  readonly #windowSeconds: number;
  readonly #capacity: number;
  readonly #live = new Set<string>();
  /** Min-heap on expiresAt, so expired entries are dropped oldest first in O(log n). */
  readonly #heap: Entry[] = [];

  constructor(options: { windowSeconds: number; capacity: number }) {
    if (!(options.capacity > 0) || !(options.windowSeconds > 0)) throw new RangeError('NonceCache: capacity and windowSeconds must be positive');
    this.#windowSeconds = options.windowSeconds;
    this.#capacity = options.capacity;
  }

  /** Entries currently remembered. */
  get size(): number {
    return this.#live.size;
  }

  /**
   * Records the triple unless it was seen before (`replayed`) or the cache is full of live entries
   * (`full`). Call only after the signature verified, so forged requests cannot fill it.
   */
  remember(secretId: string, timestampSeconds: number, nonce: string, nowMs: number): NonceOutcome {
    this.#evictExpired(nowMs);
    const key = JSON.stringify([secretId, timestampSeconds, nonce]);
    if (this.#live.has(key)) return 'replayed';
    if (this.#live.size >= this.#capacity) return 'full';
    // Accepted while |now - ts| <= window (in whole seconds), i.e. until the start of second ts + window + 1.
    this.#push({ expiresAt: (timestampSeconds + this.#windowSeconds + 1) * 1000, key });
    this.#live.add(key);
    return 'recorded';
  }

  #evictExpired(nowMs: number): void {
    for (let top = this.#heap[0]; top !== undefined && top.expiresAt <= nowMs; top = this.#heap[0]) {
      this.#live.delete(top.key);
      this.#pop();
    }
  }

  #push(entry: Entry): void {
    const h = this.#heap;
    h.push(entry);
    for (let i = h.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.expiresAt <= h[i]!.expiresAt) break;
      [h[parent], h[i]] = [h[i]!, h[parent]!];
      i = parent;
    }
  }

  #pop(): void {
    const h = this.#heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    h[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < h.length && h[l]!.expiresAt < h[min]!.expiresAt) min = l;
      if (r < h.length && h[r]!.expiresAt < h[min]!.expiresAt) min = r;
      if (min === i) return;
      [h[min], h[i]] = [h[i]!, h[min]!];
      i = min;
    }
  }
}
