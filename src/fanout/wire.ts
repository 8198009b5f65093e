// The edge stream's wire format, shared by the control plane (FanoutHub) and edge agents.
//
// GET  /edge/v1/stream?after=SEQ   (after=-1: start at the log's current end; the node empties its cache
//      on the hello, since it will never see the entries up to there)
//      → application/x-ndjson, one StreamLine per line, for as long as the connection lives.
// POST /edge/v1/ack  AckRequest → AckResponse   (also renews the node's lease, DESIGN invariant 4)
// GET  /edge/v1/jobs/JOBID  (SecretId:SecretKey basic auth) → per-node progress of a job.
// Nodes authenticate with `Authorization: Bearer <token>` and `X-Edge-Node: <id>`.

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

export interface TaskResult {
  readonly taskId: number;
  readonly ok: boolean;
  readonly failType?: string;
  readonly failMessage?: string;
}

export interface AckRequest {
  /** Every entry up to here has been applied (prefetches: dispatched). */
  readonly seq: number;
  /** Outcomes of prefetches (and of entries the node could not apply). */
  readonly results?: readonly TaskResult[];
}

export interface AckResponse {
  /** The log's end when the ack was processed: the lease is valid once the node has applied up to here. */
  readonly lastSeq: number;
  readonly leaseMs: number;
}
