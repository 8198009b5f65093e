// Token buckets keyed by name (per account and action): burst capacity refilled at a steady rate.
import type { Clock } from './clock.ts';

interface Bucket {
  tokens: number;
  at: number;
}

/** The tokens `b` holds at `now`, refilled at `perSecond` (uncapped: callers cap at the burst). */
const level = (b: Bucket, now: number, perSecond: number): number => b.tokens + ((now - b.at) / 1000) * perSecond;

export class TokenBuckets {
  readonly #clock: Clock;
  readonly #buckets = new Map<string, Bucket>();
  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /**
   * Takes one token from `key`'s bucket; false when it is empty. Whole requests are admitted or
   * refused: a refused call takes nothing.
   */
  take(key: string, perSecond: number, burst: number): boolean {
    const now = this.#clock.now();
    let b = this.#buckets.get(key);
    if (!b) {
      b = { tokens: burst, at: now };
      this.#buckets.set(key, b);
      // Buckets of idle keys refill to full and carry no information; forget them now and then.
      if (this.#buckets.size > 100_000) this.#sweep(now, perSecond, burst);
    }
    b.tokens = Math.min(burst, level(b, now, perSecond));
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Whether `key`'s bucket is empty right now (nothing taken; a key never taken from is full). */
  empty(key: string, perSecond: number, burst: number): boolean {
    const b = this.#buckets.get(key);
    return b !== undefined && Math.min(burst, level(b, this.#clock.now(), perSecond)) < 1;
  }

  #sweep(now: number, perSecond: number, burst: number): void {
    for (const [k, b] of this.#buckets) {
      if (level(b, now, perSecond) >= burst) this.#buckets.delete(k);
    }
  }
}
