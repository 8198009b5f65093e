// The PostgreSQL TaskStore (node-postgres): the TaskStore that several control-plane replicas share.
//
// Log order (DESIGN "Scale-out", invariant 2 across replicas). Seqs come from one counter row,
// `store_meta.last_seq`, advanced by `UPDATE … SET value = value + n` inside the transaction that writes
// the entries, as its last statement before COMMIT. The UPDATE takes the row's lock, held until the
// transaction ends, so writers pass through it one at a time: the next writer's UPDATE returns only
// after the previous holder committed (and is visible to every new snapshot: PostgreSQL releases a
// transaction's locks after it leaves the running set) or rolled back (its seqs are given back, as its
// UPDATE is undone). Hence seq order == commit order, and any snapshot sees a prefix of the log: a reader
// that sees seq n sees every seq below it, so `readLog(after)` can never skip an entry that commits later.
// The counter is taken after everything else the transaction locks (quota rows, in key order), so the
// lock order is the same everywhere and writers cannot deadlock. The serialized part is one statement
// (counter, tasks, hosts, log entries, NOTIFY) and the COMMIT; each process batches the jobs submitted
// meanwhile into one transaction (group commit), so the lock is passed once per batch, not per job.
import { createHash, randomInt } from 'node:crypto';
import pg from 'pg';
import type { PoolClient, PoolConfig } from 'pg';
import type { JobRecord, Method, PurgeLogEntry, TaskRecord, TaskType } from '../../purge/types.ts';
import { settleBatch, type JobOutcome, type PendingJob } from '../group-commit.ts';
import { PRUNE_BATCH_JOBS, pruneBatchJobs } from '../prune-batches.ts';
import { isRefreshType, jobRecordId, RANDOM_RECORD_ID_LIMIT } from '../refresh-record-ids.ts';
import { TASK_COLS, toJob, toTask, type JobRow, type TaskRow } from '../store-rows.ts';
import { DuplicateJobIdError, QuotaExceededError } from '../task-store.ts';
import { newEventId } from '../../shared/ids.ts';
import { clipError, DELIVERY_COLS, settledAtCreation, settledEvent, toDelivery, type DeliveryRow, type NewDelivery } from '../webhook-rows.ts';
import type {
  NewJob, NodeAck, NodeProgress, NodeReport, NodeReportInput, NodeReportOutcome, PrefetchResult, PrefetchResultInput, QuotaCharge, RefreshRecord, RefreshRecordQuery, TaskQuery, TaskStore, TaskUpdate,
  WebhookAttempt, WebhookDelivery, WebhookOutbox, WebhookRouter,
} from '../task-store.ts';
import { decodeLogNotice, encodeLogNotice } from './log-notice.ts';
import { migrate, quoteIdent } from './migrations.ts';
import { DAY_MS, dayOf, ensurePartitions, partitionDays, partitionName } from './postgres-partitions.ts';
import { PostgresReplicas } from './postgres-replicas.ts';
import { PostgresTaskReader } from './postgres-task-reader.ts';
import { commit, newPool, NotCommittedError } from './pool.ts';

/** One node's progress: never moves backwards. */
const PROGRESS_SQL = `INSERT INTO node_progress (node_id, acked_seq, seen_at) VALUES ($1, $2, $3)
  ON CONFLICT (node_id) DO UPDATE SET acked_seq = greatest(node_progress.acked_seq, excluded.acked_seq),
                                      seen_at = greatest(node_progress.seen_at, excluded.seen_at)`;

export interface PostgresPoolOptions {
  /** Connections at most (default 10). Each replica has its own pool; mind the server's max_connections. */
  readonly max?: number;
  /** An idle connection is closed after this long (ms, default 30000). */
  readonly idleTimeoutMs?: number;
  /** Waiting for a connection (new or from the pool) fails after this long (ms, default 10000). */
  readonly connectionTimeoutMs?: number;
}

export interface PostgresTaskStoreOptions {
  /** `postgres://user:password@host:port/database` (any libpq-style URL node-postgres accepts). */
  readonly url: string;
  /** Schema holding the tables (created if missing; default `public`). One schema, one EdgePurge store. */
  readonly schema?: string;
  readonly pool?: PostgresPoolOptions;
}


/** A batch never holds more jobs than this (bounds the statement sizes). */
const MAX_BATCH_JOBS = 500;
/** Whole-transaction retries on a serialization failure, deadlock or a duplicate id that raced in. */
const MAX_ATTEMPTS = 5;
const PRUNE_BATCH_LOG = 10_000;
/** Pruning waits at most this long for the table locks a partition drop needs, then tries again later. */
const DROP_LOCK_TIMEOUT = '500ms';

/** Raised inside a batch transaction to roll it back and run it again. */
class RetryBatch extends Error {}

/** int8 (counts, ids, seqs, ms) as JS numbers: every value the store keeps is below 2^53. */
const INT8_OID = 20;
const pgTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

/** PostgreSQL error codes the store reacts to. */
const PG = { serializationFailure: '40001', deadlock: '40P01', noPartition: '23514' } as const;
const pgCode = (e: unknown): string | undefined => (e as { code?: string } | null)?.code;

interface LogRow {
  seq: number;
  task_id: number;
  job_id: string;
  app_id: number;
  type: string;
  method: string;
  hosts: string[];
  target: string;
  headers: Record<string, string> | null;
  created_at: number;
}

export class PostgresTaskStore implements TaskStore, WebhookOutbox {
  readonly #o: PostgresTaskStoreOptions;
  readonly #schema: string;
  /** NOTIFY channel of this schema's log (a hash: channel names are capped at 63 bytes): the last seq of each commit. */
  readonly #channel: string;
  /** The same, with the commit's entries when they fit (log-notice.ts); sent first. */
  readonly #entriesChannel: string;
  #pool: pg.Pool | null = null;
  #reader: PostgresTaskReader | null = null;
  #starting: Promise<void> | null = null;
  #pending: PendingJob[] = [];
  #flushing: Promise<void> | null = null;
  /** Days whose partitions are known to exist. */
  readonly #days = new Set<number>();
  readonly #appendListeners = new Set<(lastSeq: number, entries?: readonly PurgeLogEntry[]) => void>();
  /** Highest seq announced to the listeners. */
  #announced = 0;
  /** Settles when the batch being committed has been announced (null: none is). */
  #committing: Promise<void> | null = null;
  #listener: pg.Client | null = null;
  #listenerRetry: NodeJS.Timeout | undefined;
  #replicas: PostgresReplicas | null = null;
  #closed = false;

  constructor(options: PostgresTaskStoreOptions) {
    this.#o = options;
    this.#schema = options.schema ?? 'public';
    this.#channel = `edgepurge_log_${createHash('sha256').update(this.#schema).digest('hex').slice(0, 16)}`;
    this.#entriesChannel = `${this.#channel}_e`;
  }

  /** The schema holding this store's tables. */
  get schema(): string {
    return this.#schema;
  }

  /** node-postgres settings of this store's connections: the schema first on the search path. */
  #poolConfig(): PoolConfig {
    const p = this.#o.pool ?? {};
    return {
      connectionString: this.#o.url,
      max: p.max ?? 10,
      idleTimeoutMillis: p.idleTimeoutMs ?? 30_000,
      connectionTimeoutMillis: p.connectionTimeoutMs ?? 10_000,
      // public stays on the path: pg_trgm's operators live there when the extension was created before.
      // Generic plans for prepared statements: see `prepared` in postgres-task-reader.ts.
      // No JIT: it compiles a plan whose estimate passes jit_above_cost before running it, 100–300 ms for a
      // statement that runs in a few (a fuzzy window over a month of day partitions: 260 ms of JIT, 6 ms of work).
      options: `-c search_path=${quoteIdent(this.#schema)},public -c plan_cache_mode=force_generic_plan -c jit=off`,
      types: pgTypes,
      application_name: 'edgepurge',
    };
  }

  async start(): Promise<void> {
    if (this.#closed) throw new Error('PostgresTaskStore was closed; make a new one');
    this.#starting ??= this.#start().catch(async (e: unknown) => {
      this.#starting = null;
      const pool = this.#pool;
      this.#pool = null;
      await pool?.end();
      throw e;
    });
    return this.#starting;
  }

  async #start(): Promise<void> {
    // Migrated on a connection of its own, before the pool opens any: every pooled session then begins
    // after the schema exists, and resolves its tables there (see migrate).
    const migrator = new pg.Client(this.#poolConfig());
    migrator.on('error', () => {});
    await migrator.connect();
    try {
      await migrate(migrator, this.#schema);
    } finally {
      // Ending the session also ends its migration lock, should a failure have left it held.
      await migrator.end().catch(() => {});
    }
    // A connection that the server drops must not crash the process: the pool replaces it.
    const pool = newPool(this.#poolConfig());
    this.#pool = pool;
    for (const d of await partitionDays(pool)) this.#days.add(d);
    this.#reader = new PostgresTaskReader(pool);
    this.#announced = await this.lastSeq();
    if (this.#appendListeners.size > 0) await this.#listen();
  }

  /** Leader election, the shared rate limit and replay guard of the replicas on this schema. */
  replicas(): PostgresReplicas {
    return (this.#replicas ??= new PostgresReplicas(this.#poolConfig(), this.#schema));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Leadership first: another replica takes the duties while this one drains.
    await this.#replicas?.close();
    // Jobs already handed to createJob are committed (and answered) before the pool closes.
    await this.#starting?.catch(() => {});
    while (this.#flushing) await this.#flushing;
    clearTimeout(this.#listenerRetry);
    const listener = this.#listener;
    this.#listener = null;
    await listener?.end().catch(() => {});
    const pool = this.#pool;
    this.#pool = null;
    this.#reader = null;
    await pool?.end();
  }

  // --- createJob: group commit ---

  createJob(job: NewJob, charge: QuotaCharge, webhooks?: WebhookRouter): Promise<{ tasks: TaskRecord[] }> {
    return new Promise((resolve, reject) => {
      if (!this.#pool || this.#closed) {
        reject(new Error('PostgresTaskStore is not started (call start() first) or was closed'));
        return;
      }
      this.#pending.push({ job, charge, webhooks, resolve, reject });
      // Jobs submitted while a batch commits form the next batch.
      this.#flushing ??= new Promise<void>((r) => setImmediate(r)).then(() => this.#flush());
    });
  }

  async #flush(): Promise<void> {
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending.splice(0, MAX_BATCH_JOBS);
        await this.#commitBatch(batch);
      }
    } finally {
      this.#flushing = null;
    }
  }

  async #commitBatch(batch: readonly PendingJob[]): Promise<void> {
    const log: PurgeLogEntry[] = [];
    let done!: () => void;
    this.#committing = new Promise<void>((r) => (done = r));
    try {
      // A batch not committed (or not known to be) is refused whole: nothing of it is acknowledged.
      const outcomes = await settleBatch(batch, () => this.#runBatch(batch, log));
      const last = outcomes.reduce((m, o) => (o.ok ? Math.max(m, ...o.tasks.map((t) => t.seq ?? 0)) : m), 0);
      // This process's streams take the committed entries as they are, without reading them back.
      if (last > 0) this.#announce(last, log.at(-1)?.seq === last ? log : undefined);
    } finally {
      this.#committing = null;
      done();
    }
  }

  /** `log` receives the log entries of the attempt that committed. */
  async #runBatch(batch: readonly PendingJob[], log: PurgeLogEntry[]): Promise<JobOutcome[]> {
    for (let attempt = 1; ; attempt++) {
      const days = batch.map((p) => dayOf(p.job.createdAt)).filter((d) => !this.#days.has(d));
      if (days.length > 0) await this.#ensureDays(days);
      const client = await this.#open().connect();
      let broken = false;
      try {
        await client.query('BEGIN');
        try {
          log.length = 0;
          const outcomes = await this.#writeBatch(client, batch, log);
          await commit(client);
          return outcomes;
        } catch (e) {
          await client.query('ROLLBACK').catch(() => (broken = true));
          throw e;
        }
      } catch (e) {
        const code = pgCode(e);
        if (code === PG.noPartition) this.#days.clear(); // another replica pruned a day this one still knew
        const retry = e instanceof RetryBatch || e instanceof NotCommittedError || code === PG.serializationFailure || code === PG.deadlock || code === PG.noPartition;
        if (!retry || attempt >= MAX_ATTEMPTS) throw e;
      } finally {
        client.release(broken);
      }
    }
  }

  async #ensureDays(days: readonly number[]): Promise<void> {
    // A day ahead too, so that midnight does not wait for DDL.
    const wanted = [...new Set(days.flatMap((d) => [d, d + 1]))];
    await ensurePartitions(this.#open(), this.#schema, wanted);
    for (const d of wanted) this.#days.add(d);
  }

  /**
   * The batch's statements, inside its transaction. Quota rows are locked first, all in one statement
   * in key order; the log counter last (see "Log order" at the top of this file).
   */
  async #writeBatch(client: PoolClient, batch: readonly PendingJob[], log: PurgeLogEntry[]): Promise<JobOutcome[]> {
    // 1. Lock (creating when missing) every quota row the batch charges, in key order.
    const keyOf = (appId: number, type: string, day: string): string => JSON.stringify([appId, type, day]);
    const keys = [...new Map(batch.map(({ job, charge }) => [keyOf(job.appId, charge.quotaType, charge.day), { appId: job.appId, type: charge.quotaType, day: charge.day }])).values()];
    const locked = await client.query<{ app_id: number; quota_type: string; day: string; used: number }>(
      `INSERT INTO quota_usage (app_id, quota_type, day, used)
       SELECT a, t, d, 0 FROM unnest($1::bigint[], $2::text[], $3::text[]) AS k(a, t, d) ORDER BY a, t, d
       ON CONFLICT (app_id, quota_type, day) DO UPDATE SET used = quota_usage.used
       RETURNING app_id, quota_type, day, used`,
      [keys.map((k) => k.appId), keys.map((k) => k.type), keys.map((k) => k.day)],
    );
    const used = new Map(locked.rows.map((r) => [keyOf(r.app_id, r.quota_type, r.day), r.used]));

    // 2. Admission, in submission order: duplicates, then quota (as SQLite: a refused job charges nothing).
    const taken = new Set(
      (await client.query<{ job_id: string }>('SELECT job_id FROM jobs WHERE job_id = ANY($1::text[])', [batch.map((p) => p.job.jobId)])).rows.map(
        (r) => r.job_id,
      ),
    );
    const outcomes: Array<JobOutcome | null> = [];
    const admitted: PendingJob[] = [];
    for (const p of batch) {
      const key = keyOf(p.job.appId, p.charge.quotaType, p.charge.day);
      const u = used.get(key) ?? 0;
      if (taken.has(p.job.jobId)) outcomes.push({ ok: false, error: new DuplicateJobIdError() });
      else if (u + p.charge.amount > p.charge.daily) outcomes.push({ ok: false, error: new QuotaExceededError(u) });
      else {
        taken.add(p.job.jobId);
        used.set(key, u + p.charge.amount);
        admitted.push(p);
        outcomes.push(null);
      }
    }
    if (admitted.length === 0) return outcomes as JobOutcome[];

    // 3. Jobs, quota, refresh records, task ids: nothing here is ordered across writers.
    const inserted = await client.query(
      `INSERT INTO jobs (job_id, app_id, zone_id, type, method, created_at, secret_id, client_ip, source, task_count)
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(job_id text, app_id bigint, zone_id text, type text, method text,
         created_at bigint, secret_id text, client_ip text, source text, task_count integer)
       ON CONFLICT (job_id) DO NOTHING`,
      [JSON.stringify(admitted.map(({ job: j }) => ({
        job_id: j.jobId, app_id: j.appId, zone_id: j.zoneId, type: j.type, method: j.method, created_at: j.createdAt,
        secret_id: j.secretId, client_ip: j.clientIp, source: j.source, task_count: j.tasks.length,
      })))],
    );
    // A job with the same id committed since the check above: start over (the check then refuses it).
    if (inserted.rowCount !== admitted.length) throw new RetryBatch('a job id was taken concurrently');
    const charged = new Map<string, { appId: number; type: string; day: string; amount: number }>();
    for (const { job, charge } of admitted) {
      const key = keyOf(job.appId, charge.quotaType, charge.day);
      const c = charged.get(key) ?? { appId: job.appId, type: charge.quotaType, day: charge.day, amount: 0 };
      c.amount += charge.amount;
      charged.set(key, c);
    }
    const charges = [...charged.values()];
    const after = await client.query<{ app_id: number; quota_type: string; day: string; used: number }>(
      `UPDATE quota_usage q SET used = q.used + d.amount
       FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) AS d(a, t, day, amount)
       WHERE q.app_id = d.a AND q.quota_type = d.t AND q.day = d.day
       RETURNING q.app_id, q.quota_type, q.day, q.used`,
      [charges.map((c) => c.appId), charges.map((c) => c.type), charges.map((c) => c.day), charges.map((c) => c.amount)],
    );
    // The rows are locked since step 1, so each must now hold exactly what admission counted. Checked all
    // the same (CI once saw a daily quota over-admitted by one replica's whole batch, not reproduced since):
    // a count that moved under the lock is never committed; the batch starts over and counts again.
    const moved = after.rows.filter((r) => r.used !== used.get(keyOf(r.app_id, r.quota_type, r.day)));
    if (moved.length > 0 || after.rows.length !== charges.length) {
      const r = moved[0];
      throw new RetryBatch(
        r ? `quota ${r.quota_type} of app ${r.app_id} on ${r.day} is ${r.used} after the charge, admission counted ${used.get(keyOf(r.app_id, r.quota_type, r.day))}` : 'a charged quota row is missing',
      );
    }
    const taskCount = admitted.reduce((n, p) => n + p.job.tasks.length, 0);
    const ids = (await client.query<{ id: number }>("SELECT nextval('tasks_id_seq') AS id FROM generate_series(1, $1::int)", [taskCount])).rows
      .map((r) => r.id)
      .sort((a, b) => a - b);

    // Records and rows, computed here; seqs are counted from the base the counter hands out below.
    let nextId = 0;
    let fanned = 0;
    const rows: Array<Record<string, unknown>> = [];
    const made: Array<{ tasks: Array<Omit<TaskRecord, 'seq'> & { fan: number | null }> }> = [];
    const records: Array<Record<string, unknown>> = [];
    for (const { job } of admitted) {
      const tasks = job.tasks.map((t) => {
        const hosts = [...new Set(t.hosts)];
        const fan = t.fanOut ? ++fanned : null;
        const id = ids[nextId++]!;
        rows.push({
          id, job_id: job.jobId, app_id: job.appId, zone_id: job.zoneId, type: job.type, method: job.method, target: t.target,
          log_target: t.logTarget ?? t.target, hosts, headers: t.headers ?? null, status: t.status, created_at: job.createdAt, fan,
        });
        return {
          id, jobId: job.jobId, appId: job.appId, zoneId: job.zoneId, type: job.type, method: job.method, target: t.target, hosts,
          status: t.status, failType: null, failMessage: null, createdAt: job.createdAt, updatedAt: job.createdAt, fan,
        };
      });
      made.push({ tasks });
      if (isRefreshType(job.type)) {
        [...new Set(tasks.flatMap((t) => t.hosts))].forEach((host, ord) => {
          records.push({
            job_id: job.jobId, host, ord, record_id: (ord === 0 ? jobRecordId(job.jobId) : null) ?? randomInt(1, RANDOM_RECORD_ID_LIMIT),
            app_id: job.appId, created_at: job.createdAt, type: job.type, job_tasks: tasks.length,
          });
        });
      }
    }
    await this.#insertRefreshRecords(client, records);
    await this.#insertDeliveries(client, admitted.flatMap((p) => settledAtCreation(p.job, p.webhooks)));

    // The log entries, in seq order (fan 1, 2, …): carried by the NOTIFY when they fit, announced here after COMMIT.
    const entries = rows.flatMap((r): Array<Omit<PurgeLogEntry, 'seq'> & { fan: number }> => {
      if (r.fan === null) return [];
      const e = {
        fan: r.fan as number, taskId: r.id as number, jobId: r.job_id as string, appId: r.app_id as number, type: r.type as TaskType, method: r.method as Method,
        hosts: r.hosts as string[], target: r.log_target as string, createdAt: r.created_at as number,
      };
      return r.headers === null ? [e] : [{ ...e, headers: r.headers as Record<string, string> }];
    });

    // 4. The serialized part: counter, tasks, hosts, log entries and the NOTIFYs, in one statement.
    const counted = (
      await client.query<{ base: number }>(
        `WITH c AS (
           UPDATE store_meta SET value = value + $2::bigint WHERE key = 'last_seq' AND $2::bigint > 0 RETURNING value - $2::bigint AS base
         ), x AS (
           SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, job_id text, app_id bigint, zone_id text, type text, method text,
             target text, log_target text, hosts text[], headers jsonb, status text, created_at bigint, fan bigint)
         ), t AS (
           INSERT INTO tasks (id, job_id, app_id, zone_id, type, method, target, hosts, status, created_at, updated_at, seq)
           SELECT x.id, x.job_id, x.app_id, x.zone_id, x.type, x.method, x.target, x.hosts, x.status, x.created_at, x.created_at,
                  (SELECT c.base FROM c) + x.fan
           FROM x
         ), h AS (
           INSERT INTO task_hosts (task_id, host, app_id, created_at, status, type, zone_id)
           SELECT x.id, h.host, x.app_id, x.created_at, x.status, x.type, x.zone_id FROM x CROSS JOIN unnest(x.hosts) AS h(host)
         ), l AS (
           INSERT INTO purge_log (seq, task_id, job_id, app_id, type, method, hosts, target, headers, created_at)
           SELECT c.base + x.fan, x.id, x.job_id, x.app_id, x.type, x.method, x.hosts, x.log_target, x.headers, x.created_at
           FROM x CROSS JOIN c WHERE x.fan IS NOT NULL
         )
         SELECT c.base, CASE WHEN $5::text IS NOT NULL THEN pg_notify($4, (c.base + $2::bigint)::text || $5::text) END AS e,
                pg_notify($3, (c.base + $2::bigint)::text) FROM c`,
        [JSON.stringify(rows), fanned, this.#channel, this.#entriesChannel, encodeLogNotice(entries)],
      )
    ).rows[0];
    // With entries to number, the counter's UPDATE must have returned its row: without it the tasks' seqs
    // and log rows were never written, and seqs counted from 0 would repeat ones already handed out (CI
    // once acknowledged every seq of a whole batch a second time). Never acknowledged: start over.
    if (fanned > 0 && counted === undefined) throw new RetryBatch('the log counter returned no row');
    const base = counted?.base ?? 0;
    for (const { fan, ...e } of entries) log.push({ ...e, seq: base + fan });

    let k = 0;
    return outcomes.map((o) => {
      if (o !== null) return o;
      const tasks = made[k++]!.tasks.map(({ fan, ...t }) => ({ ...t, seq: fan === null ? null : base + fan }));
      return { ok: true, tasks };
    });
  }

  /** Inserts refresh records, drawing a new random id for any that clashes with an existing one. */
  async #insertRefreshRecords(client: PoolClient, records: Array<Record<string, unknown>>): Promise<void> {
    let todo = records;
    while (todo.length > 0) {
      const { rows } = await client.query<{ job_id: string; host: string }>(
        `INSERT INTO refresh_records (job_id, host, ord, record_id, app_id, created_at, type, job_tasks)
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(job_id text, host text, ord integer, record_id bigint, app_id bigint,
           created_at bigint, type text, job_tasks integer)
         ON CONFLICT (record_id) DO NOTHING RETURNING job_id, host`,
        [JSON.stringify(todo)],
      );
      const done = new Set(rows.map((r) => JSON.stringify([r.job_id, r.host])));
      todo = todo
        .filter((r) => !done.has(JSON.stringify([r.job_id, r.host])))
        .map((r) => ({ ...r, record_id: randomInt(1, RANDOM_RECORD_ID_LIMIT) }));
    }
  }

  // --- LISTEN/NOTIFY ---

  onAppend(listener: (lastSeq: number, entries?: readonly PurgeLogEntry[]) => void): () => void {
    this.#appendListeners.add(listener);
    if (this.#pool && !this.#listener && !this.#closed) void this.#listen().catch(() => this.#relisten());
    return () => void this.#appendListeners.delete(listener);
  }

  /** Calls the listeners when `lastSeq` is news (local commits announce at once, their NOTIFY comes after). */
  #announce(lastSeq: number, entries?: readonly PurgeLogEntry[]): void {
    if (lastSeq <= this.#announced) return;
    this.#announced = lastSeq;
    for (const l of [...this.#appendListeners]) l(lastSeq, entries);
  }

  /** One connection that LISTENs to the log's channel; on loss it reconnects and announces what it missed. */
  async #listen(): Promise<void> {
    if (this.#listener || this.#closed) return;
    const client = new pg.Client({ ...this.#poolConfig(), types: pgTypes });
    this.#listener = client;
    client.on('notification', (n) => {
      // A commit's entries come first, then its plain seq (announced already, then, unless the entries did not decode).
      const notice = n.channel === this.#entriesChannel ? decodeLogNotice(n.payload ?? '') : undefined;
      if (notice) return this.#announce(notice.lastSeq, notice.entries);
      const seq = Number(n.payload);
      if (n.channel !== this.#channel || !Number.isSafeInteger(seq)) return;
      // The echo of this process's own commit can arrive before the commit's answer: the batch in flight
      // announces first, with its entries (else the streams would read back what they were about to be given).
      if (this.#committing) void this.#committing.then(() => this.#announce(seq));
      else this.#announce(seq);
    });
    client.on('error', () => this.#relisten());
    client.on('end', () => this.#relisten());
    await client.connect();
    // Entries committed while no one listened, read on this connection in the same round trip: a commit's
    // notification then comes after this answer, not before it.
    const results = (await client.query(
      `LISTEN ${quoteIdent(this.#entriesChannel)}; LISTEN ${quoteIdent(this.#channel)}; SELECT value FROM store_meta WHERE key = 'last_seq'`,
    )) as unknown as Array<pg.QueryResult<{ value: number }>>;
    this.#announce(results.at(-1)?.rows[0]?.value ?? 0);
  }

  #relisten(): void {
    const old = this.#listener;
    this.#listener = null;
    old?.removeAllListeners('end');
    void old?.end().catch(() => {});
    if (this.#closed || this.#listenerRetry) return;
    this.#listenerRetry = setTimeout(() => {
      this.#listenerRetry = undefined;
      void this.#listen().catch(() => this.#relisten());
    }, 500);
    this.#listenerRetry.unref();
  }

  // --- reads ---

  async getJob(appId: number, jobId: string): Promise<JobRecord | null> {
    const { rows } = await this.#open().query<JobRow>('SELECT * FROM jobs WHERE job_id = $1 AND app_id = $2', [jobId, appId]);
    return rows[0] ? toJob(rows[0]) : null;
  }

  async jobTasks(appId: number, jobId: string): Promise<TaskRecord[]> {
    return this.#read().jobTasks(appId, jobId);
  }

  async listTasks(q: TaskQuery): Promise<{ total: number; tasks: TaskRecord[] }> {
    return this.#read().listTasks(q);
  }

  /** Samples the stored targets now for the fuzzy index's trigram choice (fuzzy queries do it in the background every 15 min). */
  async refreshTargetSample(): Promise<void> {
    await this.#read().refreshTargetSample();
  }

  async listRefreshRecords(q: RefreshRecordQuery): Promise<{ total: number; records: RefreshRecord[] }> {
    return this.#read().listRefreshRecords(q);
  }

  /**
   * Diagnostics and tests: PostgreSQL's plan (EXPLAIN lines) of the statement listTasks would run.
   * `forbidSeqScan` shows the index a query would use once the tables are big (on a small one a
   * sequential scan is cheapest).
   */
  async explainListTasks(q: TaskQuery, options: { forbidSeqScan?: boolean } = {}): Promise<string[]> {
    return this.#read().explainListTasks(q, options);
  }

  async quotaUsage(appId: number, day: string): Promise<ReadonlyMap<TaskType, number>> {
    const { rows } = await this.#open().query<{ quota_type: string; used: number }>(
      'SELECT quota_type, used FROM quota_usage WHERE app_id = $1 AND day = $2 AND used > 0',
      [appId, day],
    );
    return new Map(rows.map((r) => [r.quota_type as TaskType, r.used]));
  }

  async readLog(afterSeq: number, limit: number): Promise<PurgeLogEntry[]> {
    const n = Math.max(0, Math.trunc(limit));
    if (n === 0) return [];
    const { rows } = await this.#open().query<LogRow>(
      `SELECT seq, task_id, job_id, app_id, type, method, hosts, target, headers, created_at
       FROM purge_log WHERE seq > $1 ORDER BY seq LIMIT $2`,
      [afterSeq, n],
    );
    return rows.map((r) => {
      const entry: PurgeLogEntry = {
        seq: r.seq, taskId: r.task_id, jobId: r.job_id, appId: r.app_id, type: r.type as TaskType, method: r.method as Method,
        hosts: r.hosts, target: r.target, createdAt: r.created_at,
      };
      return r.headers === null ? entry : { ...entry, headers: r.headers };
    });
  }

  async lastSeq(): Promise<number> {
    const { rows } = await this.#open().query<{ value: number }>("SELECT value FROM store_meta WHERE key = 'last_seq'");
    return rows[0]?.value ?? 0;
  }

  async firstSeq(): Promise<number> {
    // Entries at or below pruned_through_seq are not part of the retained log, even if one survived (a
    // job stamped earlier but committed later): a node that missed a pruned entry must see it fell behind.
    const { rows } = await this.#open().query<{ first: number }>(
      `SELECT coalesce((SELECT min(seq) FROM purge_log WHERE seq > p.value), l.value + 1) AS first
       FROM store_meta p, store_meta l WHERE p.key = 'pruned_through_seq' AND l.key = 'last_seq'`,
    );
    return rows[0]?.first ?? 1;
  }

  // --- node progress and statuses ---

  async ackNode(nodeId: string, seq: number, at: number, reports: readonly NodeReportInput[] = []): Promise<NodeReportOutcome[]> {
    if (reports.length === 0) {
      await this.#open().query(PROGRESS_SQL, [nodeId, seq, at]);
      return [];
    }
    // The ack and its reports in one transaction, as on SQLite.
    return this.#inTransaction((client) => this.#ackReports(client, nodeId, at, reports, () => client.query(PROGRESS_SQL, [nodeId, seq, at])));
  }

  async ackNodes(acks: readonly NodeAck[], settled: readonly TaskUpdate[], settledAt: number, webhooks?: WebhookRouter): Promise<NodeReportOutcome[][]> {
    if (acks.length === 0 && settled.length === 0) return [];
    return this.#inTransaction(async (client) => {
      // Every node's progress in one statement (the highest seq and seenAt per node of the batch).
      const top = new Map<string, { seq: number; at: number }>();
      for (const a of acks) {
        const t = top.get(a.nodeId);
        top.set(a.nodeId, { seq: Math.max(t?.seq ?? 0, a.seq), at: Math.max(t?.at ?? 0, a.at) });
      }
      if (top.size) {
        const ids = [...top.keys()].sort(); // one lock order for every batch: no deadlock between replicas
        await client.query(
          `INSERT INTO node_progress (node_id, acked_seq, seen_at)
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
           ON CONFLICT (node_id) DO UPDATE SET acked_seq = greatest(node_progress.acked_seq, excluded.acked_seq),
                                               seen_at = greatest(node_progress.seen_at, excluded.seen_at)`,
          [ids, ids.map((id) => top.get(id)!.seq), ids.map((id) => top.get(id)!.at)],
        );
      }
      const outcomes: NodeReportOutcome[][] = [];
      for (const a of acks) {
        const o = a.reports?.length ? await this.#ackReports(client, a.nodeId, a.at, a.reports, async () => {}) : [];
        outcomes.push(a.results?.length ? [...o, ...(await this.#recordResults(client, a.nodeId, a.at, a.results))] : o);
      }
      await this.#updateTasks(client, settled, settledAt, webhooks);
      return outcomes;
    });
  }

  /** Runs `fn` in one transaction on one pooled connection; rolls back when it throws. */
  async #inTransaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#open().connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await commit(client);
      return out;
    } catch (e) {
      // A client whose transaction could not be ended must not go back to the pool (the next user's BEGIN would fail).
      await client.query('ROLLBACK').catch(() => (broken = true));
      throw e;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Records one node's reports after `progress` (its ack's progress write, or nothing when the batch wrote
   * it): a report lands only on the task that holds its seq, so none outlives its task or names a seq it
   * never had. Inside the caller's transaction.
   */
  async #ackReports(client: PoolClient, nodeId: string, at: number, reports: readonly NodeReportInput[], progress: () => Promise<unknown>): Promise<NodeReportOutcome[]> {
    await progress();
    const outcomes: NodeReportOutcome[] = [];
    for (const r of reports) {
      const done = await client.query(
        `INSERT INTO node_reports (task_id, node_id, seq, driver, executed_as, matched, note, applied_at, job_id, app_id, created_at)
         SELECT id, $1, seq, $2, $3, $4, $5, $6, job_id, app_id, created_at FROM tasks WHERE id = $7 AND seq = $8
         ON CONFLICT (task_id, node_id) DO NOTHING`,
        [nodeId, r.driver, r.executedAs, r.matched, r.note, at, r.taskId, r.seq],
      );
      if ((done.rowCount ?? 0) > 0) outcomes.push('recorded');
      else outcomes.push((await client.query('SELECT 1 FROM tasks WHERE id = $1 AND seq = $2', [r.taskId, r.seq])).rowCount ? 'duplicate' : 'unknown');
    }
    return outcomes;
  }

  /** One ack's prefetch results (see NodeAck.results), inside the caller's transaction. */
  async #recordResults(client: PoolClient, nodeId: string, at: number, results: readonly PrefetchResultInput[]): Promise<NodeReportOutcome[]> {
    const outcomes: NodeReportOutcome[] = [];
    for (const r of results) {
      const done = await client.query(
        `INSERT INTO prefetch_results (task_id, node_id, ok, fail_type, fail_message, at, created_at)
         SELECT id, $1, $2, $3, $4, $5, created_at FROM tasks WHERE id = $6 AND type = 'prefetch_url'
         ON CONFLICT (task_id, node_id) DO NOTHING`,
        [nodeId, r.ok, r.failType, r.failMessage, at, r.taskId],
      );
      if ((done.rowCount ?? 0) > 0) outcomes.push('recorded');
      else outcomes.push((await client.query(`SELECT 1 FROM tasks WHERE id = $1 AND type = 'prefetch_url'`, [r.taskId])).rowCount ? 'duplicate' : 'unknown');
    }
    return outcomes;
  }

  async prefetchResults(taskIds: readonly number[]): Promise<PrefetchResult[]> {
    if (taskIds.length === 0) return [];
    const { rows } = await this.#open().query<{ task_id: string; node_id: string; ok: boolean; fail_type: string | null; fail_message: string | null; at: string }>(
      `SELECT task_id, node_id, ok, fail_type, fail_message, at FROM prefetch_results
       WHERE task_id = ANY($1::bigint[]) ORDER BY task_id, at, node_id`,
      [taskIds],
    );
    return rows.map((r) => ({ nodeId: r.node_id, taskId: Number(r.task_id), ok: r.ok, failType: r.fail_type, failMessage: r.fail_message, at: Number(r.at) }));
  }

  async jobNodeReports(appId: number, jobId: string): Promise<NodeReport[]> {
    const { rows } = await this.#open().query<{
      task_id: string; node_id: string; seq: string; driver: string | null; executed_as: string; matched: string | null; note: string | null; applied_at: string;
    }>(
      `SELECT task_id, node_id, seq, driver, executed_as, matched, note, applied_at FROM node_reports
       WHERE job_id = $1 AND app_id = $2 ORDER BY task_id, node_id`,
      [jobId, appId],
    );
    return rows.map((r) => ({
      nodeId: r.node_id, taskId: Number(r.task_id), seq: Number(r.seq), driver: r.driver, executedAs: r.executed_as as NodeReport['executedAs'],
      matched: r.matched === null ? null : Number(r.matched), note: r.note, appliedAt: Number(r.applied_at),
    }));
  }

  async nodeProgress(): Promise<NodeProgress[]> {
    const { rows } = await this.#open().query<{ node_id: string; acked_seq: number; seen_at: number }>(
      'SELECT node_id, acked_seq, seen_at FROM node_progress ORDER BY node_id',
    );
    return rows.map((r) => ({ nodeId: r.node_id, ackedSeq: r.acked_seq, seenAt: r.seen_at }));
  }

  async updateTasks(updates: readonly TaskUpdate[], at: number, webhooks?: WebhookRouter): Promise<void> {
    // Without webhooks one statement is its own transaction; with them, the jobs are locked first (below).
    if (!webhooks) await this.#updateTasks(this.#open(), updates, at, undefined);
    else await this.#inTransaction((client) => this.#updateTasks(client, updates, at, webhooks));
  }

  /** Settles processing tasks (see updateTasks); with `webhooks`, `db` must be a client inside a transaction. */
  async #updateTasks(db: Pick<PoolClient, 'query'>, updates: readonly TaskUpdate[], at: number, webhooks: WebhookRouter | undefined): Promise<void> {
    // The first update of a task wins (it is final; later ones would be ignored anyway).
    const first = [...new Map([...updates].reverse().map((u) => [u.taskId, u])).values()];
    if (first.length === 0) return;
    const doc = JSON.stringify(first.map((u) => ({
      task_id: u.taskId, status: u.status,
      set_ft: u.failType !== undefined, ft: u.failType ?? null, set_fm: u.failMessage !== undefined, fm: u.failMessage ?? null,
    })));
    const ids = first.map((u) => u.taskId);
    // tasks.id = ANY(...) lets every day partition answer from its id index.
    const update =
      `WITH u AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS u(task_id bigint, status text, set_ft boolean, ft text, set_fm boolean, fm text)
       ), t AS (
         UPDATE tasks t SET status = u.status,
                            fail_type = CASE WHEN u.set_ft THEN u.ft ELSE t.fail_type END,
                            fail_message = CASE WHEN u.set_fm THEN u.fm ELSE t.fail_message END,
                            updated_at = $2
         FROM u WHERE t.id = u.task_id AND t.id = ANY($3::bigint[]) AND t.status = 'processing'
         RETURNING t.id, t.created_at, t.status, t.job_id
       ), h AS (
         UPDATE task_hosts h SET status = t.status FROM t
         WHERE h.task_id = t.id AND h.created_at = t.created_at AND h.task_id = ANY($3::bigint[])
         RETURNING 1
       )
       SELECT DISTINCT job_id FROM t`;
    if (!webhooks) {
      await db.query(update, [doc, at, ids]);
      return;
    }
    // Replicas settling tasks of one job at once: each locks the jobs first (in one order, so no
    // deadlock), so the count below, a new snapshot taken under the lock, sees the other's committed
    // settles; whichever settles the last task enqueues, and ON CONFLICT keeps it to one row anyway.
    await db.query(
      `SELECT job_id FROM jobs WHERE job_id IN (SELECT job_id FROM tasks WHERE id = ANY($1::bigint[])) ORDER BY job_id FOR UPDATE`,
      [ids],
    );
    const { rows: changed } = await db.query<{ job_id: string }>(update, [doc, at, ids]);
    if (changed.length === 0) return;
    const { rows: jobs } = await db.query<{ job_id: string; app_id: string; p: string; f: string; t: string }>(
      `SELECT job_id, app_id, count(*) FILTER (WHERE status = 'processing') AS p, count(*) FILTER (WHERE status = 'failed') AS f,
              count(*) FILTER (WHERE status = 'timeout') AS t
       FROM tasks WHERE job_id = ANY($1::text[]) GROUP BY job_id, app_id`,
      [changed.map((r) => r.job_id)],
    );
    const rows: NewDelivery[] = [];
    for (const j of jobs) {
      if (Number(j.p) > 0) continue;
      const event = settledEvent({ failed: Number(j.f), timeout: Number(j.t) });
      for (const url of webhooks({ appId: Number(j.app_id), jobId: j.job_id, event })) rows.push([newEventId(), Number(j.app_id), j.job_id, url, event, at]);
    }
    await this.#insertDeliveries(db, rows);
  }

  /** Pending outbox rows, due at once, in the caller's transaction; a second one for the same (job, URL) is dropped. */
  async #insertDeliveries(db: Pick<PoolClient, 'query'>, rows: readonly NewDelivery[]): Promise<void> {
    if (rows.length === 0) return;
    await db.query(
      `INSERT INTO webhook_deliveries (event_id, app_id, job_id, url, event, created_at, status, next_at)
       SELECT r->>0, (r->>1)::bigint, r->>2, r->>3, r->>4, (r->>5)::bigint, 'pending', (r->>5)::bigint FROM jsonb_array_elements($1::jsonb) AS r
       ON CONFLICT (job_id, url) DO NOTHING`,
      [JSON.stringify(rows)],
    );
  }

  // --- webhook outbox (WebhookOutbox) ---

  async claimWebhookDeliveries(now: number, limit: number, holdMs: number): Promise<WebhookDelivery[]> {
    const n = Math.max(0, Math.trunc(limit));
    if (n === 0) return [];
    // SKIP LOCKED: replicas claiming at once take disjoint rows instead of queueing on each other.
    const { rows } = await this.#open().query<DeliveryRow>(
      `UPDATE webhook_deliveries SET held_until = $1
       WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_at <= $2 AND held_until <= $2
                    ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED)
       RETURNING ${DELIVERY_COLS}`,
      [now + holdMs, now, n],
    );
    return rows.map(toDelivery).sort((a, b) => a.nextAt - b.nextAt);
  }

  async recordWebhookAttempt(a: WebhookAttempt): Promise<void> {
    await this.#open().query(
      `UPDATE webhook_deliveries SET
         attempts = attempts + 1, last_status = $1, last_error = $2, last_attempt_at = $3, held_until = 0,
         status = CASE WHEN $4 THEN 'delivered' WHEN $5::bigint IS NULL THEN 'failed' ELSE 'pending' END,
         delivered_at = CASE WHEN $4 THEN $3 ELSE delivered_at END,
         next_at = coalesce($5::bigint, next_at)
       WHERE event_id = $6 AND status = 'pending'`,
      [a.httpStatus, clipError(a.error), a.at, a.ok, a.ok ? null : a.retryAt, a.eventId],
    );
  }

  async webhookDeliveries(q: { readonly appId?: number; readonly jobId?: string; readonly limit: number }): Promise<WebhookDelivery[]> {
    const { rows } = await this.#open().query<DeliveryRow>(
      `SELECT ${DELIVERY_COLS} FROM webhook_deliveries
       WHERE ($1::bigint IS NULL OR app_id = $1) AND ($2::text IS NULL OR job_id = $2) ORDER BY id DESC LIMIT $3`,
      [q.appId ?? null, q.jobId ?? null, Math.max(0, Math.trunc(q.limit))],
    );
    return rows.map(toDelivery);
  }

  async webhookOutboxDepth(): Promise<number> {
    const { rows } = await this.#open().query<{ n: string }>(`SELECT count(*) AS n FROM webhook_deliveries WHERE status = 'pending'`);
    return Number(rows[0]?.n ?? 0);
  }

  async processingTasks(maxSeq: number, limit: number, afterSeq = 0): Promise<TaskRecord[]> {
    const n = Math.max(0, Math.trunc(limit));
    if (n === 0) return [];
    const { rows } = await this.#open().query<TaskRow>(
      `SELECT ${TASK_COLS} FROM tasks WHERE status = 'processing' AND seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3`,
      [afterSeq, maxSeq, n],
    );
    return rows.map(toTask);
  }

  // --- retention ---

  /**
   * Whole days before `before` go by DROP of their partitions (cost independent of their size); what is
   * left of the day holding `before` goes job by job in bounded transactions, as in SQLite. Then the log
   * entries up to the highest seq pruned, and the quota days over everywhere.
   */
  async prune(before: number): Promise<number> {
    const pool = this.#open();
    let removed = 0;
    const days = [...(await partitionDays(pool))].filter((d) => (d + 1) * DAY_MS <= before).sort((a, b) => a - b);
    for (const day of days) removed += await this.#dropDay(day);
    for (;;) {
      const batch = await this.#pruneBatch(before);
      removed += batch.tasks;
      if (batch.jobs === 0) break;
    }
    // Log entries of pruned tasks (and any older one: they are outside the retained log, see firstSeq).
    for (;;) {
      const r = await pool.query(
        `DELETE FROM purge_log WHERE seq IN (
           SELECT seq FROM purge_log WHERE seq <= (SELECT value FROM store_meta WHERE key = 'pruned_through_seq') ORDER BY seq LIMIT $1)`,
        [PRUNE_BATCH_LOG],
      );
      if ((r.rowCount ?? 0) < PRUNE_BATCH_LOG) break;
    }
    await pool.query('DELETE FROM node_reports WHERE created_at < $1', [before]);
    await pool.query('DELETE FROM prefetch_results WHERE created_at < $1', [before]);
    await pool.query('DELETE FROM webhook_deliveries WHERE created_at < $1', [before]);
    // Quota days are zone-local dates; a day string more than a day older than `before` is over in every zone.
    await pool.query('DELETE FROM quota_usage WHERE day < $1', [new Date(before - DAY_MS).toISOString().slice(0, 10)]);
    return removed;
  }

  /** Drops one day's partitions with its jobs and records, in one transaction; returns its task count. */
  async #dropDay(day: number): Promise<number> {
    const client = await this.#open().connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      try {
        // Dropping a partition locks its parent. Parents first, in one order, and never waiting long: a
        // reader that holds one parent and wants the other must not be the one deadlock detection kills.
        await client.query(`SET LOCAL lock_timeout = '${DROP_LOCK_TIMEOUT}'`);
        await client.query('LOCK TABLE tasks, task_hosts IN ACCESS EXCLUSIVE MODE');
        const t = partitionName('tasks', day);
        const { rows } = await client.query<{ n: number; s: number | null }>(`SELECT count(*) AS n, max(seq) AS s FROM ${t}`);
        const from = day * DAY_MS;
        const to = from + DAY_MS;
        await client.query('DELETE FROM refresh_records WHERE created_at >= $1 AND created_at < $2', [from, to]);
        await client.query('DELETE FROM jobs WHERE created_at >= $1 AND created_at < $2', [from, to]);
        await client.query(`DROP TABLE ${t}, ${partitionName('task_hosts', day)}`);
        await this.#raisePrunedThrough(client, rows[0]?.s ?? null);
        await client.query('COMMIT');
        this.#days.delete(day);
        return rows[0]?.n ?? 0;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => (broken = true));
        throw e;
      }
    } finally {
      client.release(broken);
    }
  }

  /** Deletes one bounded batch of whole jobs created before `before`, in one transaction. */
  async #pruneBatch(before: number): Promise<{ jobs: number; tasks: number }> {
    const client = await this.#open().connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      try {
        const { rows: candidates } = await client.query<{ job_id: string; task_count: number }>(
          'SELECT job_id, task_count FROM jobs WHERE created_at < $1 ORDER BY created_at LIMIT $2',
          [before, PRUNE_BATCH_JOBS],
        );
        const ids = pruneBatchJobs(candidates);
        if (ids.length === 0) {
          await client.query('COMMIT');
          return { jobs: 0, tasks: 0 };
        }
        const { rows } = await client.query<{ n: number; s: number | null }>(
          `WITH d AS (
             DELETE FROM tasks t USING jobs j
             WHERE j.job_id = ANY($1::text[]) AND t.job_id = j.job_id AND t.created_at = j.created_at
             RETURNING t.id, t.created_at, t.seq
           ), h AS (
             DELETE FROM task_hosts h USING d WHERE h.task_id = d.id AND h.created_at = d.created_at
           )
           SELECT count(*) AS n, max(seq) AS s FROM d`,
          [ids],
        );
        await client.query('DELETE FROM refresh_records WHERE job_id = ANY($1::text[])', [ids]);
        await client.query('DELETE FROM jobs WHERE job_id = ANY($1::text[])', [ids]);
        await this.#raisePrunedThrough(client, rows[0]?.s ?? null);
        await client.query('COMMIT');
        return { jobs: ids.length, tasks: rows[0]?.n ?? 0 };
      } catch (e) {
        await client.query('ROLLBACK').catch(() => (broken = true));
        throw e;
      }
    } finally {
      client.release(broken);
    }
  }

  async #raisePrunedThrough(client: PoolClient, seq: number | null): Promise<void> {
    if (seq === null) return;
    await client.query("UPDATE store_meta SET value = greatest(value, $1) WHERE key = 'pruned_through_seq'", [seq]);
  }

  // --- internals ---

  #open(): pg.Pool {
    // Not #closed: close() lets the batches already accepted commit before the pool goes.
    if (!this.#pool) throw new Error('PostgresTaskStore is not started (call start() first) or was closed');
    return this.#pool;
  }

  #read(): PostgresTaskReader {
    this.#open();
    return this.#reader!;
  }
}
