// What control-plane replicas sharing one store must agree on besides the data (issue 9): one leader for
// the duties that must run once, one rate limit per account and action, one memory of replayed Nonces.

/** A campaign for leadership: held while this process's session on the shared store holds the lock. */
export interface LeaderLease {
  /** True while the lock is held; false from the moment the session holding it is known dead. */
  readonly isLeader: boolean;
  /** Called with every change of isLeader, in order. Returns a function that unsubscribes. */
  onChange(listener: (leader: boolean) => void): () => void;
  /** Starts campaigning (retrying while another replica holds the lock). Idempotent. */
  start(): void;
  /** Gives the lock up (another replica may take it at once) and stops campaigning. Idempotent. */
  close(): Promise<void>;
}

/**
 * Optional capability of a TaskStore that several processes share (TaskStore.replicas). Each call is one
 * round trip to the store; none is part of a job's transaction.
 */
export interface ReplicaCoordination {
  /** A lease on leadership `name` (one per duty set; replicas on the same store compete for it). */
  leaderLock(name: string): LeaderLease;
  /**
   * Takes one token from bucket `key` (refilled at `perSecond`, at most `burst`), exactly across replicas:
   * false when it is empty, and a refused call takes nothing. `nowMs` is the caller's clock.
   */
  takeToken(key: string, perSecond: number, burst: number, nowMs: number): Promise<boolean>;
  /**
   * Remembers `key` until `expiresAt` (ms); false when it is already remembered by any replica (a replay).
   * Durable within the store's stated window (see the backend).
   */
  claimNonce(key: string, expiresAt: number): Promise<boolean>;
  /** Forgets keys whose expiresAt has passed (the nonce-expiry duty); returns how many. */
  expireNonces(nowMs: number): Promise<number>;
}
