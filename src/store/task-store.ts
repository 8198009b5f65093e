// The TaskStore contract: durable jobs, tasks, the purge log, quota counters and node progress.
import type { ReplicaCoordination } from './replica-coordination.ts';
import type {
  ExecutedAs, JobRecord, JobSource, Method, PurgeLogEntry, TaskRecord, TaskStatus, TaskType, WebhookEvent,
} from '../purge/types.ts';

export interface NewTask {
  readonly target: string;
  readonly hosts: readonly string[];
  /** `success` when no edge node is responsible for any of its hosts; otherwise `processing`. */
  readonly status: TaskStatus;
  /** true: the task gets a purge-log sequence number (an edge must apply it). */
  readonly fanOut: boolean;
  /** The purge-log target (see PurgeLogEntry.target); defaults to `target`. */
  readonly logTarget?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A job as createJob takes it: the record's fields (see JobRecord), with its tasks instead of their count. */
export interface NewJob extends Omit<JobRecord, 'taskCount'> {
  readonly tasks: readonly NewTask[];
}

/** Consumed in the same transaction as the job: the whole request is admitted or refused. */
export interface QuotaCharge {
  readonly quotaType: TaskType;
  /** Quota day in the configured zone, `YYYY-MM-DD`. */
  readonly day: string;
  readonly amount: number;
  readonly daily: number;
}

/** Thrown by createJob when the charge would exceed the daily limit; nothing is written. */
export class QuotaExceededError extends Error {
  readonly used: number;
  constructor(used: number) {
    super('daily quota exceeded');
    this.used = used;
    this.name = 'QuotaExceededError';
  }
}

/** Thrown by createJob when the job id is already taken (the caller draws a new id and retries). */
export class DuplicateJobIdError extends Error {
  constructor() {
    super('job id already exists');
    this.name = 'DuplicateJobIdError';
  }
}

export interface TaskQuery {
  readonly appId: number;
  readonly zoneId?: string;
  /** Inclusive bounds on createdAt, ms. */
  readonly from?: number;
  readonly to?: number;
  readonly jobId?: string;
  /** Exact target match. */
  readonly target?: string;
  /** Substring match on target, ASCII case-insensitive (must be served by an index, not a scan). */
  readonly targetContains?: string;
  /** Any of these domains. For every list filter: omitted = no filter, empty = matches nothing. */
  readonly hosts?: readonly string[];
  readonly statuses?: readonly TaskStatus[];
  readonly types?: readonly TaskType[];
  /** Newest first; offset/limit page over that order. */
  readonly offset: number;
  readonly limit: number;
}

/** The job types the legacy refresh log shows (TENCENT-API §1.7 `type`: 0 URL, 1 directory). */
export const REFRESH_TYPES = ['purge_url', 'purge_prefix'] as const satisfies readonly TaskType[];
export type RefreshType = (typeof REFRESH_TYPES)[number];

/**
 * A query over the legacy refresh log's records (TENCENT-API §1.7): one record per URL or directory
 * refresh job and host, that host's tasks of the job. Jobs of other types have no records. For every
 * list filter: omitted = no filter, empty = matches nothing.
 */
export interface RefreshRecordQuery {
  readonly appId: number;
  /** Inclusive bounds on the job's createdAt, ms. */
  readonly from?: number;
  readonly to?: number;
  readonly jobId?: string;
  readonly types?: readonly RefreshType[];
  /** Only the records of this domain. */
  readonly host?: string;
  /** Only records holding a task with exactly this target. */
  readonly target?: string;
  /** Newest job first, a job's hosts in submission order; offset/limit page over records. */
  readonly offset: number;
  readonly limit: number;
  /**
   * Caps the tasks a page reads and returns: the page ends before the first record whose job would take
   * the tasks of the page's jobs past it (a job's tasks count once however many of its records the page
   * holds), so it may hold fewer than `limit` records; it always holds at least one when any is left.
   * `total` is unaffected. Omitted: no cap.
   */
  readonly maxTasks?: number;
}

/** One record of the legacy refresh log: a URL or directory refresh job's tasks on one host. */
export interface RefreshRecord {
  /**
   * The record's public id, unique among all records and stable: the job id (a number below 2^53) for
   * the job's first host, a random number below 10^15 (never a job id) for its other hosts. Never a
   * row id, which would tell a tenant how much the other tenants purge.
   */
  readonly id: number;
  readonly job: JobRecord;
  readonly host: string;
  /** The job's tasks that name this host, in submission order. */
  readonly tasks: TaskRecord[];
}

export interface TaskUpdate {
  readonly taskId: number;
  readonly status: TaskStatus;
  /** null clears it; omitted leaves it unchanged. */
  readonly failType?: string | null;
  /** null clears it; omitted leaves it unchanged. */
  readonly failMessage?: string | null;
}

export interface NodeProgress {
  readonly nodeId: string;
  /** Highest purge-log seq the node has applied (all lower ones applied too). */
  readonly ackedSeq: number;
  /** ms of the last ack or heartbeat. */
  readonly seenAt: number;
}

/** What one node reported executing for one task's purge-log entry (per-node progress, issue 8). */
export interface NodeReport {
  readonly nodeId: string;
  readonly taskId: number;
  /** The task's purge-log seq. */
  readonly seq: number;
  /** The driver the node said it runs (`builtin`, `varnish`, `nginx`); null when it did not say. */
  readonly driver: string | null;
  /** What the cache executed; may differ from the task's method (a Varnish ban is a delete). */
  readonly executedAs: ExecutedAs;
  /** Objects the cache said it matched; null when it cannot tell (never estimated). */
  readonly matched: number | null;
  /** The node's short explanation (why executedAs differs, what was approximated); null when none. */
  readonly note: string | null;
  /**
   * When the control plane received the report, ms: the node applied the entry at most one ack
   * round trip earlier (node clocks are not trusted).
   */
  readonly appliedAt: number;
}

/** A report as a node's ack carries it: the node and the time are the ack's. */
export type NodeReportInput = Omit<NodeReport, 'nodeId' | 'appliedAt'>;

/**
 * ackNode's answer per report: `recorded`; `duplicate`: this node already has a report on this
 * task (the first one stands); `unknown`: no task with that id holds that seq (pruned, or never was).
 */
export type NodeReportOutcome = 'recorded' | 'duplicate' | 'unknown';

/** What one node said of one prefetch task: it fetched the object, or could not (issue 9: kept durably). */
export interface PrefetchResult {
  readonly nodeId: string;
  readonly taskId: number;
  readonly ok: boolean;
  /** Not ok: the FailType the task takes if this result decides it; null when ok. */
  readonly failType: string | null;
  /** Not ok: "NODE: why", the task's FailMessage if this result decides it; null when ok. */
  readonly failMessage: string | null;
  /** When the control plane received it, ms. */
  readonly at: number;
}

/** A result as a node's ack carries it: the node and the time are the ack's. */
export type PrefetchResultInput = Omit<PrefetchResult, 'nodeId' | 'at'>;

/** One node's ack in a batch (TaskStore.ackNodes): as the arguments of ackNode, plus its prefetch results. */
export interface NodeAck {
  readonly nodeId: string;
  readonly seq: number;
  readonly at: number;
  readonly reports?: readonly NodeReportInput[];
  /**
   * Prefetch results: at most one per (task, node), the first stands (later ones are `duplicate`);
   * recorded only when task `taskId` exists and is a prefetch (else `unknown`). Which node may report on
   * which task is the caller's check (FanoutHub). Pruned with their tasks.
   */
  readonly results?: readonly PrefetchResultInput[];
}

export interface TaskStore extends Partial<WebhookOutbox> {
  /** Opens the store and applies pending migrations. Idempotent. */
  start(): Promise<void>;
  /** Closes the store; idempotent. */
  close(): Promise<void>;
  /**
   * Optional: the schema version the database holds and the one this build needs (/readyz: migrations
   * applied). Rejects when the store is closed or unreachable. Cost: one small query.
   */
  schemaVersion?(): Promise<{ readonly applied: number; readonly expected: number }>;

  /**
   * Atomically charges the quota, inserts the job, its tasks and their purge-log entries
   * (gap-free sequence numbers, in task order). Durable when it resolves (DESIGN invariant 1).
   * Throws QuotaExceededError / DuplicateJobIdError and writes nothing. With `webhooks` (stores with the
   * WebhookOutbox capability), a job none of whose tasks is processing (settled at creation) gets its
   * outbox rows in the same transaction, as updateTasks gives a job it settles.
   */
  createJob(job: NewJob, charge: QuotaCharge, webhooks?: WebhookRouter): Promise<{ tasks: TaskRecord[] }>;

  // Reads. Each is scoped by app (DESIGN invariant 7) and its cost is bounded by an index range of that
  // app (its rows in the query's time range at most), never by the size of the whole store; a backend
  // whose statements block (node:sqlite) runs the history queries off the caller's event loop.

  /** One job, or null when it does not exist or belongs to another app. Cost: one row. */
  getJob(appId: number, jobId: string): Promise<JobRecord | null>;
  /** Tasks of one job in submission order. Cost: the job's tasks (at most one request's batch). */
  jobTasks(appId: number, jobId: string): Promise<TaskRecord[]>;
  /**
   * Tasks newest first, one page, and `total`: the number of matching tasks, exact on SQLite; PostgreSQL
   * stops counting at offset + limit + COUNT_AHEAD (FUZZY_COUNT_AHEAD with a fuzzy target; postgres-task-reader.ts,
   * README "Limits"). Cost: the matching
   * index entries of the app's time range (counted, and walked up to offset + limit), plus one row per
   * candidate for text filters that the trigram index only narrows.
   */
  listTasks(q: TaskQuery): Promise<{ total: number; tasks: TaskRecord[] }>;
  /**
   * Legacy refresh-log records (one per URL or directory refresh job and host) newest first, one page,
   * and `total`: the exact number of matching records. Cost: as listTasks, over one index entry per record; the page's
   * tasks are bounded by `maxTasks`.
   */
  listRefreshRecords(q: RefreshRecordQuery): Promise<{ total: number; records: RefreshRecord[] }>;
  /** Units used per quota type on `day`. Cost: one row per quota type. */
  quotaUsage(appId: number, day: string): Promise<ReadonlyMap<TaskType, number>>;

  /** Log entries with seq > afterSeq, ascending, at most `limit`. */
  readLog(afterSeq: number, limit: number): Promise<PurgeLogEntry[]>;
  /** Highest seq written so far (0 when empty). */
  lastSeq(): Promise<number>;
  /**
   * Optional capability of stores that several processes share (PostgreSQL): calls `listener(lastSeq)`
   * soon after purge-log entries commit, whichever process committed them, so that log streams on every
   * replica wake within milliseconds. Every entry up to `lastSeq` is readable when it is called; calls
   * come in increasing `lastSeq` order, and one call may stand for several commits. Returns a function
   * that unsubscribes. Stores without it leave waking to their caller (PurgeServiceOptions.onCommitted).
   * `entries`, when given, are the committed entries ending at `lastSeq` (ascending, gap-free; one commit's,
   * perhaps not all since the previous call): what readLog would return for them, so need not be read.
   */
  onAppend?(listener: (lastSeq: number, entries?: readonly PurgeLogEntry[]) => void): () => void;
  /**
   * Optional capability of stores that several processes share (PostgreSQL): leader election, the shared
   * rate limit and replay memory (replica-coordination.ts). Absent: the process is alone on its store, is
   * always the leader and keeps rate limits and Nonces in memory. The same object on every call.
   */
  replicas?(): ReplicaCoordination;
  /**
   * Lowest seq from which the retained log is complete: every seq from it to lastSeq() is still
   * readable (lastSeq()+1 when the log is empty). A node whose next seq is below it fell behind.
   */
  firstSeq(): Promise<number>;

  /**
   * Records one ack of `nodeId`, durably and in one transaction before it resolves: it applied every entry
   * up to `seq` (never moves backwards; `at` becomes seenAt), and what it executed for the entries in
   * `reports` (appliedAt = `at`). Answers one outcome per report, in order. At most one report per
   * (task, node): the first is kept, later ones are `duplicate` and change nothing. A report is recorded
   * only when task `taskId` exists and holds log seq `seq`; which node may report on which entry is the
   * caller's check (FanoutHub). Reports are pruned with their tasks. Cost: O(1 + reports), each an index
   * lookup.
   */
  ackNode(nodeId: string, seq: number, at: number, reports?: readonly NodeReportInput[]): Promise<NodeReportOutcome[]>;
  /**
   * Many acks (as ackNode each, in order; a node may appear more than once) and the task statuses they
   * settle (as updateTasks(settled, settledAt, webhooks), webhook outbox rows included), durably and in ONE transaction before it resolves: a
   * status never becomes visible without the acks it was derived from, and a batch of acks costs one
   * durable write. All or nothing: when it rejects, nothing of the batch was written. Answers, per ack, one
   * outcome per report, then one per result (NodeAck.results). Cost: O(acks + reports + results + settled),
   * each an index lookup. `committed`, when the store's commit is visible before it is durable (SQLite: the
   * WAL is synced after COMMIT), is called once it is committed, before the sync; the promise still resolves
   * only once durable. A store whose commit is durable at once need not call it.
   */
  ackNodes(acks: readonly NodeAck[], settled: readonly TaskUpdate[], settledAt: number, webhooks?: WebhookRouter, committed?: () => void): Promise<NodeReportOutcome[][]>;
  nodeProgress(): Promise<NodeProgress[]>;
  /**
   * Every node's prefetch result on these tasks (ids of any app: callers pass the ids of tasks they already
   * read, scoped), by task id, then receipt time, then node id. Cost: one index range per task.
   */
  prefetchResults(taskIds: readonly number[]): Promise<PrefetchResult[]>;
  /**
   * Every node's report on the tasks of one job of app `appId` ([] for another app's job), by task id,
   * then node id. Cost: the job's tasks × the nodes that reported on them.
   */
  jobNodeReports(appId: number, jobId: string): Promise<NodeReport[]>;
  /**
   * Settles processing tasks; `at` becomes updatedAt. A task already final is left alone: final statuses
   * never change. With `webhooks` (stores with the WebhookOutbox capability), every job whose last
   * processing task this call settles gets one outbox row per URL the router names, in the same
   * transaction, at most one per (job, URL) even when replicas settle the same job at once.
   */
  updateTasks(updates: readonly TaskUpdate[], at: number, webhooks?: WebhookRouter): Promise<void>;
  /** Processing tasks with afterSeq < seq <= maxSeq, ascending by seq, at most `limit` (afterSeq defaults to 0). */
  processingTasks(maxSeq: number, limit: number, afterSeq?: number): Promise<TaskRecord[]>;

  /** Deletes jobs, tasks, log entries, node reports, prefetch results and webhook deliveries created before `before`; returns the number of tasks removed. */
  prune(before: number): Promise<number>;
}


/** A job whose last processing task just settled, as updateTasks sees it inside its transaction. */
export interface SettledJob {
  readonly appId: number;
  readonly jobId: string;
  readonly event: WebhookEvent;
}

/**
 * Which webhook endpoints (their URLs) want a settled job's event; [] for none. updateTasks calls it
 * inside the transaction that settles the job, so it must be synchronous and cheap (a config lookup).
 */
export type WebhookRouter = (job: SettledJob) => readonly string[];

export type WebhookDeliveryStatus = 'pending' | 'delivered' | 'failed';

/** One row of the webhook outbox: one event of one job for one endpoint, and its delivery so far. */
export interface WebhookDelivery {
  /** Public, random, stable across retries: receivers de-duplicate on it (EdgePurge-Event-Id). */
  readonly eventId: string;
  readonly appId: number;
  readonly jobId: string;
  readonly url: string;
  readonly event: WebhookEvent;
  /** When the job settled (the row was enqueued), ms. */
  readonly createdAt: number;
  readonly status: WebhookDeliveryStatus;
  /** Attempts made so far. */
  readonly attempts: number;
  /** Earliest time of the next attempt, ms (pending rows). */
  readonly nextAt: number;
  /** HTTP status of the last attempt; null when it got none (refused, timed out) or none was made. */
  readonly lastStatus: number | null;
  /** Why the last attempt failed; null when none did. */
  readonly lastError: string | null;
  /** When the last attempt ended, ms; null before the first. */
  readonly lastAttemptAt: number | null;
  /** When a 2xx was received, ms. */
  readonly deliveredAt: number | null;
}

/** What one delivery attempt came to (recordWebhookAttempt). */
export interface WebhookAttempt {
  readonly eventId: string;
  readonly at: number;
  readonly ok: boolean;
  readonly httpStatus: number | null;
  readonly error: string | null;
  /** Not ok: when to try again, or null to give up (the row becomes `failed`). */
  readonly retryAt: number | null;
}

/**
 * Optional capability: the durable webhook outbox (src/webhooks). A store with it enqueues deliveries in
 * the same transaction as updateTasks settles a job's last task, when updateTasks is given a router.
 */
export interface WebhookOutbox {
  /**
   * Claims up to `limit` pending deliveries due at `now` (nextAt <= now) that nobody holds, and holds them
   * until `now + holdMs`: another claimer (another replica, or this one after a restart) gets them only
   * after that. Oldest due first. Cost: an index range of due rows.
   */
  claimWebhookDeliveries(now: number, limit: number, holdMs: number): Promise<WebhookDelivery[]>;
  /** Records an attempt: ok → delivered; else pending again at retryAt, or failed when retryAt is null. */
  recordWebhookAttempt(attempt: WebhookAttempt): Promise<void>;
  /**
   * The delivery log, newest first: one app's (or every app's when appId is undefined), optionally one
   * job's. Cost: an index range, at most `limit` rows.
   */
  webhookDeliveries(q: { readonly appId?: number; readonly jobId?: string; readonly limit: number }): Promise<WebhookDelivery[]>;
  /** Pending deliveries (the outbox depth). Cost: the pending index. */
  webhookOutboxDepth(): Promise<number>;
}
