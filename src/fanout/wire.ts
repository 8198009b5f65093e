// The edge stream's wire format, shared by the control plane (FanoutHub) and edge agents.
import { z } from 'zod';
import { EXECUTED_AS, type ExecutedAs } from '../purge/types.ts';

// GET  /edge/v1/stream?after=SEQ   (after=-1: start at the log's current end; the node empties its cache
//      on the hello, since it will never see the entries up to there)
//      → application/x-ndjson, one StreamLine per line, for as long as the connection lives.
// POST /edge/v1/ack  AckRequest → AckResponse   (also renews the node's lease, DESIGN invariant 4; it
//      also carries the node's driver name and what its cache executed per purge entry, issue 8)
// GET  /edge/v1/acks with `Connection: Upgrade`, `Upgrade: edgepurge-acks` → 101, then the same socket
//      carries AckRequests one per line (node → control plane) and their answers one per line, in order
//      (an AckResponse, or {"error"} for a line POST /edge/v1/ack would refuse with 400). One token check
//      per channel instead of one HTTP request per ack; a control plane without it answers 404 and the
//      node posts its acks as before.
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

/** The Upgrade token of the ack channel. */
export const ACK_CHANNEL_PROTOCOL = 'edgepurge-acks';
/** Lines a channel may have unanswered before the control plane stops reading it. */
export const MAX_CHANNEL_PENDING = 64;

/** At most this many results per ack: an agent with more sends them over several acks. */
export const MAX_ACK_RESULTS = 1000;
/** Longest FailMessage a node may report (it is shown to the tenant as is, after the node's id). */
export const MAX_FAIL_MESSAGE = 500;

/** The outcome of one prefetch the node was streamed (see FanoutHub for which results count). */
/** At most this many execution reports per ack: an agent with more sends them over several acks. */
export const MAX_ACK_REPORTS = 1000;
/** Longest note a node may attach to a report (shown to the operator as is). */
export const MAX_REPORT_NOTE = 300;
/** A driver name as a node sends it: `builtin`, `varnish`, `nginx`, … */
export const DRIVER_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * What the node's cache executed for one purge entry it was streamed (never for prefetch_url, whose
 * outcome is a TaskResult). Sent once, in the ack whose `seq` covers it (or an earlier one).
 */
export interface ExecutionReport {
  readonly seq: number;
  readonly taskId: number;
  /** The entry's method, or what the cache did instead (`delete` for a Varnish ban, `drop_all`). */
  readonly executedAs: ExecutedAs;
  /** Objects the cache said it matched; null or absent when it cannot tell. Never estimated. */
  readonly matched?: number | null;
  /** Why executedAs differs, what was approximated. */
  readonly note?: string;
}

export interface TaskResult {
  readonly taskId: number;
  /**
   * The prefetch entry's seq. A process that did not stream the entry to this node (the replica it failed
   * over to, issue 9) checks the result against the log by it; without it, such a process ignores the result.
   */
  readonly seq?: number;
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
  /** The node's cache driver (DRIVER_NAME), recorded with its reports; the configuration's kind is shown when absent. */
  readonly driver?: string;
  /**
   * What the cache executed per purge entry, at most MAX_ACK_REPORTS. Recorded only for purge entries
   * streamed to this node with seq up to this ack's (capped) seq; first report per task stands.
   */
  readonly reports?: readonly ExecutionReport[];
}

export interface AckResponse {
  /** The log's end when the ack was processed: the lease is valid once the node has applied up to here. */
  readonly lastSeq: number;
  readonly leaseMs: number;
  /** Results that were not recorded, and why (see FanoutHub#recordResults); absent when all were. */
  readonly ignored?: ReadonlyArray<{ readonly taskId: number; readonly reason: IgnoredReason }>;
  /** Reports that were not recorded, and why (see FanoutHub#recordReports); absent when all were. */
  readonly ignoredReports?: ReadonlyArray<{ readonly seq: number; readonly taskId: number; readonly reason: ReportIgnoredReason }>;
}

/**
 * `unexpected`: no prefetch with this task id was streamed to this node (another node's or tenant's task,
 * a purge, an id beyond what it was sent, or one created more than 2 × taskTimeoutMs ago); `duplicate`: the
 * node already reported it.
 */
export type IgnoredReason = 'unexpected' | 'duplicate';

/**
 * `unexpected`: no purge entry with this seq and task id was streamed to this node by this control plane
 * process (another node's or tenant's entry, a prefetch, a seq it was never sent, or one sent long ago
 * and no longer remembered); `not_applied`: beyond the seq this ack applies; `duplicate`: the node
 * already reported on this task.
 */
export type ReportIgnoredReason = 'unexpected' | 'not_applied' | 'duplicate';

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
        seq: z.int().positive().optional(),
        ok: z.boolean(),
        failType: z.enum(FAIL_TYPES).optional(),
        failMessage: z.string().max(MAX_FAIL_MESSAGE).optional(),
      }),
    )
    .max(MAX_ACK_RESULTS)
    .optional(),
  driver: z.string().regex(DRIVER_NAME, 'driver must be a lower-case name like "varnish"').optional(),
  reports: z
    .array(
      z.object({
        seq: z.int().positive(),
        taskId: z.int().positive(),
        executedAs: z.enum(EXECUTED_AS),
        matched: z.int().nonnegative().nullable().optional(),
        note: z.string().max(MAX_REPORT_NOTE).optional(),
      }),
    )
    .max(MAX_ACK_REPORTS)
    .optional(),
}) satisfies z.ZodType<AckRequest>;
