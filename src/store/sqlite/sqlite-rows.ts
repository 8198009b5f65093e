// What the SQLite writer and readers share: row shapes, their mapping to records, the target hash and
// a bounded statement cache.
import { createHash, randomInt } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { ExecutedAs, JobRecord, JobSource, Method, TaskRecord, TaskStatus, TaskType } from '../../purge/types.ts';
import type { NodeReport } from '../task-store.ts';

export interface JobRow {
  job_id: string;
  app_id: number;
  zone_id: string;
  type: string;
  method: string;
  created_at: number;
  secret_id: string;
  client_ip: string;
  source: string;
  task_count: number;
}

export interface TaskRow {
  id: number;
  job_id: string;
  app_id: number;
  zone_id: string;
  type: string;
  method: string;
  target: string;
  hosts: string;
  status: string;
  fail_type: string | null;
  fail_message: string | null;
  created_at: number;
  updated_at: number;
  seq: number | null;
}

export interface NodeReportRow {
  task_id: number;
  node_id: string;
  seq: number;
  driver: string | null;
  executed_as: string;
  matched: number | null;
  note: string | null;
  applied_at: number;
}

export const NODE_REPORT_COLS = 'task_id, node_id, seq, driver, executed_as, matched, note, applied_at';

export function toNodeReport(r: NodeReportRow): NodeReport {
  return {
    nodeId: r.node_id,
    taskId: r.task_id,
    seq: r.seq,
    driver: r.driver,
    executedAs: r.executed_as as ExecutedAs,
    matched: r.matched,
    note: r.note,
    appliedAt: r.applied_at,
  };
}

export const TASK_COLS =
  'id, job_id, app_id, zone_id, type, method, target, hosts, status, fail_type, fail_message, created_at, updated_at, seq';
export const taskCols = (alias: string): string =>
  TASK_COLS.split(', ').map((c) => `${alias}.${c}`).join(', ');

/** 48 bits of SHA-256: the key of the exact-target index (rows are re-checked, collisions are harmless). */
export const targetHash = (target: string): number => createHash('sha256').update(target).digest().readUIntBE(0, 6);

/** Record ids other than job ids are drawn below this: 2^48 < 10^15, and every job id has 16 digits. */
const RANDOM_RECORD_ID_LIMIT = 2 ** 48;

/**
 * The public id of a job's first record: the job id itself when it is a 16-digit number that a JSON
 * client reads exactly (newJobId's shape), else null (a random one is drawn).
 */
function jobRecordId(jobId: string): number | null {
  if (!/^[1-9]\d{15}$/.test(jobId)) return null;
  const n = Number(jobId);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * Writes a URL or directory refresh job's legacy refresh-log records (refresh_records): one per
 * distinct host of `hosts` (its tasks' hosts in task order), in order of first appearance. The first one's id is the job id when that is
 * a safe 16-digit number; every other id is drawn at random below 2^48 (so never a job id), again on
 * the rare clash with an existing one. The caller holds the write transaction.
 */
export function insertRefreshRecords(
  db: DatabaseSync,
  job: { readonly jobId: string; readonly appId: number; readonly createdAt: number; readonly type: string; readonly taskCount: number },
  hosts: readonly string[],
  stmt: (sql: string) => StatementSync = (sql) => db.prepare(sql),
): void {
  const ins = stmt(
    `INSERT INTO refresh_records (job_id, host, ord, record_id, app_id, created_at, type, job_tasks) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (record_id) DO NOTHING`,
  );
  [...new Set(hosts)].forEach((host, ord) => {
    let id = ord === 0 ? jobRecordId(job.jobId) : null;
    for (;;) {
      id ??= randomInt(1, RANDOM_RECORD_ID_LIMIT);
      if (ins.run(job.jobId, host, ord, id, job.appId, job.createdAt, job.type, job.taskCount).changes > 0) return;
      id = null;
    }
  });
}

export const marks = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

export function toJob(r: JobRow): JobRecord {
  return {
    jobId: r.job_id,
    appId: r.app_id,
    zoneId: r.zone_id,
    type: r.type as TaskType,
    method: r.method as Method,
    createdAt: r.created_at,
    secretId: r.secret_id,
    clientIp: r.client_ip,
    source: r.source as JobSource,
    taskCount: r.task_count,
  };
}

export function toTask(r: TaskRow): TaskRecord {
  return {
    id: r.id,
    jobId: r.job_id,
    appId: r.app_id,
    zoneId: r.zone_id,
    type: r.type as TaskType,
    method: r.method as Method,
    target: r.target,
    hosts: JSON.parse(r.hosts) as string[],
    status: r.status as TaskStatus,
    failType: r.fail_type,
    failMessage: r.fail_message,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    seq: r.seq,
  };
}

/** Statements are cached by SQL text; dynamic filter shapes are bounded, but cap the cache anyway. */
const STATEMENT_CACHE_SIZE = 256;

/** Prepared statements of one connection by SQL text, least recently used dropped first. */
export class StatementCache {
  readonly #stmts = new Map<string, StatementSync>();
  readonly #db: () => DatabaseSync;

  /** `db` is called on a miss (it throws when the connection is closed). */
  constructor(db: () => DatabaseSync) {
    this.#db = db;
  }

  get(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (s) {
      // Refresh recency (Map keeps insertion order).
      this.#stmts.delete(sql);
      this.#stmts.set(sql, s);
      return s;
    }
    s = this.#db().prepare(sql);
    this.#stmts.set(sql, s);
    if (this.#stmts.size > STATEMENT_CACHE_SIZE) {
      const oldest = this.#stmts.keys().next();
      if (!oldest.done) this.#stmts.delete(oldest.value);
    }
    return s;
  }

  clear(): void {
    this.#stmts.clear();
  }
}
