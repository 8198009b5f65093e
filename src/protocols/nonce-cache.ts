// Replay protection for HMAC-signed requests — legacy v2 (TENCENT-API §1.2-§1.3: "a repeated Nonce is
// rejected", common code 4500) and API 3.0 v1 HmacSHA1/HmacSHA256 (§2.5): remembers each accepted
// request, per account, while its signed Timestamp can still pass the window.
import { ApiError } from '../shared/errors.ts';

/** What makes a verified request unique; every part is covered by its signature. */
export interface NonceClaim {
  readonly secretId: string;
  /** The signed Timestamp, Unix seconds. */
  readonly timestamp: number;
  readonly nonce: string;
  /** The signature as received (an exact-match check accepted it, so a replay carries the very same string). */
  readonly signature: string;
}

export type NonceCheck = 'fresh' | 'replayed' | 'full';

interface Entry {
  readonly expiresAt: number;
  readonly key: string;
  readonly account: number;
}

/**
 * Bounded, in-process memory of accepted requests, partitioned by account.
 *
 * A replay re-sends the Signature unchanged (it cannot make another without the secret key), so it is
 * always caught, while two genuine requests that drew the same 16-bit Nonce in the same second
 * (qcloudapi-sdk and the Node SDK's v1 signer draw 0–65535) differ in their Signature and are not refused.
 *
 * An entry lives until its Timestamp falls out of the window; after that the timestamp check refuses
 * the request anyway. Each account has its own bound, passed with every check (it follows the
 * account's rate limit, which a reload may change): when an account's share is full only that
 * account is refused, never by forgetting live entries. Per process: replicas on one store also share
 * a replay memory in it (ReplicaCoordination.claimNonce), checked after this one.
 */
export class NonceCache {
  readonly #windowSeconds: number;
  readonly #live = new Set<string>();
  readonly #perAccount = new Map<number, number>();
  /** Min-heap on expiresAt over every account, so expired entries are dropped oldest first in O(log n). */
  readonly #heap: Entry[] = [];

  constructor(options: { windowSeconds: number }) {
    if (!(options.windowSeconds > 0)) throw new RangeError('NonceCache: windowSeconds must be positive');
    this.#windowSeconds = options.windowSeconds;
  }

  /** How long after its signed Timestamp a request is still accepted (and its entry kept). */
  get windowSeconds(): number {
    return this.#windowSeconds;
  }

  /** Entries currently remembered, all accounts together. */
  get size(): number {
    return this.#live.size;
  }

  /** Entries currently remembered for one account (as of the last check or record). */
  sizeOf(account: number): number {
    return this.#perAccount.get(account) ?? 0;
  }

  /**
   * Whether `claim` may be accepted now: `replayed` when it was recorded before, `full` when
   * `account` already holds `capacity` live entries. Records nothing: see {@link record}.
   */
  check(account: number, claim: NonceClaim, capacity: number, nowMs: number): NonceCheck {
    this.#evictExpired(nowMs);
    if (this.#live.has(keyOf(claim))) return 'replayed';
    return this.sizeOf(account) >= capacity ? 'full' : 'fresh';
  }

  /**
   * Remembers `claim` for `account`. Call it only for a request that passed everything else (signature,
   * action, account, rate limit), so that no refused request uses up a Nonce or a share of the cache.
   */
  record(account: number, claim: NonceClaim, nowMs: number): void {
    const key = keyOf(claim);
    const expiresAt = nonceExpiresAt(claim, this.#windowSeconds);
    if (expiresAt <= nowMs || this.#live.has(key)) return;
    this.#push({ expiresAt, key, account });
    this.#live.add(key);
    this.#perAccount.set(account, this.sizeOf(account) + 1);
  }

  #evictExpired(nowMs: number): void {
    for (let top = this.#heap[0]; top !== undefined && top.expiresAt <= nowMs; top = this.#heap[0]) {
      this.#live.delete(top.key);
      const left = this.sizeOf(top.account) - 1;
      if (left > 0) this.#perAccount.set(top.account, left);
      else this.#perAccount.delete(top.account);
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

/**
 * The Signature alone identifies a request: it is an HMAC, under the key's secret, of a string holding the
 * SecretId, Timestamp and Nonce, so distinct requests never share one and a replay always repeats it.
 * Keying on it keeps an entry at about 170 bytes (all four parts joined would be about 400).
 */
const keyOf = (c: NonceClaim): string => c.signature;

/** Accepted while |now - ts| <= window (in whole seconds), i.e. until the start of second ts + window + 1. */
export const nonceExpiresAt = (claim: NonceClaim, windowSeconds: number): number => (claim.timestamp + windowSeconds + 1) * 1000;

/** The replay memory's key of a claim, shared by replicas (see keyOf). */
export const nonceKey = (claim: NonceClaim): string => keyOf(claim);

/** AuthFailure.ReplayAttack for `claim`. */
export const replayAttack = (claim: NonceClaim): ApiError =>
  new ApiError(
    'AuthFailure.ReplayAttack',
    `Nonce ${claim.nonce} with Timestamp ${claim.timestamp} was already used for this very request; every request needs a fresh Nonce.`,
  );

/** The bound for an account whose rate limit is off (`rateLimit: false`): nothing to derive it from. */
export const UNTHROTTLED_NONCE_CAPACITY = 1_000_000;

/**
 * An account's share of a cache: as many requests as its rate limit can admit while one entry lives.
 * Each action has its own token bucket (`buckets` of them), which admits at most
 * `burst + perSecond × T` requests in T seconds, and an on-time request's entry lives `window + 1` s.
 * So a client with a correct clock never meets the bound even at its full rate on every action; only
 * one that also signs far-future Timestamps (its entries live up to twice as long) can, and then only
 * it is refused. Legacy v2 by default: 5 actions × (40 + 20 × 7201) = 720,300 entries.
 */
export function nonceCapacity(rateLimit: { readonly perSecond: number; readonly burst: number } | false, buckets: number, windowSeconds: number): number {
  if (rateLimit === false) return UNTHROTTLED_NONCE_CAPACITY;
  return buckets * (rateLimit.burst + Math.ceil(rateLimit.perSecond * (windowSeconds + 1)));
}

/**
 * Refuses a replayed claim (AuthFailure.ReplayAttack) or one over the account's bound
 * (RequestLimitExceeded), else returns the function that records it. The caller runs its last checks
 * (the rate limit) in between, with no `await`, so that two copies of one request cannot both pass
 * and a replay is refused before it spends the account's rate limit.
 */
export function reserveNonce(cache: NonceCache, account: number, claim: NonceClaim, capacity: number, nowMs: number): () => void {
  switch (cache.check(account, claim, capacity, nowMs)) {
    case 'replayed':
      throw replayAttack(claim);
    case 'full':
      throw new ApiError(
        'RequestLimitExceeded',
        `This account already has ${capacity} signed requests inside the replay window (its share of the Nonce cache); retry later.`,
      );
    case 'fresh':
      return () => cache.record(account, claim, nowMs);
  }
}
