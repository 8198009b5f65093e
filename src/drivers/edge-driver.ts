// The contract between `edgepurge agent` and a cache it purges (Varnish, nginx, …): one purge-log entry
// in, what the cache really executed out. Drivers import only src/shared (DESIGN "Components").

/** The five purges and prefetch (EdgeOne `Type`), as in the purge log. */
export type DriverCommandType = 'purge_url' | 'purge_prefix' | 'purge_host' | 'purge_all' | 'purge_cache_tag' | 'prefetch_url';

/** One purge-log entry as a driver sees it (structurally the fan-out's WireEntry). */
export interface DriverCommand {
  /** Global purge-log sequence number; the agent applies entries in strictly increasing order. */
  readonly seq: number;
  readonly type: DriverCommandType;
  /** `invalidate`: revalidate before serving again; `delete`: remove (DESIGN invariant 6). */
  readonly method: 'invalidate' | 'delete';
  /**
   * Domains the command touches: purge_all purges each; purge_cache_tag purges the tag on each;
   * purge_host purges these when its target is empty.
   */
  readonly hosts: readonly string[];
  /** URL (purge_url, prefetch_url), URL prefix (purge_prefix), host (purge_host), tag (purge_cache_tag), '' (purge_all). */
  readonly target: string;
  /** prefetch_url only: extra request headers. */
  readonly headers?: Readonly<Record<string, string>>;
  /** The task the entry belongs to (the agent reports what was executed under it); drivers ignore it. */
  readonly taskId?: number;
}

/**
 * What a driver did for one command, sent to the control plane with the ack and shown in per-node
 * progress (`edgepurge tasks show`, the admin view): never more than what happened (issue 8).
 */
export interface DriverReport {
  /**
   * The method the cache executed. Equal to the command's unless the cache cannot do it: then the
   * harder one it did (`delete` for an `invalidate` it could only execute as a removal, e.g. a Varnish
   * ban), with a note saying so. Never `invalidate` for a command executed as a removal.
   */
  readonly executedAs: 'invalidate' | 'delete';
  /**
   * Objects the cache says it matched, only where the cache itself counts them (xkey and vmod_purge
   * answer counts; the nginx driver counts the files of its index it expired or deleted). Absent when
   * the cache cannot tell (a Varnish ban) — never estimated.
   */
  readonly matched?: number;
  /** A short note for the operator (why executedAs differs, what was approximated); at most 300 characters are shown. */
  readonly note?: string;
}

/** What dropAll did: `matched` is the number of objects removed, where the cache counts them (absent: unknown). */
export interface DriverDropReport {
  readonly matched?: number;
}

export type DriverPrefetchOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly failType: 'originPullFailed'; readonly failMessage: string };

/**
 * Thrown by drivers. `retryable` failures (cache down, 5xx, timeout) are retried by the agent with
 * backoff and nothing is acked meanwhile; others (refused by configuration: wrong secret, VCL not
 * loaded) are reported on the node's progress as the reason it is stuck.
 */
export class DriverError extends Error {
  readonly retryable: boolean;
  constructor(message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DriverError';
    this.retryable = options.retryable;
  }
}

/**
 * A cache the agent purges. The agent calls apply/prefetch/dropAll in log order and never concurrently
 * (prefetches may overlap each other); renewLease runs on its own timer.
 */
export interface EdgeDriver {
  /** Short driver name shown in per-node progress (`varnish`, `nginx`). */
  readonly name: string;
  /**
   * Whether the cache stops serving hits by itself once the lease set by renewLease lapses, even with
   * the agent dead (DESIGN invariant 4). Only then may the control plane count the node as fenced.
   */
  readonly fencesItself: boolean;
  /** Checks that the cache is reachable and set up (VCL/snippet loaded, credentials right); throws DriverError with the fix. */
  start(): Promise<void>;
  /**
   * Executes one purge on the cache and resolves once the cache has done it (a later request can no
   * longer get the purged copy without revalidation or refetch). Idempotent: re-applying after a crash
   * between apply and ack is harmless.
   */
  apply(command: DriverCommand): Promise<DriverReport>;
  /**
   * Optional: applies consecutive purges (never prefetch_url) with the same end state as apply() on each
   * in order, and resolves with one report per command, in order, once all are done. Purges commute (each
   * only removes or expires objects), so a driver may run them concurrently; the agent may hand it a run
   * of purges between prefetches. On rejection none of the batch counts as applied (re-applying is harmless).
   */
  applyBatch?(commands: readonly DriverCommand[]): Promise<DriverReport[]>;
  /** Warms the cache with a GET through it (prefetch_url). Resolves with the outcome; never throws for origin errors. */
  prefetch(command: DriverCommand): Promise<DriverPrefetchOutcome>;
  /**
   * Empties the whole cache (the agent fell behind the retained log, or starts without a known position)
   * and resolves once it is empty, with the count of objects removed where the cache can tell.
   */
  dropAll(): Promise<DriverDropReport>;
  /**
   * Tells the cache it may serve hits until `untilMs` (epoch ms). Only for drivers that fence themselves;
   * others leave it undefined.
   */
  renewLease?(untilMs: number): Promise<void>;
  /** Releases connections and timers. Idempotent. */
  close(): Promise<void>;
}
