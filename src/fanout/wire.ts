// The edge stream's wire format, shared by the control plane (FanoutHub) and edge agents.
import { z } from 'zod';

// GET  /edge/v1/stream?after=SEQ   (after=-1: start at the log's current end; the node empties its cache
//      on the hello, since it will never see the entries up to there)
//      → application/x-ndjson, one StreamLine per line, for as long as the connection lives.
// POST /edge/v1/ack  AckRequest → AckResponse   (also renews the node's lease, DESIGN invariant 4)
// Nodes authenticate with `Authorization: Bearer <token>` and `X-Edge-Node: <id>`. Refusals answer
// `{"error": "..."}` with 400 (bad input), 401 (unknown node or bad token), 404, 405 or 413, and
// change nothing.

export interface WireEntry {
  readonly seq: number;
  readonly taskId: number;
  readonly type: 'purge_url' | 'purge_prefix' | 'purge_host' | 'purge_all' | 'purge_cache_tag' | 'prefetch_url';
  readonly method: 'invalidate' | 'delete';
  readonly hosts: readonly string[];
  readonly target: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export type StreamLine =
  /** First line: where the log stands. */
  | { readonly t: 'hello'; readonly firstSeq: number; readonly lastSeq: number; readonly leaseMs: number }
  /** An entry for one of the node's hosts. */
  | { readonly t: 'entry'; readonly e: WireEntry }
  /** The node asked for entries the log no longer holds: empty the cache, then continue after `seq`. */
  | { readonly t: 'reset'; readonly seq: number }
  /** Every entry up to `seq` that concerns this node has been sent (entries for other hosts are skipped). */
  | { readonly t: 'hb'; readonly seq: number };

/** FailType values of EdgeOne tasks (TENCENT-API §4.2 `FailType`, shared by DescribePrefetchTasks): what a tenant sees. */
export const FAIL_TYPES = ['taskFailed', 'quotaExceeded', 'downloadManifestFailed', 'accessDenied', 'originPullFailed'] as const;
export type FailType = (typeof FAIL_TYPES)[number];

/** At most this many results per ack: an agent with more sends them over several acks. */
export const MAX_ACK_RESULTS = 1000;
/** Longest FailMessage a node may report (it is shown to the tenant as is, after the node's id). */
export const MAX_FAIL_MESSAGE = 500;

/** The outcome of one prefetch the node was streamed (see FanoutHub for which results count). */
export interface TaskResult {
  readonly taskId: number;
  readonly ok: boolean;
  readonly failType?: FailType;
  readonly failMessage?: string;
}

export interface AckRequest {
  /** Every entry up to here has been applied (prefetches: dispatched). */
  readonly seq: number;
  /**
   * Outcomes of prefetches. A node that cannot apply a purge entry does not ack past it (the task then
   * times out naming the node); there is no result for purges.
   */
  readonly results?: readonly TaskResult[];
}

export interface AckResponse {
  /** The log's end when the ack was processed: the lease is valid once the node has applied up to here. */
  readonly lastSeq: number;
  readonly leaseMs: number;
  /** Results that were not recorded, and why (see FanoutHub#recordResults); absent when all were. */
  readonly ignored?: ReadonlyArray<{ readonly taskId: number; readonly reason: IgnoredReason }>;
}

/**
 * `unexpected`: no prefetch with this task id was streamed to this node (another node's or tenant's task,
 * a purge, an id beyond what it was sent, or one created more than 2 × taskTimeoutMs ago); `duplicate`: the
 * node already reported it.
 */
export type IgnoredReason = 'unexpected' | 'duplicate';

/**
 * The ack body as the control plane validates it, all of it before anything is written (hardening
 * issue 2). Unknown keys are ignored rather than refused, so a newer agent can add fields without being
 * cut off by an older control plane (a refused ack also leaves the lease to lapse).
 */
export const ackRequestSchema = z.object({
  seq: z.int().nonnegative(),
  results: z
    .array(
      z.object({
        taskId: z.int().positive(),
        ok: z.boolean(),
        failType: z.enum(FAIL_TYPES).optional(),
        failMessage: z.string().max(MAX_FAIL_MESSAGE).optional(),
      }),
    )
    .max(MAX_ACK_RESULTS)
    .optional(),
}) satisfies z.ZodType<AckRequest>;
