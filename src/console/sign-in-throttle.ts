// Brute-force brake for console sign-in: failures are counted per client address (an IPv6 /64 is one)
// and per SecretId in leaky buckets; once a bucket is empty, sign-in is refused until it refills.
import type { Clock } from '../shared/clock.ts';

export interface ThrottleLimits {
  /** Failures admitted in a row before the brake (default 5). */
  readonly burst: number;
  /** One more failure is admitted after this long (default 30 s). */
  readonly refillMs: number;
  /** Keys remembered; past it full buckets are forgotten, then the oldest (default 100,000). */
  readonly maxKeys: number;
}

const DEFAULTS: ThrottleLimits = { burst: 5, refillMs: 30_000, maxKeys: 100_000 };

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Only failures take tokens: a user who types the right key is never slowed by this, and an attacker
 * spraying one SecretId from many addresses is braked by the SecretId's bucket.
 */
export class SignInThrottle {
  readonly #clock: Clock;
  readonly #l: ThrottleLimits;
  readonly #buckets = new Map<string, Bucket>();

  constructor(clock: Clock, limits: Partial<ThrottleLimits> = {}) {
    this.#clock = clock;
    this.#l = { ...DEFAULTS, ...limits };
  }

  /** Milliseconds until every key may try again; 0 when none is braked. */
  retryAfterMs(keys: readonly string[]): number {
    const now = this.#clock.now();
    let wait = 0;
    for (const k of keys) {
      const tokens = this.#tokens(this.#buckets.get(k), now);
      if (tokens < 1) wait = Math.max(wait, Math.ceil((1 - tokens) * this.#l.refillMs));
    }
    return wait;
  }

  /** Records one failed sign-in against every key. */
  fail(keys: readonly string[]): void {
    const now = this.#clock.now();
    for (const k of keys) {
      const tokens = this.#tokens(this.#buckets.get(k), now);
      this.#buckets.delete(k);
      this.#buckets.set(k, { tokens: Math.max(0, tokens - 1), at: now });
    }
    if (this.#buckets.size > this.#l.maxKeys) this.#sweep(now);
  }

  #tokens(b: Bucket | undefined, now: number): number {
    return b ? Math.min(this.#l.burst, b.tokens + (now - b.at) / this.#l.refillMs) : this.#l.burst;
  }

  #sweep(now: number): void {
    for (const [k, b] of this.#buckets) if (this.#tokens(b, now) >= this.#l.burst) this.#buckets.delete(k);
    // Still too many (a flood of distinct keys): forget the least recently failed.
    for (const k of this.#buckets.keys()) {
      if (this.#buckets.size <= this.#l.maxKeys) break;
      this.#buckets.delete(k);
    }
  }
}
