// The per-account, per-action rate limit (TENCENT-API §7.8): in memory for a process alone on its store,
// in the store when replicas share one (issue 9), so that N replicas admit the limit once, not N times.
import type { Clock } from '../shared/clock.ts';
import { TokenBuckets } from '../shared/token-bucket.ts';
import type { ReplicaCoordination } from '../store/replica-coordination.ts';

export class RateLimits {
  readonly #clock: Clock;
  readonly #local: TokenBuckets;
  readonly #shared: ReplicaCoordination | undefined;

  constructor(clock: Clock, shared?: ReplicaCoordination) {
    this.#clock = clock;
    this.#local = new TokenBuckets(clock);
    this.#shared = shared;
  }

  /**
   * Takes one token of `key`: a boolean at once in memory (no await between a caller's checks), a promise
   * of one when replicas share the buckets. A refused call takes nothing.
   */
  take(key: string, perSecond: number, burst: number): boolean | Promise<boolean> {
    if (!this.#shared) return this.#local.take(key, perSecond, burst);
    return this.#shared.takeToken(key, perSecond, burst, this.#clock.now());
  }

  /**
   * Whether `key` is known to have no token left, without taking one and without waiting: from this
   * process's buckets alone on its store; with replicas, false (their bucket is the store's, see take).
   */
  exhausted(key: string, perSecond: number, burst: number): boolean {
    return !this.#shared && this.#local.empty(key, perSecond, burst);
  }
}
