// The SQLite TaskStore (node:sqlite): durable jobs, tasks, the purge log, quotas and node progress.
// Writes run on the caller's thread (group commit); history reads run in worker threads.
import { closeSync, fdatasync, fdatasyncSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import type { JobRecord, Method, PurgeLogEntry, TaskRecord, TaskType } from '../../purge/types.ts';
import { settleBatch, type JobOutcome, type PendingJob } from '../group-commit.ts';
import { PRUNE_BATCH_JOBS, pruneBatchJobs } from '../prune-batches.ts';
import { DuplicateJobIdError, QuotaExceededError } from '../task-store.ts';
import type {
  NewJob, NodeAck, NodeProgress, NodeReport, NodeReportInput, NodeReportOutcome, PrefetchResult, PrefetchResultInput, QuotaCharge, RefreshRecord, RefreshRecordQuery, TaskQuery, TaskStore, TaskUpdate,
  WebhookAttempt, WebhookDelivery, WebhookOutbox, WebhookRouter,
} from '../task-store.ts';
import { newEventId } from '../../shared/ids.ts';
import { clipError, DELIVERY_COLS, settledAtCreation, settledEvent, toDelivery, type DeliveryRow, type NewDelivery } from '../webhook-rows.ts';
import { LATEST_VERSION, migrate } from './migrations.ts';
import { SqliteCheckpointer } from './sqlite-checkpointer.ts';
import { SqliteReadPool } from './sqlite-read-pool.ts';
import {
  HOST_ROWS_BACKLOG_MAX, hostRowsWaiting, indexBacklog, PAGE_CACHE_KIB, pageCacheKiB, StatementCache, TASK_COLS, targetHash, toTask, TRIGRAM_BACKLOG_MAX, unindexTargets, writeHostRows, type TaskRow,
} from './sqlite-rows.ts';
import { HOUR_MS, SqliteTaskReader } from './sqlite-task-reader.ts';

export { ftsTerm, trigramsOf } from './sqlite-task-reader.ts';
export { targetHash } from './sqlite-rows.ts';

export interface SqliteTaskStoreOptions {
  /** Database file; its directory is created if missing. `:memory:` for a throwaway store. */
  readonly path: string;
  /** How long a write waits for another process's lock before failing (ms). Default 5000. */
  readonly busyTimeoutMs?: number;
  /**
   * Worker threads that run history reads (listTasks, listRefreshRecords, jobTasks), each with a
   * read-only connection, so that no query ever blocks the event loop (one starts with start(), the
   * others as reads need them). Default: the machine's CPUs less one, at least 2, at most 4. 0 runs
   * the reads on the caller's thread (always so for `:memory:`, whose data no other connection sees).
   */
  readonly readers?: number;
  /**
   * WAL size (bytes) past which the store resets the WAL (see #afterCommit); also its
   * journal_size_limit, what the file is cut back to after a reset. Default WAL_LIMIT_BYTES.
   */
  readonly walLimitBytes?: number;
  /**
   * Most tasks the trigram index may lag behind the tasks (searched row by row meanwhile); default
   * TRIGRAM_BACKLOG_MAX, 0 indexes every commit's tasks at once. Tests set it to reach both sides.
   */
  readonly trigramBacklog?: number;
  /**
   * Most tasks whose host rows (task_hosts, refresh_records) may wait to be written; default
   * HOST_ROWS_BACKLOG_MAX, 0 writes them with every commit. A read that needs them writes them first.
   */
  readonly hostRowsBacklog?: number;
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

const DAY_MS = 86_400_000;
/** WAL size past which the writer checkpoints on its own thread (see #afterCommit). */
const WAL_CHECKPOINT_ON_LOOP_BYTES = 256 * 2 ** 20;

/**
 * WAL size past which writes are held back while the checkpoint thread resets the WAL (see
 * #afterCommit). The file stays under about this plus one commit's pages; it is also the WAL's
 * journal_size_limit. README (How it works) states it.
 */
export const WAL_LIMIT_BYTES = 64 * 2 ** 20;

/**
 * How long a reset waits for reads still using the WAL (ms), writes held meanwhile. A read that
 * lasts longer makes the reset give up: writes go on, the WAL grows until a later reset succeeds,
 * tried again WAL_RESET_RETRY_MS later.
 */
const WAL_RESET_WAIT_MS = 250;
const WAL_RESET_RETRY_MS = 1000;

/**
 * WAL syncs at once on the libuv thread pool (4 threads by default): a batch committed while one
 * runs gets its own at once; the pool keeps threads for everything else.
 */
const MAX_SYNCS_IN_FLIGHT = 2;

/**
 * Task rows per multi-row INSERT for a job with at least this many (the rest one by one): a statement
 * step per row cost ~1 µs of a 1,000-URL job's ~4.5 µs per task row (in a micro-benchmark, 4.6-5.3 ->
 * 3.1-4.1 ms per 1,000 rows with every index of tasks). 50 rows are 700 bound values.
 */
const TASK_INSERT_CHUNK = 50;
const TASK_ROW = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?)';
const INSERT_TASKS = `INSERT INTO tasks (job_id, app_id, zone_id, type, method, target, target_hash, log_target, hosts, headers,
                   status, fail_type, fail_message, created_at, updated_at, seq) VALUES `;
const INSERT_TASK = INSERT_TASKS + TASK_ROW;
const INSERT_TASK_CHUNK = INSERT_TASKS + Array.from({ length: TASK_INSERT_CHUNK }, () => TASK_ROW).join(', ');

/** A group commit's quota counters by `appId type day`: the stored count, and what the batch's admitted jobs add. */
type QuotaTally = Map<string, { readonly appId: number; readonly type: TaskType; readonly day: string; readonly used: number; added: number }>;

/**
 * What a transaction's jobs add to the store's bookkeeping, written once for all of them
 * (#writeBookkeeping): the purge-log counter, and each hour's lowest and highest task id. Per job,
 * these were three more statements, as many as the job's own rows in a 1-URL purge.
 */
interface Bookkeeping {
  /** store_meta.last_seq when the transaction began, and the last seq handed out since. */
  readonly startSeq: number;
  seq: number;
  /** By hour of createdAt (task_id_ranges). */
  readonly ranges: Map<number, { min: number; max: number }>;
}

/**
 * Takes a job's seqs (the last one it was given) and task ids into `b`. Called once the job has written
 * everything: a job rolled back alone (its SAVEPOINT) leaves nothing here, so its seqs are handed out
 * again (the log stays gap-free) and its ids are in no hour range.
 */
function takeInto(b: Bookkeeping, createdAt: number, lastSeq: number, tasks: readonly TaskRecord[]): void {
  b.seq = lastSeq;
  const first = tasks[0];
  const last = tasks.at(-1);
  if (!first || !last) return;
  const hour = Math.floor(createdAt / HOUR_MS);
  const r = b.ranges.get(hour);
  if (r) (r.min = Math.min(r.min, first.id), r.max = Math.max(r.max, last.id));
  else b.ranges.set(hour, { min: first.id, max: last.id });
}

interface SyncWaiter {
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

interface WalSync {
  readonly waiters: SyncWaiter[];
  /** #committedSeq when it started: on disk once it and every sync before it succeeded. */
  readonly seq: number;
  /** The sync in flight before it (null once that one was answered). */
  prev: WalSync | null;
  done: boolean;
  /** Its own error, or one a sync running beside it had (see #sync). */
  error: unknown;
}

const defaultReaders = (): number => Math.min(4, Math.max(2, availableParallelism() - 1));

export class SqliteTaskStore implements TaskStore, WebhookOutbox {
  /** createJob calls waiting for the next group commit. */
  #pendingJobs: PendingJob[] = [];
  readonly #path: string;
  readonly #busyTimeoutMs: number;
  readonly #readers: number;
  #db: DatabaseSync | null = null;
  readonly #stmts = new StatementCache(() => this.#open());
  /** Reads on the writer's connection: diagnostics, and every read when there is no pool. */
  readonly #reader = new SqliteTaskReader(() => this.#open());
  #pool: SqliteReadPool | null = null;
  /**
   * The WAL file, fdatasync'ed on the libuv thread pool after each commit (null for `:memory:`): a
   * COMMIT only write()s its frames (synchronous=NORMAL), and nothing is acknowledged before that sync.
   */
  #walFd: number | null = null;
  /** Highest purge-log seq this store committed, and the highest one known to be on disk. */
  #committedSeq = 0;
  #syncedSeq = 0;
  /** Callers waiting for a WAL sync that starts after their commit. */
  #syncWaiters: SyncWaiter[] = [];
  /** WAL syncs not answered yet, oldest first; each covers every commit made before it started. */
  #syncs: WalSync[] = [];
  /** Of those, the ones whose fdatasync has not returned yet (at most MAX_SYNCS_IN_FLIGHT). */
  #syncsRunning = 0;
  /** Checkpoints off the event loop (file stores); null: SQLite's automatic checkpoints on COMMIT. */
  #checkpointer: SqliteCheckpointer | null = null;
  readonly #walLimitBytes: number;
  readonly #trigramBacklog: number;
  readonly #hostRowsBacklog: number;
  /** Set while the checkpoint thread resets the WAL: no write starts until it settles (see #afterCommit). */
  #walReset: Promise<void> | null = null;
  /** performance.now() before which no reset is tried again (the last one found a long read). */
  #walResetRetryAt = 0;

  constructor(options: SqliteTaskStoreOptions) {
    this.#path = options.path;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    const inMemory = options.path === ':memory:' || options.path === '' || options.path.startsWith('file:');
    this.#readers = inMemory ? 0 : Math.max(0, Math.trunc(options.readers ?? defaultReaders()));
    this.#walLimitBytes = Math.max(2 ** 20, Math.trunc(options.walLimitBytes ?? WAL_LIMIT_BYTES));
    this.#trigramBacklog = Math.max(0, Math.trunc(options.trigramBacklog ?? TRIGRAM_BACKLOG_MAX));
    this.#hostRowsBacklog = Math.max(0, Math.trunc(options.hostRowsBacklog ?? HOST_ROWS_BACKLOG_MAX));
  }

  async start(): Promise<void> {
    if (this.#db) return;
    const inMemory = this.#path === ':memory:' || this.#path === '';
    if (!inMemory && !this.#path.startsWith('file:')) mkdirSync(dirname(this.#path), { recursive: true });
    const db = new DatabaseSync(this.#path, { timeout: this.#busyTimeoutMs });
    try {
      db.exec(`PRAGMA busy_timeout = ${Math.trunc(this.#busyTimeoutMs)}`);
      // WAL: readers never block the writer. NORMAL: a COMMIT writes its WAL frames without fsync;
      // the store then fdatasyncs the WAL file off the event loop (#durable) and answers only after
      // that, so an acknowledged job survives a crash of the process or the machine (DESIGN
      // invariant 1) while the loop keeps parsing the next requests during the sync. A crash
      // mid-transaction leaves nothing: SQLite rolls it back. Checkpoints still fsync the database.
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      // After a reset the WAL file is cut back to this at the next COMMIT (it is reused, not regrown).
      db.exec(`PRAGMA journal_size_limit = ${this.#walLimitBytes}`);
      db.exec(`PRAGMA cache_size = ${-PAGE_CACHE_KIB}`);
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
    if (!inMemory && !this.#path.startsWith('file:')) {
      // The WAL exists once a WAL database was opened and written (migrate's transaction). Whatever
      // an earlier process wrote to it is made durable now: its log entries count as synced.
      this.#walFd = openSync(`${this.#path}-wal`, 'r');
      fdatasyncSync(this.#walFd);
      try {
        this.#checkpointer = await SqliteCheckpointer.start({ path: this.#path, busyTimeoutMs: this.#busyTimeoutMs, resetWaitMs: WAL_RESET_WAIT_MS });
      } catch (e) {
        this.#db = null;
        this.#closeWal();
        db.close();
        throw e;
      }
      // A checkpoint copies pages into the database file and fsyncs it: tens of ms the event loop
      // would otherwise spend inside a COMMIT every 1,000 pages.
      db.exec('PRAGMA wal_autocheckpoint = 0');
    }
    this.#committedSeq = this.#syncedSeq = this.#meta('last_seq');
    // Started after the migrations, so a reader always opens a complete database. One worker is
    // ready when start() resolves, the others start as reads need them; all are niced, so that a
    // long read yields the CPU to the event loop.
    if (this.#readers > 0) {
      const pool = new SqliteReadPool({ path: this.#path, size: this.#readers, busyTimeoutMs: this.#busyTimeoutMs, niceness: 5 });
      try {
        await pool.start();
      } catch (e) {
        await pool.close();
        await this.#checkpointer?.close();
        this.#checkpointer = null;
        this.#db = null;
        this.#closeWal();
        db.close();
        throw e;
      }
      this.#pool = pool;
    }
  }

  async close(): Promise<void> {
    // Jobs already handed to createJob are committed (and answered) before the database closes.
    if (this.#walReset) await this.#walResetDone();
    if (this.#db) this.#commitPendingJobs();
    const db = this.#db;
    if (!db) return;
    // Every commit so far is synced (and answered) before the WAL's descriptor is closed.
    // Syncs are answered in the order they started, so this one's answer also means none is in flight.
    await this.#durable().catch(() => {});
    const checkpointer = this.#checkpointer;
    this.#checkpointer = null;
    await checkpointer?.close();
    // Readers first (their reads in flight finish): the writer's close may then checkpoint the WAL.
    const pool = this.#pool;
    this.#pool = null;
    await pool?.close();
    this.#db = null;
    this.#stmts.clear();
    this.#reader.clear();
    this.#closeWal();
    db.close();
  }

  #closeWal(): void {
    if (this.#walFd !== null) closeSync(this.#walFd);
    this.#walFd = null;
  }

  /**
   * Group commit: jobs submitted in the same turn of the event loop share one transaction and one
   * WAL sync, and each promise resolves only after that sync made its job durable (DESIGN invariant
   * 1). Under load this turns one fsync per request into one per batch, and the sync runs on the
   * thread pool while the next batch gathers. Every job stays all-or-nothing without a SAVEPOINT
   * each: a quota refusal or a duplicate id is found before the job writes anything. Should a job
   * fail half-way for any other reason, the whole batch rolls back and runs again with one SAVEPOINT
   * per job, so that job alone fails.
   */
  createJob(job: NewJob, charge: QuotaCharge, webhooks?: WebhookRouter): Promise<{ tasks: TaskRecord[] }> {
    return new Promise((resolve, reject) => {
      this.#pendingJobs.push({ job, charge, webhooks, resolve, reject });
      if (this.#pendingJobs.length === 1) setImmediate(() => this.#commitPendingJobs());
    });
  }

  #commitPendingJobs(): void {
    // Held back during a WAL reset; the reset's end commits what gathered meanwhile.
    if (this.#walReset) return;
    const batch = this.#pendingJobs;
    this.#pendingJobs = [];
    if (batch.length === 0) return;
    // Each quota counter of the batch is read once and charged once, before the COMMIT; the admitted
    // jobs' targets go to the trigram index together (once the backlog is long enough), so that
    // consecutive tasks share its rows.
    const admitAll = (admit: (p: PendingJob, tally: QuotaTally, book: Bookkeeping) => JobOutcome) => (): JobOutcome[] => {
      const tally: QuotaTally = new Map();
      const book = this.#bookkeeping();
      const outcomes = batch.map((p) => admit(p, tally, book));
      const added = outcomes.flatMap((o) => (o.ok ? o.tasks : []));
      this.#writeBookkeeping(book);
      indexBacklog(added, this.#trigramBacklog, (sql) => this.#stmt(sql));
      const last = added.at(-1)?.id;
      if (last !== undefined) writeHostRows((sql) => this.#stmt(sql), this.#hostRowsBacklog, last);
      this.#chargeQuotas(tally);
      return outcomes;
    };
    void settleBatch(batch, async () => {
      let outcomes: JobOutcome[];
      try {
        outcomes = this.#write(admitAll((p, tally, book) => this.#admitJob(p, tally, book)));
      } catch {
        const db = this.#open();
        outcomes = this.#write(
          admitAll((p, tally, book) => {
            db.exec('SAVEPOINT job');
            try {
              const o = this.#admitJob(p, tally, book);
              db.exec('RELEASE job');
              return o;
            } catch (error) {
              db.exec('ROLLBACK TO job');
              db.exec('RELEASE job');
              return { ok: false, error };
            }
          }),
        );
      }
      // Had the COMMIT or the sync failed, this threw: nothing of the batch is acknowledged.
      await this.#durable();
      return outcomes;
    });
  }

  /**
   * One job of a batch: its quota checked against the counter as the batch left it so far, then its
   * rows written, then its amount added to the batch's tally (charged by #chargeQuotas). A refusal
   * (quota, duplicate id) is decided before the first write, so it leaves nothing behind; anything
   * else thrown may have, and has added nothing to the tally.
   */
  #admitJob({ job, charge, webhooks }: PendingJob, tally: QuotaTally, book: Bookkeeping): JobOutcome {
    const key = `${job.appId} ${charge.quotaType} ${charge.day}`;
    let counter = tally.get(key);
    if (!counter) {
      counter = { appId: job.appId, type: charge.quotaType, day: charge.day, used: this.#quotaUsed(job.appId, charge.quotaType, charge.day), added: 0 };
      tally.set(key, counter);
    }
    const used = counter.used + counter.added;
    if (used + charge.amount > charge.daily) return { ok: false, error: new QuotaExceededError(used) };
    let inserted: { tasks: TaskRecord[]; lastSeq: number };
    try {
      inserted = this.#insertJob(job, book.seq);
    } catch (error) {
      if (error instanceof DuplicateJobIdError) return { ok: false, error };
      throw error;
    }
    for (const d of settledAtCreation(job, webhooks)) this.#insertDelivery(d);
    counter.added += charge.amount;
    takeInto(book, job.createdAt, inserted.lastSeq, inserted.tasks);
    return { ok: true, tasks: inserted.tasks };
  }

  /** Writes what a batch's admitted jobs used, one statement per (app, type, day) counter. Caller holds the write transaction. */
  #chargeQuotas(tally: QuotaTally): void {
    for (const c of tally.values()) {
      if (c.added === 0) continue;
      this.#stmt(
        `INSERT INTO quota_usage (app_id, quota_type, day, used) VALUES (?, ?, ?, ?)
         ON CONFLICT (app_id, quota_type, day) DO UPDATE SET used = used + excluded.used`,
      ).run(c.appId, c.type, c.day, c.added);
    }
  }

  /**
   * Resolves once everything committed before the call is on disk: one fdatasync of the WAL on the
   * thread pool serves every caller that arrived before it started. Only then do the seqs committed
   * so far become visible to readLog and lastSeq, so no node ever applies an entry that a crash
   * could take back (and hand out again for another purge). A commit made while a sync runs starts
   * its own at once (up to MAX_SYNCS_IN_FLIGHT) rather than wait for that one to end before its own
   * can start: under load a batch waits about one sync after its COMMIT, not up to two.
   */
  #durable(): Promise<void> {
    const fd = this.#walFd;
    if (fd === null) {
      this.#syncedSeq = this.#committedSeq;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.#syncWaiters.push({ resolve, reject });
      if (this.#syncsRunning < MAX_SYNCS_IN_FLIGHT) this.#sync(fd);
    });
  }

  #sync(fd: number): void {
    const sync: WalSync = { waiters: this.#syncWaiters, seq: this.#committedSeq, prev: this.#syncs.at(-1) ?? null, done: false, error: null };
    this.#syncWaiters = [];
    this.#syncs.push(sync);
    this.#syncsRunning++;
    fdatasync(fd, (error) => {
      this.#syncsRunning--;
      sync.done = true;
      sync.error = error;
      // Answered in the order they started, each only if the syncs before it succeeded too: of two
      // syncs that overlap, only one is told of a failed write-back, and the WAL's frames chain their
      // checksums, so a later commit is no more durable than the earlier ones.
      while (this.#syncs[0]?.done) {
        const s = this.#syncs.shift()!;
        s.error ??= s.prev?.error ?? null;
        s.prev = null;
        if (s.error) for (const w of s.waiters) w.reject(s.error);
        else {
          this.#syncedSeq = Math.max(this.#syncedSeq, s.seq);
          for (const w of s.waiters) w.resolve();
        }
      }
      if (this.#syncWaiters.length > 0 && this.#walFd !== null && this.#syncsRunning < MAX_SYNCS_IN_FLIGHT) this.#sync(this.#walFd);
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
        const book = this.#bookkeeping();
        const tasks = jobs.flatMap((job) => {
          const { tasks: out, lastSeq } = this.#insertJob(job, book.seq);
          takeInto(book, job.createdAt, lastSeq, out);
          return out;
        });
        this.#writeBookkeeping(book);
        indexBacklog(tasks, 0, (sql) => this.#stmt(sql));
        writeHostRows((sql) => this.#stmt(sql), 0);
      });
    } finally {
      db.exec('PRAGMA synchronous = NORMAL');
    }
    this.#syncedSeq = this.#committedSeq;
  }

  async schemaVersion(): Promise<{ applied: number; expected: number }> {
    const row = this.#open().prepare('PRAGMA user_version').get() as { user_version: number };
    return { applied: Number(row.user_version), expected: LATEST_VERSION };
  }

  async getJob(appId: number, jobId: string): Promise<JobRecord | null> {
    // One row by primary key: cheaper here than a round trip to a worker.
    return this.#reader.getJob(appId, jobId);
  }

  async jobTasks(appId: number, jobId: string): Promise<TaskRecord[]> {
    return this.#pool ? this.#pool.run('jobTasks', appId, appId, jobId) : this.#reader.jobTasks(appId, jobId);
  }

  async listTasks(q: TaskQuery): Promise<{ total: number; tasks: TaskRecord[] }> {
    // A host filter reads task_hosts (see #writeHostRowsNow).
    if (q.hosts !== undefined) await this.#writeHostRowsNow();
    return this.#pool ? this.#pool.run('listTasks', q.appId, q) : this.#reader.listTasks(q);
  }

  async listRefreshRecords(q: RefreshRecordQuery): Promise<{ total: number; records: RefreshRecord[] }> {
    await this.#writeHostRowsNow();
    return this.#pool ? this.#pool.run('listRefreshRecords', q.appId, q) : this.#reader.listRefreshRecords(q);
  }

  /**
   * Diagnostics and tests: SQLite's plan (EXPLAIN QUERY PLAN details) for the count and page
   * statements listTasks would run; [] when it would answer without a query.
   */
  explainListTasks(q: TaskQuery): string[] {
    return this.#reader.explainListTasks(q);
  }

  /** Diagnostics and tests: as explainListTasks, for listRefreshRecords' count and record page. */
  explainListRefreshRecords(q: RefreshRecordQuery): string[] {
    return this.#reader.explainListRefreshRecords(q);
  }

  /**
   * Diagnostics and tests: the page cache bound (KiB) of the writer's connection and of a read
   * worker's (undefined without a pool).
   */
  async pageCacheKiB(): Promise<{ writer: number; reader: number | undefined }> {
    return { writer: pageCacheKiB(this.#open()), reader: this.#pool ? await this.#pool.run('pageCacheKiB', 0) : undefined };
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
       FROM tasks WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
    ).all(afterSeq, this.#visibleSeq(), n) as unknown as LogRow[];
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
    return Math.min(this.#meta('last_seq'), this.#visibleSeq());
  }

  /** The highest seq readers may see: ours up to the last WAL sync (see #durable). */
  #visibleSeq(): number {
    return this.#committedSeq > this.#syncedSeq ? this.#syncedSeq : Number.MAX_SAFE_INTEGER;
  }

  async firstSeq(): Promise<number> {
    return this.#firstSeq();
  }

  async ackNode(nodeId: string, seq: number, at: number, reports: readonly NodeReportInput[] = []): Promise<NodeReportOutcome[]> {
    return this.#writeDurable(() => this.#ackOne(nodeId, seq, at, reports));
  }

  async ackNodes(acks: readonly NodeAck[], settled: readonly TaskUpdate[], settledAt: number, webhooks?: WebhookRouter, committed?: () => void): Promise<NodeReportOutcome[][]> {
    if (acks.length === 0 && settled.length === 0) return [];
    if (this.#walReset) await this.#walResetDone();
    // One commit and one WAL sync for the whole batch.
    const outcomes = this.#write(() => {
      const out = acks.map((a) => {
        const o = this.#ackOne(a.nodeId, a.seq, a.at, a.reports ?? []);
        return a.results?.length ? [...o, ...this.#recordResults(a.nodeId, a.at, a.results)] : o;
      });
      this.#updateTasks(settled, settledAt, webhooks);
      return out;
    });
    committed?.();
    await this.#durable();
    return outcomes;
  }

  /** One ack and its reports (see TaskStore.ackNode). Caller holds the write transaction. */
  #ackOne(nodeId: string, seq: number, at: number, reports: readonly NodeReportInput[]): NodeReportOutcome[] {
    this.#stmt(
      `INSERT INTO node_progress (node_id, acked_seq, seen_at) VALUES (?, ?, ?)
       ON CONFLICT (node_id) DO UPDATE SET acked_seq = max(acked_seq, excluded.acked_seq),
                                           seen_at = max(seen_at, excluded.seen_at)`,
    ).run(nodeId, seq, at);
    if (reports.length === 0) return [];
    // Only onto the task that holds this seq: no report outlives its task or names a seq it never had.
    const insert = this.#stmt(
      `INSERT INTO node_reports (task_id, node_id, seq, driver, executed_as, matched, note, applied_at)
       SELECT id, ?, seq, ?, ?, ?, ?, ? FROM tasks WHERE id = ? AND seq = ?
       ON CONFLICT (task_id, node_id) DO NOTHING`,
    );
    const exists = this.#stmt('SELECT 1 FROM tasks WHERE id = ? AND seq = ?');
    return reports.map((r): NodeReportOutcome => {
      const done = insert.run(nodeId, r.driver, r.executedAs, r.matched, r.note, at, r.taskId, r.seq);
      if (done.changes > 0) return 'recorded';
      return exists.get(r.taskId, r.seq) === undefined ? 'unknown' : 'duplicate';
    });
  }

  /** One ack's prefetch results (see NodeAck.results). Caller holds the write transaction. */
  #recordResults(nodeId: string, at: number, results: readonly PrefetchResultInput[]): NodeReportOutcome[] {
    const insert = this.#stmt(
      `INSERT INTO prefetch_results (task_id, node_id, ok, fail_type, fail_message, at)
       SELECT id, ?, ?, ?, ?, ? FROM tasks WHERE id = ? AND type = 'prefetch_url'
       ON CONFLICT (task_id, node_id) DO NOTHING`,
    );
    const exists = this.#stmt(`SELECT 1 FROM tasks WHERE id = ? AND type = 'prefetch_url'`);
    return results.map((r): NodeReportOutcome => {
      const done = insert.run(nodeId, r.ok ? 1 : 0, r.failType, r.failMessage, at, r.taskId);
      if (done.changes > 0) return 'recorded';
      return exists.get(r.taskId) === undefined ? 'unknown' : 'duplicate';
    });
  }

  async prefetchResults(taskIds: readonly number[]): Promise<PrefetchResult[]> {
    if (taskIds.length === 0) return [];
    const rows = this.#stmt(
      `SELECT task_id, node_id, ok, fail_type, fail_message, at FROM prefetch_results
       WHERE task_id IN (SELECT value FROM json_each(?)) ORDER BY task_id, at, node_id`,
    ).all(JSON.stringify(taskIds)) as unknown as Array<{ task_id: number; node_id: string; ok: number; fail_type: string | null; fail_message: string | null; at: number }>;
    return rows.map((r) => ({ nodeId: r.node_id, taskId: r.task_id, ok: r.ok === 1, failType: r.fail_type, failMessage: r.fail_message, at: r.at }));
  }

  async nodeProgress(): Promise<NodeProgress[]> {
    const rows = this.#stmt('SELECT node_id, acked_seq, seen_at FROM node_progress ORDER BY node_id').all() as unknown as Array<{
      node_id: string;
      acked_seq: number;
      seen_at: number;
    }>;
    return rows.map((r) => ({ nodeId: r.node_id, ackedSeq: r.acked_seq, seenAt: r.seen_at }));
  }

  async jobNodeReports(appId: number, jobId: string): Promise<NodeReport[]> {
    return this.#pool ? this.#pool.run('jobNodeReports', appId, appId, jobId) : this.#reader.jobNodeReports(appId, jobId);
  }

  async updateTasks(updates: readonly TaskUpdate[], at: number, webhooks?: WebhookRouter): Promise<void> {
    if (updates.length === 0) return;
    await this.#writeDurable(() => this.#updateTasks(updates, at, webhooks));
  }

  /** Settles processing tasks (see TaskStore.updateTasks). Caller holds the write transaction. */
  #updateTasks(updates: readonly TaskUpdate[], at: number, webhooks: WebhookRouter | undefined): void {
    if (updates.length === 0) return;
    const task = this.#stmt(
      `UPDATE tasks SET status = ?,
                        fail_type = CASE WHEN ? THEN ? ELSE fail_type END,
                        fail_message = CASE WHEN ? THEN ? ELSE fail_message END,
                        updated_at = ?
       WHERE id = ? AND status = 'processing'`,
    );
    const hosts = this.#stmt('UPDATE task_hosts SET status = ? WHERE task_id = ?');
    const jobOf = this.#stmt('SELECT job_id FROM tasks WHERE id = ?');
    const settled = new Set<string>();
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
      if (r.changes > 0) {
        hosts.run(u.status, u.taskId);
        if (webhooks) settled.add((jobOf.get(u.taskId) as { job_id: string }).job_id);
      }
    }
    if (webhooks) this.#enqueueWebhooks(settled, at, webhooks);
  }

  /** Caller holds the write transaction: one outbox row per (job, URL) for each job that has no processing task left. */
  #enqueueWebhooks(jobIds: Iterable<string>, at: number, webhooks: WebhookRouter): void {
    const counts = this.#stmt(
      `SELECT app_id, sum(status = 'processing') AS p, sum(status = 'failed') AS f, sum(status = 'timeout') AS t
       FROM tasks WHERE job_id = ? GROUP BY app_id`,
    );
    for (const jobId of jobIds) {
      const c = counts.get(jobId) as { app_id: number; p: number; f: number; t: number } | undefined;
      if (!c || c.p > 0) continue;
      const event = settledEvent({ failed: c.f, timeout: c.t });
      for (const url of webhooks({ appId: c.app_id, jobId, event })) this.#insertDelivery([newEventId(), c.app_id, jobId, url, event, at]);
    }
  }

  /** Caller holds the write transaction: one pending outbox row, due at once; a second one for the same (job, URL) is dropped. */
  #insertDelivery([eventId, appId, jobId, url, event, at]: NewDelivery): void {
    this.#stmt(
      `INSERT INTO webhook_deliveries (event_id, app_id, job_id, url, event, created_at, status, next_at)
       VALUES (?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (job_id, url) DO NOTHING`,
    ).run(eventId, appId, jobId, url, event, at, at);
  }

  // --- webhook outbox (WebhookOutbox) ---

  async claimWebhookDeliveries(now: number, limit: number, holdMs: number): Promise<WebhookDelivery[]> {
    const n = Math.max(0, Math.trunc(limit));
    if (n === 0) return [];
    if (this.#walReset) await this.#walResetDone();
    return this.#write(() => {
      const rows = this.#stmt(
        `UPDATE webhook_deliveries SET held_until = ?
         WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_at <= ? AND held_until <= ? ORDER BY next_at LIMIT ?)
         RETURNING ${DELIVERY_COLS}`,
      ).all(now + holdMs, now, now, n) as unknown as DeliveryRow[];
      return rows.map(toDelivery).sort((a, b) => a.nextAt - b.nextAt);
    });
  }

  async recordWebhookAttempt(a: WebhookAttempt): Promise<void> {
    if (this.#walReset) await this.#walResetDone();
    this.#write(() => {
      this.#stmt(
        `UPDATE webhook_deliveries SET
           attempts = attempts + 1, last_status = ?, last_error = ?, last_attempt_at = ?, held_until = 0,
           status = CASE WHEN ? THEN 'delivered' WHEN ? IS NULL THEN 'failed' ELSE 'pending' END,
           delivered_at = CASE WHEN ? THEN ? ELSE delivered_at END,
           next_at = coalesce(?, next_at)
         WHERE event_id = ? AND status = 'pending'`,
      ).run(a.httpStatus, clipError(a.error), a.at, a.ok ? 1 : 0, a.retryAt, a.ok ? 1 : 0, a.at, a.ok ? null : a.retryAt, a.eventId);
    });
  }

  async webhookDeliveries(q: { readonly appId?: number; readonly jobId?: string; readonly limit: number }): Promise<WebhookDelivery[]> {
    const n = Math.max(0, Math.trunc(q.limit));
    const where: string[] = [];
    const args: Array<string | number> = [];
    if (q.appId !== undefined) (where.push('app_id = ?'), args.push(q.appId));
    if (q.jobId !== undefined) (where.push('job_id = ?'), args.push(q.jobId));
    const rows = this.#stmt(
      `SELECT ${DELIVERY_COLS} FROM webhook_deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
    ).all(...args, n) as unknown as DeliveryRow[];
    return rows.map(toDelivery);
  }

  async webhookOutboxDepth(): Promise<number> {
    return (this.#stmt(`SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'pending'`).get() as { n: number }).n;
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
      if (this.#walReset) {
        await this.#walResetDone();
        if (this.#db === null) return removed;
      }
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
    if (this.#walReset) await this.#walResetDone();
    this.#write(() => {
      this.#stmt('DELETE FROM quota_usage WHERE day < ?').run(cutoffDay);
      // Hours that ended by `before` held only pruned tasks.
      this.#stmt('DELETE FROM task_id_ranges WHERE hour < ?').run(Math.floor(before / HOUR_MS));
      this.#stmt('DELETE FROM webhook_deliveries WHERE created_at < ?').run(before);
    });
    await this.#durable();
    return removed;
  }

  // --- internals ---

  #open(): DatabaseSync {
    if (!this.#db) throw new Error('SqliteTaskStore is not started (call start() first) or was closed');
    return this.#db;
  }

  /**
   * Asks the checkpoint thread for a checkpoint. Should it fall behind (a reader holding an old
   * snapshot, a burst of writes), the writer checkpoints itself once the WAL passes
   * WAL_CHECKPOINT_ON_LOOP_BYTES, as SQLite's automatic checkpoint would have: a stall, never an
   * unbounded WAL.
   */
  #afterCommit(db: DatabaseSync): void {
    const checkpointer = this.#checkpointer;
    if (!checkpointer || this.#walFd === null) return;
    const size = fstatSync(this.#walFd).size;
    checkpointer.committed(size);
    if (size > WAL_CHECKPOINT_ON_LOOP_BYTES) db.exec('PRAGMA wal_checkpoint(PASSIVE)');
    // The WAL restarts from its beginning only when the writer starts a transaction while every
    // frame is checkpointed and no reader uses the WAL. Under continuous writes the PASSIVE
    // checkpoints above seldom leave it so (a commit lands while one runs), and the WAL grew to
    // hundreds of MiB. Past the limit, writes are held back (they wait on a promise: the event
    // loop runs on) while the thread's RESTART checkpoint copies the rest and waits for readers;
    // the next COMMIT then writes from the start of the file, and journal_size_limit cuts it back.
    // The WAL's sync order is untouched: a checkpoint fsyncs the WAL before copying it and the
    // database before the WAL is reused, so what an outstanding WAL sync acknowledges is on disk.
    if (size <= this.#walLimitBytes || this.#walReset || performance.now() < this.#walResetRetryAt) return;
    this.#walReset = checkpointer.reset().then((restartable) => {
      this.#walResetRetryAt = restartable ? 0 : performance.now() + WAL_RESET_RETRY_MS;
      this.#walReset = null;
      if (this.#pendingJobs.length > 0) setImmediate(() => this.#commitPendingJobs());
    });
  }

  /** Resolves at once unless a WAL reset holds writes back; then when it is over. Every write path awaits it before #write. */
  async #walResetDone(): Promise<void> {
    while (this.#walReset) await this.#walReset;
  }

  /** Diagnostics and tests: WAL resets done and given up (a long read), see #afterCommit. */
  walResetStats(): { resets: number; busy: number } | null {
    return this.#checkpointer ? { resets: this.#checkpointer.resets, busy: this.#checkpointer.resetsBusy } : null;
  }

  /** Diagnostics and tests: the last off-loop checkpoint's WAL frames and frames copied, failures. */
  checkpointStats(): { last: { log: number; checkpointed: number } | undefined; failures: number } | null {
    return this.#checkpointer ? { last: this.#checkpointer.last, failures: this.#checkpointer.failures } : null;
  }

  #stmt(sql: string): StatementSync {
    return this.#stmts.get(sql);
  }

  /** Runs `fn` in a BEGIN IMMEDIATE transaction (the write lock taken up front, no upgrade deadlock). */
  #write<T>(fn: () => T): T {
    const db = this.#open();
    db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      // What the next WAL sync makes durable, read before the COMMIT: after it, the read is a
      // transaction of its own (a WAL snapshot and its shared-memory locks, once per group commit).
      const seq = this.#meta('last_seq');
      db.exec('COMMIT');
      this.#committedSeq = seq;
      this.#afterCommit(db);
      return out;
    } catch (e) {
      if (db.isTransaction) db.exec('ROLLBACK');
      // A rolled-back transaction's seqs are handed out again.
      this.#committedSeq = this.#meta('last_seq');
      throw e;
    }
  }

  /**
   * Writes the host rows still waiting (writeHostRows), before a read that uses them: every task
   * committed before the read was asked for is then in task_hosts and refresh_records. They are
   * derived from rows already durable, so this commit needs no sync of its own: a crash leaves the
   * backlog (and its mark) as it was, written again by the next commit or read.
   */
  async #writeHostRowsNow(): Promise<void> {
    if (this.#walReset) await this.#walResetDone();
    // Checked before taking the write lock: most reads find nothing waiting.
    const { through, upTo } = hostRowsWaiting((sql) => this.#stmt(sql));
    if (upTo > through) this.#write(() => writeHostRows((sql) => this.#stmt(sql), 0));
  }

  /** #write, resolved once the commit is on disk. */
  async #writeDurable<T>(fn: () => T): Promise<T> {
    if (this.#walReset) await this.#walResetDone();
    const out = this.#write(fn);
    await this.#durable();
    return out;
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

  /** A transaction's bookkeeping before its first job. Caller holds the write transaction. */
  #bookkeeping(): Bookkeeping {
    const seq = this.#meta('last_seq');
    return { startSeq: seq, seq, ranges: new Map() };
  }

  /** Writes what the transaction's jobs added to the log counter and the hour ranges. Caller holds the write transaction. */
  #writeBookkeeping(book: Bookkeeping): void {
    if (book.seq !== book.startSeq) this.#setMeta('last_seq', book.seq);
    for (const [hour, r] of book.ranges) {
      this.#stmt(
        `INSERT INTO task_id_ranges (hour, min_id, max_id) VALUES (?, ?, ?)
         ON CONFLICT (hour) DO UPDATE SET min_id = min(min_id, excluded.min_id), max_id = max(max_id, excluded.max_id)`,
      ).run(hour, r.min, r.max);
    }
  }

  /**
   * Inserts one job with its tasks, their log seqs following `seq` (the last one handed out); returns
   * them and the job's last seq. Caller holds the write transaction, takes the job into its
   * Bookkeeping (takeInto) once the job wrote everything, and after the transaction's jobs writes that
   * (#writeBookkeeping), the trigram index (indexBacklog) and the host rows (writeHostRows).
   */
  #insertJob(job: NewJob, lastSeq: number): { tasks: TaskRecord[]; lastSeq: number } {
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
    // Seqs come from a counter read and written inside this same IMMEDIATE transaction: no other
    // writer can interleave, and a rolled-back job gives its seqs back, so the log has no gaps.
    let seq = lastSeq;
    const out: TaskRecord[] = [];
    const tasks = job.tasks;
    for (let i = 0; i < tasks.length; ) {
      const n = tasks.length - i >= TASK_INSERT_CHUNK ? TASK_INSERT_CHUNK : 1;
      const args: SQLInputValue[] = [];
      const chunk: Array<Omit<TaskRecord, 'id'>> = [];
      for (const end = i + n; i < end; i++) {
        const t = tasks[i]!;
        const hosts = [...new Set(t.hosts)];
        const taskSeq = t.fanOut ? ++seq : null;
        args.push(
          job.jobId, job.appId, job.zoneId, job.type, job.method, t.target, targetHash(t.target), t.logTarget ?? null,
          JSON.stringify(hosts), t.headers ? JSON.stringify(t.headers) : null, t.status, job.createdAt, job.createdAt, taskSeq,
        );
        chunk.push({
          jobId: job.jobId, appId: job.appId, zoneId: job.zoneId, type: job.type, method: job.method, target: t.target, hosts, status: t.status,
          failType: null, failMessage: null, createdAt: job.createdAt, updatedAt: job.createdAt, seq: taskSeq,
        });
      }
      const r = this.#stmt(n === 1 ? INSERT_TASK : INSERT_TASK_CHUNK).run(...args);
      if (Number(r.changes) !== n) throw new Error(`inserted ${Number(r.changes)} of ${n} task rows`);
      // One statement's rows take consecutive ids: each new row's id is one past the largest (AUTOINCREMENT),
      // and this transaction is the only writer.
      const first = Number(r.lastInsertRowid) - n + 1;
      chunk.forEach((task, k) => out.push({ id: first + k, ...task }));
    }
    return { tasks: out, lastSeq: seq };
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
      const ids = pruneBatchJobs(candidates);
      if (ids.length === 0) return { jobs: 0, tasks: 0 };
      const list = JSON.stringify(ids);
      const inJobs = 'SELECT id FROM tasks WHERE job_id IN (SELECT value FROM json_each(?))';
      const maxSeq = this.#stmt(
        'SELECT max(seq) AS s FROM tasks WHERE job_id IN (SELECT value FROM json_each(?))',
      ).get(list) as { s: number | null };
      this.#stmt(`DELETE FROM task_hosts WHERE task_id IN (${inJobs})`).run(list);
      this.#stmt(`DELETE FROM node_reports WHERE task_id IN (${inJobs})`).run(list);
      this.#stmt(`DELETE FROM prefetch_results WHERE task_id IN (${inJobs})`).run(list);
      this.#stmt('DELETE FROM refresh_records WHERE job_id IN (SELECT value FROM json_each(?))').run(list);
      const spans = this.#stmt(
        'SELECT min(id) AS first, max(id) AS last FROM tasks WHERE job_id IN (SELECT value FROM json_each(?)) GROUP BY job_id',
      ).all(list) as unknown as Array<{ first: number; last: number }>;
      const removed = this.#stmt('DELETE FROM tasks WHERE job_id IN (SELECT value FROM json_each(?))').run(list);
      for (const { first, last } of spans) unindexTargets(first, last, (sql) => this.#stmt(sql));
      this.#stmt('DELETE FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))').run(list);
      if (maxSeq.s !== null && maxSeq.s > this.#meta('pruned_through_seq')) {
        this.#setMeta('pruned_through_seq', maxSeq.s);
      }
      return { jobs: ids.length, tasks: Number(removed.changes) };
    });
  }
}
