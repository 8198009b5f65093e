// The SQLite TaskStore (node:sqlite): durable jobs, tasks, the purge log, quotas and node progress.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { SQLInputValue, StatementSync } from 'node:sqlite';
import type {
  JobRecord, JobSource, Method, PurgeLogEntry, TaskRecord, TaskStatus, TaskType,
} from '../../purge/types.ts';
import { DuplicateJobIdError, QuotaExceededError } from '../task-store.ts';
import type {
  JobQuery, NewJob, NodeProgress, QuotaCharge, TaskQuery, TaskStore, TaskUpdate,
} from '../task-store.ts';
import { migrate } from './migrations.ts';

export interface SqliteTaskStoreOptions {
  /** Database file; its directory is created if missing. `:memory:` for a throwaway store. */
  readonly path: string;
  /** How long a write waits for another process's lock before failing (ms). Default 5000. */
  readonly busyTimeoutMs?: number;
}

interface JobRow {
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

interface TaskRow {
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

interface LogRow {
  seq: number;
  id: number;
  job_id: string;
  app_id: number;
  type: string;
  method: string;
  hosts: string;
  target: string;
  headers: string | null;
  created_at: number;
}

const TASK_COLS =
  'id, job_id, app_id, zone_id, type, method, target, hosts, status, fail_type, fail_message, created_at, updated_at, seq';
const taskCols = (alias: string): string =>
  TASK_COLS.split(', ').map((c) => `${alias}.${c}`).join(', ');

/** Statements are cached by SQL text; dynamic filter shapes are bounded, but cap the cache anyway. */
const STATEMENT_CACHE_SIZE = 256;
/** A needle's trigrams probed for rarity: all of them up to this many, else this many spread out. */
const MAX_PROBED_TRIGRAMS = 32;
/** Rarity probes stop counting here: a trigram this frequent in the range is "common". */
const TRIGRAM_PROBE_CAP = 1_000;
/** The rarest trigrams ANDed when one is rare. Common ones (`htt`, `com`, `/20`) cost more than they narrow. */
const TRIGRAMS_PER_SEARCH = 3;
/**
 * When every trigram is common only their conjunction is selective: this many, spread over the
 * needle. Measured at 1M tasks: 6 beat both fewer (more candidate rows to check) and all of them
 * (each extra list is stepped through for every candidate).
 */
const TRIGRAMS_WHEN_COMMON = 6;
const HOUR_MS = 3_600_000;
/** Rowid bounds for task_fts. BigInt: FTS5 ignores a rowid bound bound as REAL, and node:sqlite binds numbers as REAL. */
const NO_LOWER_ID = 0n;
const NO_UPPER_ID = 9_223_372_036_854_775_807n;
/** Prune works in transactions of about this many tasks so that writers are never held up long. */
const PRUNE_BATCH_TASKS = 2_000;
const PRUNE_BATCH_JOBS = 500;
const DAY_MS = 86_400_000;

/** ASCII-only lower case, the same folding as SQLite's built-in lower(). */
const asciiLower = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

/**
 * The distinct trigrams (of code points) of `s`, in order; at most `max`, spread over the string.
 * Empty when `s` has fewer than three characters, which the trigram index cannot serve.
 */
export function trigramsOf(s: string, max = MAX_PROBED_TRIGRAMS): string[] {
  const cps = Array.from(s);
  const all: string[] = [];
  for (let i = 0; i + 3 <= cps.length; i++) all.push(cps.slice(i, i + 3).join(''));
  const unique = [...new Set(all)];
  if (unique.length <= max) return unique;
  return spread(unique, max);
}

/** `n` items of `list` evenly spaced, first and last included. */
function spread<T>(list: readonly T[], n: number): T[] {
  const out: T[] = [];
  for (let k = 0; k < n; k++) {
    const v = list[n === 1 ? 0 : Math.round((k * (list.length - 1)) / (n - 1))];
    if (v !== undefined && !out.includes(v)) out.push(v);
  }
  return out;
}

/** 48 bits of SHA-256: the key of the exact-target index (rows are re-checked, collisions are harmless). */
export const targetHash = (target: string): number => createHash('sha256').update(target).digest().readUIntBE(0, 6);

/** One FTS5 term, quoted so that the needle's characters are never read as query syntax. */
export const ftsTerm = (trigram: string): string => `"${trigram.replaceAll('"', '""')}"`;

/** How the trigram index narrows a text filter: rows matching `match` with rowid in [lo, hi]. */
interface FtsPlan {
  readonly match: string;
  readonly lo: bigint;
  readonly hi: bigint;
}

const marks = (n: number): string => Array.from({ length: n }, () => '?').join(', ');

/** One SELECT's FROM/WHERE over tasks, built for one access path. */
interface Source {
  from: string;
  where: string[];
  params: SQLInputValue[];
  /** Row id and creation time of the matching task, as expressions over `from`. */
  id: string;
  ts: string;
  /** A task can match once per host (several `hosts` asked for): count and page distinct ids. */
  distinct: boolean;
  /** Count and page in one pass (each candidate costs a row visit, so visit once). */
  onePass: boolean;
}

/** A source reading tasks (alias `t`) through `from`, with the query's remaining filters added. */
function taskSource(q: TaskQuery, from: string, where: string[], params: SQLInputValue[], onePass = false): Source {
  const src: Source = { from, where, params, id: 't.id', ts: 't.created_at', distinct: false, onePass };
  addTaskFilters(src, q);
  return src;
}

export class SqliteTaskStore implements TaskStore {
  /** createJob calls waiting for the next group commit. */
  #pendingJobs: Array<{
    job: NewJob;
    charge: QuotaCharge;
    resolve: (r: { tasks: TaskRecord[] }) => void;
    reject: (e: unknown) => void;
  }> = [];
  readonly #path: string;
  readonly #busyTimeoutMs: number;
  #db: DatabaseSync | null = null;
  readonly #stmts = new Map<string, StatementSync>();

  constructor(options: SqliteTaskStoreOptions) {
    this.#path = options.path;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  }

  async start(): Promise<void> {
    if (this.#db) return;
    const inMemory = this.#path === ':memory:' || this.#path === '';
    if (!inMemory && !this.#path.startsWith('file:')) mkdirSync(dirname(this.#path), { recursive: true });
    const db = new DatabaseSync(this.#path, { timeout: this.#busyTimeoutMs });
    try {
      db.exec(`PRAGMA busy_timeout = ${Math.trunc(this.#busyTimeoutMs)}`);
      // WAL: readers never block the writer. FULL: every COMMIT is fsynced before createJob
      // resolves, so an acknowledged job survives a crash of the process or the machine
      // (DESIGN invariant 1). A crash mid-transaction leaves nothing: SQLite rolls it back.
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = FULL');
      db.exec('PRAGMA journal_size_limit = 67108864');
      db.exec('PRAGMA cache_size = -65536');
      db.exec('PRAGMA temp_store = MEMORY');
      migrate(db);
    } catch (e) {
      db.close();
      if (/no such tokenizer: trigram/.test(String(e))) {
        throw new Error('this SQLite build lacks the FTS5 trigram tokenizer (needs SQLite >= 3.34); use Node 24', {
          cause: e,
        });
      }
      throw e;
    }
    this.#db = db;
  }

  async close(): Promise<void> {
    // Jobs already handed to createJob are committed (and answered) before the database closes.
    if (this.#db) this.#commitPendingJobs();
    const db = this.#db;
    if (!db) return;
    this.#db = null;
    this.#stmts.clear();
    db.close();
  }

  /**
   * Group commit: jobs submitted in the same turn of the event loop share one transaction and one
   * fsync, each inside its own SAVEPOINT, so every job stays all-or-nothing (a quota refusal or a
   * duplicate id rolls back that job alone) and each promise resolves only after the COMMIT that
   * made its job durable (DESIGN invariant 1). Under load this turns one fsync per request into one
   * per batch.
   */
  createJob(job: NewJob, charge: QuotaCharge): Promise<{ tasks: TaskRecord[] }> {
    return new Promise((resolve, reject) => {
      this.#pendingJobs.push({ job, charge, resolve, reject });
      if (this.#pendingJobs.length === 1) setImmediate(() => this.#commitPendingJobs());
    });
  }

  #commitPendingJobs(): void {
    const batch = this.#pendingJobs;
    this.#pendingJobs = [];
    if (batch.length === 0) return;
    const outcomes: Array<{ ok: true; tasks: TaskRecord[] } | { ok: false; error: unknown }> = [];
    try {
      const db = this.#open();
      this.#write(() => {
        for (const { job, charge } of batch) {
          db.exec('SAVEPOINT job');
          try {
            const used = this.#quotaUsed(job.appId, charge.quotaType, charge.day);
            if (used + charge.amount > charge.daily) throw new QuotaExceededError(used);
            const tasks = this.#insertJob(job);
            this.#stmt(
              `INSERT INTO quota_usage (app_id, quota_type, day, used) VALUES (?, ?, ?, ?)
               ON CONFLICT (app_id, quota_type, day) DO UPDATE SET used = used + excluded.used`,
            ).run(job.appId, charge.quotaType, charge.day, charge.amount);
            db.exec('RELEASE job');
            outcomes.push({ ok: true, tasks });
          } catch (error) {
            db.exec('ROLLBACK TO job');
            db.exec('RELEASE job');
            outcomes.push({ ok: false, error });
          }
        }
      });
    } catch (error) {
      // The COMMIT itself failed: nothing of the batch is durable, so nothing is acknowledged.
      for (const p of batch) p.reject(error);
      return;
    }
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) p.resolve({ tasks: o.tasks });
      else p.reject(o.error);
    });
  }

  /**
   * Bench-only bulk loader: many jobs per transaction, no quota, no fsync per commit. Same rows as
   * createJob. Never use it to admit real requests (it skips DESIGN invariant 1).
   */
  bulkLoadForBench(jobs: readonly NewJob[]): void {
    const db = this.#open();
    db.exec('PRAGMA synchronous = OFF');
    try {
      this.#write(() => {
        for (const job of jobs) this.#insertJob(job);
      });
    } finally {
      db.exec('PRAGMA synchronous = FULL');
    }
  }

  async getJob(appId: number, jobId: string): Promise<JobRecord | null> {
    const row = this.#stmt('SELECT * FROM jobs WHERE job_id = ? AND app_id = ?').get(jobId, appId) as
      | JobRow
      | undefined;
    return row ? toJob(row) : null;
  }

  async jobTasks(appId: number, jobId: string): Promise<TaskRecord[]> {
    return this.#jobTasks(appId, jobId);
  }

  async listTasks(q: TaskQuery): Promise<{ total: number; tasks: TaskRecord[] }> {
    const plan = this.#taskQueryPlan(q);
    if (plan === null) return { total: 0, tasks: [] };
    const { params, countSql, pageSql, onePass } = plan;
    const count = (): number => Number((this.#stmt(countSql).get(...params) as { n: number }).n);
    const limit = Math.max(0, Math.trunc(q.limit));
    const offset = Math.max(0, Math.trunc(q.offset));
    if (limit === 0) return { total: count(), tasks: [] };
    if (onePass) {
      const rows = this.#stmt(pageSql).all(...params, limit, offset) as unknown as Array<TaskRow & { total: number }>;
      const first = rows[0];
      if (first === undefined) return { total: offset === 0 ? 0 : count(), tasks: [] };
      return { total: Number(first.total), tasks: rows.map(toTask) };
    }
    const total = count();
    if (offset >= total) return { total, tasks: [] };
    const rows = this.#stmt(pageSql).all(...params, limit, offset) as unknown as TaskRow[];
    return { total, tasks: rows.map(toTask) };
  }

  /**
   * Diagnostics and tests: SQLite's plan (EXPLAIN QUERY PLAN details) for the count and page
   * statements listTasks would run; [] when it would answer without a query.
   */
  explainListTasks(q: TaskQuery): string[] {
    const plan = this.#taskQueryPlan(q);
    if (plan === null) return [];
    const explain = (sql: string, params: SQLInputValue[]): string[] =>
      (this.#open().prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail);
    return [
      ...explain(plan.countSql, plan.params),
      ...explain(plan.pageSql, [...plan.params, q.limit, q.offset]),
    ];
  }

  /** The statements answering a task query; null when nothing can match. */
  #taskQueryPlan(q: TaskQuery): { params: SQLInputValue[]; countSql: string; pageSql: string; onePass: boolean } | null {
    if (isEmptyList(q.hosts) || isEmptyList(q.statuses) || isEmptyList(q.types)) return null;
    if (q.from !== undefined && q.to !== undefined && q.from > q.to) return null;
    const src = this.#taskSource(q);
    if (src === null) return null;
    const where = src.where.join(' AND ');
    const countSql = `SELECT count(${src.distinct ? `DISTINCT ${src.id}` : '*'}) AS n FROM ${src.from} WHERE ${where}`;
    const ids = `SELECT ${src.distinct ? 'DISTINCT ' : ''}${src.id} AS id, ${src.ts} AS ts FROM ${src.from} WHERE ${where}`;
    // Index paths: the count stays inside one index; the page walks it newest first and stops.
    // Paths that visit a row per candidate (text filters) count and page in one pass instead.
    const pageSql = src.onePass
      ? `SELECT ${taskCols('r')}, p.total AS total FROM (SELECT id, ts, count(*) OVER () AS total FROM (${ids})` +
        ` ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?) p CROSS JOIN tasks r ON r.id = p.id ORDER BY p.ts DESC, p.id DESC`
      : `SELECT ${taskCols('r')} FROM (${ids} ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?) p` +
        ` CROSS JOIN tasks r ON r.id = p.id ORDER BY p.ts DESC, p.id DESC`;
    return { params: src.params, countSql, pageSql, onePass: src.onePass };
  }

  async listJobs(q: JobQuery): Promise<{ total: number; jobs: Array<{ job: JobRecord; tasks: TaskRecord[] }> }> {
    if (isEmptyList(q.types)) return { total: 0, jobs: [] };
    if (q.from !== undefined && q.to !== undefined && q.from > q.to) return { total: 0, jobs: [] };
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (q.jobId !== undefined) {
      where.push('j.job_id = ?', '+j.app_id = ?');
      params.push(q.jobId, q.appId);
    } else {
      where.push('j.app_id = ?');
      params.push(q.appId);
    }
    if (q.from !== undefined) (where.push('j.created_at >= ?'), params.push(q.from));
    if (q.to !== undefined) (where.push('j.created_at <= ?'), params.push(q.to));
    if (q.types) (where.push(`j.type IN (${marks(q.types.length)})`), params.push(...q.types));
    if (q.host !== undefined) {
      // Through the host index, bounded by the same time range (a job's tasks share its createdAt).
      const sub = ['h.app_id = ?', 'h.host = ?'];
      params.push(q.appId, q.host);
      if (q.from !== undefined) (sub.push('h.created_at >= ?'), params.push(q.from));
      if (q.to !== undefined) (sub.push('h.created_at <= ?'), params.push(q.to));
      where.push(
        `j.job_id IN (SELECT t.job_id FROM task_hosts h CROSS JOIN tasks t ON t.id = h.task_id WHERE ${sub.join(' AND ')})`,
      );
    }
    if (q.target !== undefined) {
      where.push('j.job_id IN (SELECT t.job_id FROM tasks t WHERE t.app_id = ? AND t.target_hash = ? AND t.target = ?)');
      params.push(q.appId, targetHash(q.target), q.target);
    }
    const w = where.join(' AND ');
    const total = Number((this.#stmt(`SELECT count(*) AS n FROM jobs j WHERE ${w}`).get(...params) as { n: number }).n);
    const limit = Math.max(0, Math.trunc(q.limit));
    const offset = Math.max(0, Math.trunc(q.offset));
    if (limit === 0 || offset >= total) return { total, jobs: [] };
    const rows = this.#stmt(
      `SELECT j.* FROM jobs j WHERE ${w} ORDER BY j.created_at DESC, j.job_id DESC LIMIT ? OFFSET ?`,
    ).all(...params, limit, offset) as unknown as JobRow[];
    return {
      total,
      jobs: rows.map((r) => ({ job: toJob(r), tasks: this.#jobTasks(r.app_id, r.job_id) })),
    };
  }

  async quotaUsage(appId: number, day: string): Promise<ReadonlyMap<TaskType, number>> {
    const rows = this.#stmt('SELECT quota_type, used FROM quota_usage WHERE app_id = ? AND day = ?').all(
      appId,
      day,
    ) as unknown as Array<{ quota_type: string; used: number }>;
    return new Map(rows.map((r) => [r.quota_type as TaskType, r.used]));
  }

  async readLog(afterSeq: number, limit: number): Promise<PurgeLogEntry[]> {
    const n = Math.max(0, Math.trunc(limit));
    if (n === 0) return [];
    const rows = this.#stmt(
      `SELECT seq, id, job_id, app_id, type, method, hosts, coalesce(log_target, target) AS target, headers, created_at
       FROM tasks WHERE seq > ? ORDER BY seq LIMIT ?`,
    ).all(afterSeq, n) as unknown as LogRow[];
    return rows.map((r) => {
      const entry: PurgeLogEntry = {
        seq: r.seq,
        taskId: r.id,
        jobId: r.job_id,
        appId: r.app_id,
        type: r.type as TaskType,
        method: r.method as Method,
        hosts: JSON.parse(r.hosts) as string[],
        target: r.target,
        createdAt: r.created_at,
      };
      return r.headers === null
        ? entry
        : { ...entry, headers: JSON.parse(r.headers) as Record<string, string> };
    });
  }

  async lastSeq(): Promise<number> {
    return this.#meta('last_seq');
  }

  async firstSeq(): Promise<number> {
    return this.#firstSeq();
  }

  async ackNode(nodeId: string, seq: number, at: number): Promise<void> {
    this.#write(() => {
      this.#stmt(
        `INSERT INTO node_progress (node_id, acked_seq, seen_at) VALUES (?, ?, ?)
         ON CONFLICT (node_id) DO UPDATE SET acked_seq = max(acked_seq, excluded.acked_seq),
                                             seen_at = max(seen_at, excluded.seen_at)`,
      ).run(nodeId, seq, at);
    });
  }

  async nodeProgress(): Promise<NodeProgress[]> {
    const rows = this.#stmt('SELECT node_id, acked_seq, seen_at FROM node_progress ORDER BY node_id').all() as unknown as Array<{
      node_id: string;
      acked_seq: number;
      seen_at: number;
    }>;
    return rows.map((r) => ({ nodeId: r.node_id, ackedSeq: r.acked_seq, seenAt: r.seen_at }));
  }

  async updateTasks(updates: readonly TaskUpdate[], at: number): Promise<void> {
    if (updates.length === 0) return;
    this.#write(() => {
      const task = this.#stmt(
        `UPDATE tasks SET status = ?,
                          fail_type = CASE WHEN ? THEN ? ELSE fail_type END,
                          fail_message = CASE WHEN ? THEN ? ELSE fail_message END,
                          updated_at = ?
         WHERE id = ? AND status = 'processing'`,
      );
      const hosts = this.#stmt('UPDATE task_hosts SET status = ? WHERE task_id = ?');
      for (const u of updates) {
        const r = task.run(
          u.status,
          u.failType === undefined ? 0 : 1,
          u.failType ?? null,
          u.failMessage === undefined ? 0 : 1,
          u.failMessage ?? null,
          at,
          u.taskId,
        );
        if (r.changes > 0) hosts.run(u.status, u.taskId);
      }
    });
  }

  async processingTasks(maxSeq: number, limit: number, afterSeq = 0): Promise<TaskRecord[]> {
    const n = Math.max(0, Math.trunc(limit));
    if (n === 0) return [];
    const rows = this.#stmt(
      `SELECT ${TASK_COLS} FROM tasks WHERE status = 'processing' AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
    ).all(afterSeq, maxSeq, n) as unknown as TaskRow[];
    return rows.map(toTask);
  }

  async prune(before: number): Promise<number> {
    let removed = 0;
    for (;;) {
      const batch = this.#pruneBatch(before);
      removed += batch.tasks;
      if (batch.jobs === 0) break;
      // Let queued requests (createJob included) run between batches.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.#db === null) return removed; // closed meanwhile: the next prune resumes
    }
    // Quota days are zone-local dates; a day string more than a day older than `before` is over
    // in every zone.
    const cutoffDay = new Date(before - DAY_MS).toISOString().slice(0, 10);
    this.#write(() => {
      this.#stmt('DELETE FROM quota_usage WHERE day < ?').run(cutoffDay);
      // Hours that ended by `before` held only pruned tasks.
      this.#stmt('DELETE FROM task_id_ranges WHERE hour < ?').run(Math.floor(before / HOUR_MS));
    });
    return removed;
  }

  // --- internals ---

  #open(): DatabaseSync {
    if (!this.#db) throw new Error('SqliteTaskStore is not started (call start() first) or was closed');
    return this.#db;
  }

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (s) {
      // Refresh recency (Map keeps insertion order).
      this.#stmts.delete(sql);
      this.#stmts.set(sql, s);
      return s;
    }
    s = this.#open().prepare(sql);
    this.#stmts.set(sql, s);
    if (this.#stmts.size > STATEMENT_CACHE_SIZE) {
      const oldest = this.#stmts.keys().next();
      if (!oldest.done) this.#stmts.delete(oldest.value);
    }
    return s;
  }

  /** Runs `fn` in a BEGIN IMMEDIATE transaction (the write lock taken up front, no upgrade deadlock). */
  #write<T>(fn: () => T): T {
    const db = this.#open();
    db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      db.exec('COMMIT');
      return out;
    } catch (e) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw e;
    }
  }

  #meta(key: string): number {
    const row = this.#stmt('SELECT value FROM store_meta WHERE key = ?').get(key) as { value: number } | undefined;
    return row?.value ?? 0;
  }

  #setMeta(key: string, value: number): void {
    this.#stmt('UPDATE store_meta SET value = ? WHERE key = ?').run(value, key);
  }

  #quotaUsed(appId: number, type: TaskType, day: string): number {
    const row = this.#stmt('SELECT used FROM quota_usage WHERE app_id = ? AND quota_type = ? AND day = ?').get(
      appId,
      type,
      day,
    ) as { used: number } | undefined;
    return row?.used ?? 0;
  }

  /** Inserts one job with its tasks, hosts, trigram rows and log seqs. Caller holds the write transaction. */
  #insertJob(job: NewJob): TaskRecord[] {
    const inserted = this.#stmt(
      `INSERT INTO jobs (job_id, app_id, zone_id, type, method, created_at, secret_id, client_ip, source, task_count)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO NOTHING`,
    ).run(
      job.jobId,
      job.appId,
      job.zoneId,
      job.type,
      job.method,
      job.createdAt,
      job.secretId,
      job.clientIp,
      job.source,
      job.tasks.length,
    );
    if (inserted.changes === 0) throw new DuplicateJobIdError();
    const insTask = this.#stmt(
      `INSERT INTO tasks (job_id, app_id, zone_id, type, method, target, target_hash, log_target, hosts, headers,
                          status, fail_type, fail_message, created_at, updated_at, seq)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?)`,
    );
    const insHost = this.#stmt(
      'INSERT INTO task_hosts (task_id, host, app_id, created_at, status, type, zone_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    const insFts = this.#stmt('INSERT INTO task_fts (rowid, target) VALUES (?, ?)');
    // Seqs come from a counter read and written inside this same IMMEDIATE transaction: no other
    // writer can interleave, and a rolled-back job gives its seqs back, so the log has no gaps.
    let seq = this.#meta('last_seq');
    const startSeq = seq;
    const out: TaskRecord[] = [];
    for (const t of job.tasks) {
      const hosts = [...new Set(t.hosts)];
      const taskSeq = t.fanOut ? ++seq : null;
      const r = insTask.run(
        job.jobId,
        job.appId,
        job.zoneId,
        job.type,
        job.method,
        t.target,
        targetHash(t.target),
        t.logTarget ?? null,
        JSON.stringify(hosts),
        t.headers ? JSON.stringify(t.headers) : null,
        t.status,
        job.createdAt,
        job.createdAt,
        taskSeq,
      );
      const id = Number(r.lastInsertRowid);
      for (const h of hosts) insHost.run(id, h, job.appId, job.createdAt, t.status, job.type, job.zoneId);
      insFts.run(id, t.target);
      out.push({
        id,
        jobId: job.jobId,
        appId: job.appId,
        zoneId: job.zoneId,
        type: job.type,
        method: job.method,
        target: t.target,
        hosts,
        status: t.status,
        failType: null,
        failMessage: null,
        createdAt: job.createdAt,
        updatedAt: job.createdAt,
        seq: taskSeq,
      });
    }
    if (seq !== startSeq) this.#setMeta('last_seq', seq);
    const first = out[0];
    const last = out[out.length - 1];
    if (first && last) {
      this.#stmt(
        `INSERT INTO task_id_ranges (hour, min_id, max_id) VALUES (?, ?, ?)
         ON CONFLICT (hour) DO UPDATE SET min_id = min(min_id, excluded.min_id), max_id = max(max_id, excluded.max_id)`,
      ).run(Math.floor(job.createdAt / HOUR_MS), first.id, last.id);
    }
    return out;
  }

  #jobTasks(appId: number, jobId: string): TaskRecord[] {
    const rows = this.#stmt(`SELECT ${TASK_COLS} FROM tasks WHERE job_id = ? AND +app_id = ? ORDER BY id`).all(
      jobId,
      appId,
    ) as unknown as TaskRow[];
    return rows.map(toTask);
  }

  #firstSeq(): number {
    const last = this.#meta('last_seq');
    const pruned = this.#meta('pruned_through_seq');
    const row = this.#stmt('SELECT seq FROM tasks WHERE seq > ? ORDER BY seq LIMIT 1').get(pruned) as
      | { seq: number }
      | undefined;
    // Entries below pruned_through_seq that survived (a job stamped with an earlier createdAt but
    // committed later) are not part of the retained log: a node that missed the pruned entry must
    // see that it fell behind (DESIGN invariant 2).
    return row ? row.seq : last + 1;
  }

  /** Deletes one bounded batch of whole jobs created before `before`, in one transaction. */
  #pruneBatch(before: number): { jobs: number; tasks: number } {
    return this.#write(() => {
      const candidates = this.#stmt(
        'SELECT job_id, task_count FROM jobs WHERE created_at < ? ORDER BY created_at LIMIT ?',
      ).all(before, PRUNE_BATCH_JOBS) as unknown as Array<{ job_id: string; task_count: number }>;
      const ids: string[] = [];
      let tasks = 0;
      for (const c of candidates) {
        if (ids.length > 0 && tasks + c.task_count > PRUNE_BATCH_TASKS) break;
        ids.push(c.job_id);
        tasks += c.task_count;
      }
      if (ids.length === 0) return { jobs: 0, tasks: 0 };
      const list = JSON.stringify(ids);
      const inJobs = 'SELECT id FROM tasks WHERE job_id IN (SELECT value FROM json_each(?))';
      const maxSeq = this.#stmt(
        'SELECT max(seq) AS s FROM tasks WHERE job_id IN (SELECT value FROM json_each(?))',
      ).get(list) as { s: number | null };
      this.#stmt(`DELETE FROM task_fts WHERE rowid IN (${inJobs})`).run(list);
      this.#stmt(`DELETE FROM task_hosts WHERE task_id IN (${inJobs})`).run(list);
      const removed = this.#stmt('DELETE FROM tasks WHERE job_id IN (SELECT value FROM json_each(?))').run(list);
      this.#stmt('DELETE FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))').run(list);
      if (maxSeq.s !== null && maxSeq.s > this.#meta('pruned_through_seq')) {
        this.#setMeta('pruned_through_seq', maxSeq.s);
      }
      return { jobs: ids.length, tasks: Number(removed.changes) };
    });
  }

  /**
   * Chooses the access path for a task query, most selective first: the job, the exact target,
   * the trigram index (fuzzy target), the host index, then the app's time index. INDEXED BY and
   * the `+` on other indexed columns pin the path: left to itself, SQLite likes to walk the time
   * index to avoid sorting the page, which scans an app's whole history for a one-row answer.
   */
  #taskSource(q: TaskQuery): Source | null {
    if (q.jobId !== undefined) {
      return taskSource(q, 'tasks t INDEXED BY tasks_job', ['t.job_id = ?'], [q.jobId]);
    }
    if (q.target !== undefined) {
      return taskSource(q, 'tasks t INDEXED BY tasks_target', ['t.app_id = ?', 't.target_hash = ?'], [q.appId, targetHash(q.target)]);
    }
    const plan = q.targetContains !== undefined ? this.#ftsPlan(q.targetContains, q.from, q.to) : null;
    if (plan === 'no-match') return null;
    if (plan !== null) {
      return taskSource(q, 'task_fts CROSS JOIN tasks t ON t.id = task_fts.rowid', ['task_fts MATCH ?', 'task_fts.rowid >= ?', 'task_fts.rowid <= ?'], [plan.match, plan.lo, plan.hi], true);
    }
    // A fuzzy target under 3 characters has no trigram to look up: it is checked row by row within
    // the app's time range (and hosts), which EdgeOne caps at 7 days (§4.2). Only such short
    // needles scan; every other text filter above goes through an index.
    if (q.hosts !== undefined) {
      const hosts = q.hosts;
      const src: Source = {
        from: 'task_hosts h INDEXED BY task_hosts_lookup',
        where: ['h.app_id = ?', hosts.length === 1 ? 'h.host = ?' : `h.host IN (${marks(hosts.length)})`],
        params: [q.appId, ...hosts],
        id: 'h.task_id',
        ts: 'h.created_at',
        distinct: hosts.length > 1,
        onePass: false,
      };
      addColumnFilters(src, q, 'h.');
      if (q.targetContains !== undefined) {
        // Only then is the task row needed; the count otherwise stays inside the host index.
        src.from += ' CROSS JOIN tasks t ON t.id = h.task_id';
        src.onePass = true;
        addTextFilters(src, q);
      }
      return src;
    }
    const src: Source = {
      from: 'tasks t INDEXED BY tasks_app_time',
      where: ['t.app_id = ?'],
      params: [q.appId],
      id: 't.id',
      ts: 't.created_at',
      distinct: false,
      onePass: false,
    };
    addColumnFilters(src, q, 't.');
    src.onePass = q.targetContains !== undefined;
    addTextFilters(src, q);
    return src;
  }

  /**
   * Plans a text filter on the trigram index: null when `text` is under 3 characters, 'no-match'
   * when no task of the time range can match. Only the rarest few of the needle's trigrams are
   * ANDed, found by cheap capped counts inside the range; the row check that follows keeps the
   * result exact whatever trigrams are chosen.
   */
  #ftsPlan(text: string, from: number | undefined, to: number | undefined): FtsPlan | 'no-match' | null {
    const tris = trigramsOf(text);
    if (tris.length === 0) return null;
    const bounds = this.#idBounds(from, to);
    if (bounds === null) return 'no-match';
    const probe = this.#stmt(
      'SELECT count(*) AS n FROM (SELECT rowid FROM task_fts WHERE task_fts MATCH ? AND rowid >= ? AND rowid <= ? LIMIT ?)',
    );
    const counted = tris.map((t) => ({ t, n: Number((probe.get(ftsTerm(t), bounds.lo, bounds.hi, TRIGRAM_PROBE_CAP) as { n: number }).n) }));
    if (counted.some((c) => c.n === 0)) return 'no-match';
    const sorted = [...counted].sort((a, b) => a.n - b.n);
    const rarest = sorted[0];
    // A rare trigram bounds the candidates by itself (a few more make it tighter, cheaply). When every
    // trigram is common ("download/2026/01/"), only their conjunction is selective.
    const chosen =
      rarest !== undefined && rarest.n < TRIGRAM_PROBE_CAP
        ? sorted.slice(0, TRIGRAMS_PER_SEARCH).map((c) => c.t)
        : spread(tris, TRIGRAMS_WHEN_COMMON);
    return { match: chosen.map(ftsTerm).join(' AND '), ...bounds };
  }

  /** Task-id bounds of the tasks created in [from, to] (null: none), from the per-hour ranges. */
  #idBounds(from: number | undefined, to: number | undefined): { lo: bigint; hi: bigint } | null {
    if (from === undefined && to === undefined) return { lo: NO_LOWER_ID, hi: NO_UPPER_ID };
    const row = this.#stmt('SELECT min(min_id) AS lo, max(max_id) AS hi FROM task_id_ranges WHERE hour >= ? AND hour <= ?').get(
      from === undefined ? Number.MIN_SAFE_INTEGER : Math.floor(from / HOUR_MS),
      to === undefined ? Number.MAX_SAFE_INTEGER : Math.floor(to / HOUR_MS),
    ) as { lo: number | null; hi: number | null };
    if (row.lo === null || row.hi === null) return null;
    return { lo: BigInt(row.lo), hi: BigInt(row.hi) };
  }
}

/** Filters on the task row `t` for paths driven by something other than the app's indexes. */
function addTaskFilters(src: Source, q: TaskQuery): void {
  src.where.push('+t.app_id = ?');
  src.params.push(q.appId);
  addColumnFilters(src, q, '+t.');
  if (q.hosts !== undefined) {
    src.where.push(`EXISTS (SELECT 1 FROM task_hosts x WHERE x.task_id = t.id AND x.host IN (${marks(q.hosts.length)}))`);
    src.params.push(...q.hosts);
  }
  addTextFilters(src, q);
}

/**
 * Time, status, type and zone filters on the columns behind `col` (`h.` task_hosts, `t.` tasks;
 * `+t.` keeps SQLite from choosing an index on them when another one already drives the query).
 */
function addColumnFilters(src: Source, q: TaskQuery, col: 'h.' | 't.' | '+t.'): void {
  if (q.from !== undefined) (src.where.push(`${col}created_at >= ?`), src.params.push(q.from));
  if (q.to !== undefined) (src.where.push(`${col}created_at <= ?`), src.params.push(q.to));
  if (q.statuses) (src.where.push(`${col}status IN (${marks(q.statuses.length)})`), src.params.push(...q.statuses));
  if (q.types) (src.where.push(`${col}type IN (${marks(q.types.length)})`), src.params.push(...q.types));
  if (q.zoneId !== undefined) (src.where.push(`${col}zone_id = ?`), src.params.push(q.zoneId));
}

/** Exact and substring target checks on the row (the hash and trigram indexes only narrow). */
function addTextFilters(src: Source, q: TaskQuery): void {
  if (q.target !== undefined) (src.where.push('t.target = ?'), src.params.push(q.target));
  if (q.targetContains !== undefined) {
    // Substring match, ASCII case-insensitive (the trigram index folds case too).
    src.where.push('instr(lower(t.target), ?) > 0');
    src.params.push(asciiLower(q.targetContains));
  }
}

const isEmptyList = (l: readonly unknown[] | undefined): boolean => l !== undefined && l.length === 0;

function toJob(r: JobRow): JobRecord {
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

function toTask(r: TaskRow): TaskRecord {
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
