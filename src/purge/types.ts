// The purge domain's vocabulary: task types, methods, statuses, jobs, tasks and purge-log entries.

export const PURGE_TYPES = ['purge_url', 'purge_prefix', 'purge_host', 'purge_all', 'purge_cache_tag'] as const;
export type PurgeType = (typeof PURGE_TYPES)[number];
/** Every kind of task: the five purges and prefetch. Also the quota types (DescribeContentQuota `Type`). */
export const TASK_TYPES = [...PURGE_TYPES, 'prefetch_url'] as const;
export type TaskType = (typeof TASK_TYPES)[number];

/** `invalidate` forces a conditional revalidation; `delete` drops the object (DESIGN invariant 6). */
export const METHODS = ['invalidate', 'delete'] as const;
export type Method = (typeof METHODS)[number];

/**
 * What a node's cache really executed for a purge (per-node progress, issue 8): the task's method, or
 * `delete` where the cache cannot do it softly (Varnish bans), or `drop_all` when the node emptied its
 * whole cache instead (it fell behind while the entry was queued).
 */
export const EXECUTED_AS = ['invalidate', 'delete', 'drop_all'] as const;
export type ExecutedAs = (typeof EXECUTED_AS)[number];

/** EdgeOne task statuses (TENCENT-API §4.2); `invalid` is prefetch-only (origin answered non-2xx). */
export const TASK_STATUSES = ['processing', 'success', 'failed', 'timeout', 'canceled', 'invalid'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Which protocol accepted the job (audit and legacy rendering). */
export type JobSource = 'teo' | 'cdn' | 'v2';

export interface JobRecord {
  /** Public id: EdgeOne JobId, CDN TaskId and legacy task_id alike. */
  readonly jobId: string;
  readonly appId: number;
  readonly zoneId: string;
  readonly type: TaskType;
  readonly method: Method;
  /** ms since epoch. */
  readonly createdAt: number;
  /** Audit: who submitted it. */
  readonly secretId: string;
  readonly clientIp: string;
  readonly source: JobSource;
  readonly taskCount: number;
}

export interface TaskRecord {
  /** Store row id: internal, never shown to a tenant (legacy log ids are RefreshRecord.id and pushLogId). */
  readonly id: number;
  readonly jobId: string;
  readonly appId: number;
  readonly zoneId: string;
  readonly type: TaskType;
  readonly method: Method;
  /** As shown in `Target` / `Url`: an absolute URL, a prefix URL, a host name, a tag, or the zone name for purge_all. */
  readonly target: string;
  /** The domains this task touches (one, or the zone's domains for purge_all, or CacheTag.Domains for tags). */
  readonly hosts: readonly string[];
  readonly status: TaskStatus;
  readonly failType: string | null;
  readonly failMessage: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Its purge-log sequence number; null when nothing had to be fanned out. */
  readonly seq: number | null;
}

/** One entry of the ordered purge log (DESIGN invariant 2): what an edge must apply. */
export interface PurgeLogEntry {
  readonly seq: number;
  readonly taskId: number;
  readonly jobId: string;
  readonly appId: number;
  readonly type: TaskType;
  readonly method: Method;
  readonly hosts: readonly string[];
  /** purge_url/prefetch_url: absolute URL; purge_prefix: absolute URL prefix; purge_host: host; purge_cache_tag: tag; purge_all: ''. */
  readonly target: string;
  /** Prefetch only: extra request headers for the origin fetch. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly createdAt: number;
}

/** The events a settled job raises for completion webhooks (issue 10): failed when any task failed, else timeout when any timed out. */
export const WEBHOOK_EVENTS = ['job.succeeded', 'job.failed', 'job.timeout'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
