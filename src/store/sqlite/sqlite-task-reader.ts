// The SQLite store's history queries (getJob, jobTasks, listTasks, listRefreshRecords) over one connection:
// the writer's own, or a read-only one in a worker thread (sqlite-read-pool.ts).
import type { DatabaseSync, SQLInputValue } from 'node:sqlite';
import type { JobRecord, TaskRecord } from '../../purge/types.ts';
import { asciiLower } from '../refresh-record-ids.ts';
import { REFRESH_TYPES, type NodeReport, type RefreshRecord, type RefreshRecordQuery, type TaskQuery } from '../task-store.ts';
import {
  marks, NODE_REPORT_COLS, StatementCache, TARGET_GROUP_BITS, TARGET_GROUP_SIZE, targetGroupRowids, TASK_COLS, taskCols, legacyTargetHash, targetHash, toJob, toNodeReport, toTask, type JobRow, type NodeReportRow, type TaskRow,
} from './sqlite-rows.ts';

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
export const HOUR_MS = 3_600_000;
/** log2 of the task ids per bucket of the exact-target index (migration v12; 12 from v8 to v11). */
export const TARGET_BUCKET_BITS = 10;
/**
 * The exact-target index is keyed by (app, id >> TARGET_BUCKET_BITS, hash) (migrations v8, v12): probe each bucket
 * of the ids the range's tasks have (task_id_ranges). Bound with #targetProbe before the hash.
 */
const TARGET_BUCKETS = `(t.id >> ${TARGET_BUCKET_BITS}) IN (WITH RECURSIVE bucket(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM bucket WHERE x < ?) SELECT x FROM bucket)`;
const hourBounds = (from: number | undefined, to: number | undefined): [number, number] => [
  from === undefined ? Number.MIN_SAFE_INTEGER : Math.floor(from / HOUR_MS),
  to === undefined ? Number.MAX_SAFE_INTEGER : Math.floor(to / HOUR_MS),
];
/** Rowid bounds for task_grams. BigInt: FTS5 ignores a rowid bound bound as REAL, and node:sqlite binds numbers as REAL. */
const NO_LOWER_ID = 0n;
const NO_UPPER_ID = 9_223_372_036_854_775_807n;

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

/** One FTS5 term, quoted so that the needle's characters are never read as query syntax. */
export const ftsTerm = (trigram: string): string => `"${trigram.replaceAll('"', '""')}"`;

/**
 * How the trigram index narrows a text filter: groups matching `match` (null: none can) with rowid in
 * [lo, hi], and the unindexed backlog's tasks with ids in [idLo, idHi] (the query's time range).
 */
interface FtsPlan {
  readonly match: string | null;
  readonly lo: bigint;
  readonly hi: bigint;
  readonly idLo: bigint;
  readonly idHi: bigint;
}

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

/** The statements answering one query: count, page (LIMIT ? OFFSET ? appended to params), shared params. */
interface QueryPlan {
  readonly params: SQLInputValue[];
  readonly countSql: string;
  readonly pageSql: string;
  readonly onePass: boolean;
}

/** A source reading tasks (alias `t`) through `from`, with the query's remaining filters added. */
function taskSource(q: TaskQuery, from: string, where: string[], params: SQLInputValue[], onePass = false): Source {
  const src: Source = { from, where, params, id: 't.id', ts: 't.created_at', distinct: false, onePass };
  addTaskFilters(src, q);
  return src;
}

const page = (limit: number, offset: number): { limit: number; offset: number } => ({
  limit: Math.max(0, Math.trunc(limit)),
  offset: Math.max(0, Math.trunc(offset)),
});

export class SqliteTaskReader {
  readonly #db: () => DatabaseSync;
  readonly #stmts: StatementCache;
  /** #newKeysFrom's value, read once. */
  #v7From: bigint | undefined;

  /** `db` returns the open connection (and throws when there is none). */
  constructor(db: () => DatabaseSync) {
    this.#db = db;
    this.#stmts = new StatementCache(db);
  }

  /** Forgets prepared statements (the connection is about to close). */
  clear(): void {
    this.#stmts.clear();
  }

  getJob(appId: number, jobId: string): JobRecord | null {
    const row = this.#stmts.get('SELECT * FROM jobs WHERE job_id = ? AND app_id = ?').get(jobId, appId) as JobRow | undefined;
    return row ? toJob(row) : null;
  }

  jobTasks(appId: number, jobId: string): TaskRecord[] {
    const rows = this.#stmts
      .get(`SELECT ${TASK_COLS} FROM tasks WHERE job_id = ? AND +app_id = ? ORDER BY id`)
      .all(jobId, appId) as unknown as TaskRow[];
    return rows.map(toTask);
  }

  /** The job's tasks by the job index, then each task's reports by the primary key. */
  jobNodeReports(appId: number, jobId: string): NodeReport[] {
    const cols = NODE_REPORT_COLS.split(', ').map((c) => `r.${c}`).join(', ');
    const rows = this.#stmts
      .get(`SELECT ${cols} FROM tasks t JOIN node_reports r ON r.task_id = t.id WHERE t.job_id = ? AND +t.app_id = ? ORDER BY r.task_id, r.node_id`)
      .all(jobId, appId) as unknown as NodeReportRow[];
    return rows.map(toNodeReport);
  }

  listTasks(q: TaskQuery): { total: number; tasks: TaskRecord[] } {
    const plan = this.#taskQueryPlan(q);
    if (plan === null) return { total: 0, tasks: [] };
    const { limit, offset } = page(q.limit, q.offset);
    return this.#snapshot(() => {
      const { params, countSql, pageSql, onePass } = plan;
      const count = (): number => Number((this.#stmts.get(countSql).get(...params) as { n: number }).n);
      if (limit === 0) return { total: count(), tasks: [] };
      if (onePass) {
        const rows = this.#stmts.get(pageSql).all(...params, limit, offset) as unknown as Array<TaskRow & { total: number }>;
        const first = rows[0];
        if (first === undefined) return { total: offset === 0 ? 0 : count(), tasks: [] };
        return { total: Number(first.total), tasks: rows.map(toTask) };
      }
      const total = count();
      if (offset >= total) return { total, tasks: [] };
      const rows = this.#stmts.get(pageSql).all(...params, limit, offset) as unknown as TaskRow[];
      return { total, tasks: rows.map(toTask) };
    });
  }

  /** SQLite's plan (EXPLAIN QUERY PLAN details) for the statements listTasks would run; [] when none. */
  explainListTasks(q: TaskQuery): string[] {
    return this.#explain(this.#taskQueryPlan(q), q);
  }

  /** SQLite's plan for the count and record-page statements listRefreshRecords would run; [] when none. */
  explainListRefreshRecords(q: RefreshRecordQuery): string[] {
    return this.#explain(this.#refreshPlan(q), q);
  }

  listRefreshRecords(q: RefreshRecordQuery): { total: number; records: RefreshRecord[] } {
    const plan = this.#refreshPlan(q);
    if (plan === null) return { total: 0, records: [] };
    const budget = q.maxTasks === undefined ? Number.POSITIVE_INFINITY : Math.max(1, Math.trunc(q.maxTasks));
    // Every record holds a task, so a page never needs more records than the budget has tasks.
    const { limit, offset } = page(Math.min(q.limit, budget), q.offset);
    return this.#snapshot(() => {
      const total = Number((this.#stmts.get(plan.countSql).get(...plan.params) as { n: number }).n);
      if (limit === 0 || offset >= total) return { total, records: [] };
      const keys = this.#stmts.get(plan.pageSql).all(...plan.params, limit, offset) as unknown as Array<{
        job_id: string;
        host: string;
        record_id: number;
        job_tasks: number;
      }>;
      // The task budget, from the records alone: whole jobs are read, so each job's tasks count once.
      const kept: typeof keys = [];
      const jobIds = new Set<string>();
      let tasks = 0;
      for (const k of keys) {
        const more = jobIds.has(k.job_id) ? 0 : Number(k.job_tasks);
        if (kept.length > 0 && tasks + more > budget) break;
        kept.push(k);
        jobIds.add(k.job_id);
        tasks += more;
      }
      const list = JSON.stringify([...jobIds]);
      const jobs = new Map(
        (this.#stmts.get('SELECT * FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))').all(list) as unknown as JobRow[]).map(
          (r) => [r.job_id, toJob(r)],
        ),
      );
      const byJob = new Map<string, TaskRecord[]>();
      const rows = this.#stmts
        // No ORDER BY: SQLite's sorter would copy every row; each job's tasks are put in order below.
        .get(`SELECT ${TASK_COLS} FROM tasks INDEXED BY tasks_job WHERE job_id IN (SELECT value FROM json_each(?)) AND +app_id = ?`)
        .all(list, q.appId) as unknown as TaskRow[];
      for (const r of rows) {
        const t = toTask(r);
        const tasksOfJob = byJob.get(t.jobId);
        if (tasksOfJob) tasksOfJob.push(t);
        else byJob.set(t.jobId, [t]);
      }
      for (const tasksOfJob of byJob.values()) tasksOfJob.sort((a, b) => a.id - b.id);
      const records: RefreshRecord[] = [];
      for (const k of kept) {
        const job = jobs.get(k.job_id);
        // Within one read transaction a record's job is always there; skip rather than trust that blindly.
        if (job) records.push({ id: Number(k.record_id), job, host: k.host, tasks: (byJob.get(k.job_id) ?? []).filter((t) => t.hosts.includes(k.host)) });
      }
      return { total, records };
    });
  }

  // --- internals ---

  /** Runs `fn` in one read transaction, so that a count and its page see the same commits. */
  #snapshot<T>(fn: () => T): T {
    const db = this.#db();
    if (db.isTransaction) return fn();
    db.exec('BEGIN');
    try {
      return fn();
    } finally {
      db.exec('COMMIT');
    }
  }

  #explain(plan: QueryPlan | null, q: { limit: number; offset: number }): string[] {
    if (plan === null) return [];
    const explain = (sql: string, params: SQLInputValue[]): string[] =>
      (this.#db().prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail);
    return [...explain(plan.countSql, plan.params), ...explain(plan.pageSql, [...plan.params, q.limit, q.offset])];
  }

  /** The statements answering a task query; null when nothing can match. */
  #taskQueryPlan(q: TaskQuery): QueryPlan | null {
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

  /**
   * The statements answering a record query; null when nothing can match. One access path each, most
   * selective first: the exact target (through the target hash), the job, the host, then the app's
   * time range; INDEXED BY pins it (see #taskSource). The record page is read from the index alone
   * (every path's index holds the page's order) and only the page's records are joined for their ids.
   */
  #refreshPlan(q: RefreshRecordQuery): QueryPlan | null {
    if (isEmptyList(q.types)) return null;
    if (q.from !== undefined && q.to !== undefined && q.from > q.to) return null;
    // Every record is of a refresh type: a filter naming all of them filters nothing, and is skipped.
    const types = q.types && REFRESH_TYPES.some((t) => !q.types!.includes(t)) ? [...new Set(q.types)] : undefined;
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    const filters = (col: string, skip: { host?: boolean } = {}): void => {
      if (q.from !== undefined) (where.push(`${col}created_at >= ?`), params.push(q.from));
      if (q.to !== undefined) (where.push(`${col}created_at <= ?`), params.push(q.to));
      if (types) (where.push(`${col}type IN (${marks(types.length)})`), params.push(...types));
      if (!skip.host && q.host !== undefined) (where.push(`${col}host = ?`), params.push(q.host));
    };
    let from: string;
    let order: string;
    /** The record's place in its job; a constant where one host is asked for (keeps the host index covering). */
    let ord = 'r.ord';
    if (q.target !== undefined) {
      // The records holding the target: its tasks (few, through the hash), their hosts, their records.
      const probe = this.#targetProbe(q.target, q.from, q.to);
      if (probe === null) return null;
      const sub: string[] = ['t.app_id = ?', TARGET_BUCKETS, 't.target_hash IN (?, ?)', 't.target = ?'];
      const subParams: SQLInputValue[] = [q.appId, ...probe.buckets, ...probe.keys, q.target];
      if (q.jobId !== undefined) (sub.push('+t.job_id = ?'), subParams.push(q.jobId));
      if (q.from !== undefined) (sub.push('+t.created_at >= ?'), subParams.push(q.from));
      if (q.to !== undefined) (sub.push('+t.created_at <= ?'), subParams.push(q.to));
      sub.push(`+t.type IN (${marks((types ?? REFRESH_TYPES).length)})`);
      subParams.push(...(types ?? REFRESH_TYPES));
      if (q.host !== undefined) (sub.push('x.host = ?'), subParams.push(q.host));
      from =
        `(SELECT DISTINCT t.job_id AS job_id, x.host AS host FROM tasks t INDEXED BY tasks_target` +
        ` CROSS JOIN task_hosts x ON x.task_id = t.id WHERE ${sub.join(' AND ')}) m CROSS JOIN refresh_records r ON r.job_id = m.job_id AND r.host = m.host`;
      params.push(...subParams);
      where.push('1');
      order = 'r.created_at DESC, r.job_id DESC, r.ord';
    } else if (q.jobId !== undefined) {
      from = 'refresh_records r';
      where.push('r.job_id = ?', '+r.app_id = ?');
      params.push(q.jobId, q.appId);
      filters('+r.');
      order = 'r.ord';
    } else if (q.host !== undefined) {
      from = 'refresh_records r INDEXED BY refresh_records_app_host';
      where.push('r.app_id = ?', 'r.host = ?');
      params.push(q.appId, q.host);
      filters('r.', { host: true });
      // One record per job and host: (createdAt, job) is already a total order.
      order = 'r.created_at DESC, r.job_id DESC';
      ord = '0';
    } else {
      from = 'refresh_records r INDEXED BY refresh_records_app_time';
      where.push('r.app_id = ?');
      params.push(q.appId);
      filters('r.');
      order = 'r.created_at DESC, r.job_id DESC, r.ord';
    }
    const w = where.join(' AND ');
    const countSql = `SELECT count(*) AS n FROM ${from} WHERE ${w}`;
    const pageSql =
      `SELECT k.job_id, k.host, j.record_id, j.job_tasks FROM (SELECT r.job_id AS job_id, r.host AS host, r.created_at AS ts, ${ord} AS ord` +
      ` FROM ${from} WHERE ${w} ORDER BY ${order} LIMIT ? OFFSET ?) k CROSS JOIN refresh_records j ON j.job_id = k.job_id AND j.host = k.host` +
      ` ORDER BY k.ts DESC, k.job_id DESC, k.ord`;
    return { params, countSql, pageSql, onePass: false };
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
      const probe = this.#targetProbe(q.target, q.from, q.to);
      if (probe === null) return null;
      return taskSource(q, 'tasks t INDEXED BY tasks_target', ['t.app_id = ?', TARGET_BUCKETS, 't.target_hash IN (?, ?)'], [q.appId, ...probe.buckets, ...probe.keys]);
    }
    const plan = q.targetContains !== undefined ? this.#ftsPlan(q.targetContains, q.from, q.to) : null;
    if (plan === 'no-match') return null;
    if (plan !== null) {
      // The id ranges to check row by row: each matching group of consecutive tasks (indexTargets),
      // and the backlog above grams_through that the index does not hold yet (indexBacklog). Read in
      // the same statement, so the two never overlap whatever the writer committed meanwhile.
      const groups =
        `SELECT g.rowid >> ${TARGET_GROUP_BITS} AS lo, (g.rowid >> ${TARGET_GROUP_BITS}) + (g.rowid & ${TARGET_GROUP_SIZE - 1}) AS hi` +
        ' FROM task_grams g WHERE task_grams MATCH ? AND g.rowid >= ? AND g.rowid <= ?';
      const backlog = "SELECT max(value + 1, ?) AS lo, ? AS hi FROM store_meta WHERE key = 'grams_through'";
      const ranges = plan.match === null ? backlog : `${groups} UNION ALL ${backlog}`;
      const params = plan.match === null ? [plan.idLo, plan.idHi] : [plan.match, plan.lo, plan.hi, plan.idLo, plan.idHi];
      return taskSource(q, `(${ranges}) s CROSS JOIN tasks t ON t.id >= s.lo AND t.id <= s.hi`, [], params, true);
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
    const bounds = this.#rangeBounds(from, to);
    if (bounds === null) return 'no-match';
    const probe = this.#stmts.get(
      'SELECT count(*) AS n FROM (SELECT rowid FROM task_grams WHERE task_grams MATCH ? AND rowid >= ? AND rowid <= ? LIMIT ?)',
    );
    const counted = tris.map((t) => ({ t, n: Number((probe.get(ftsTerm(t), bounds.lo, bounds.hi, TRIGRAM_PROBE_CAP) as { n: number }).n) }));
    // A trigram no group holds: only the backlog can match.
    if (counted.some((c) => c.n === 0)) return { match: null, ...bounds };
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

  /**
   * The task ids created in [from, to] (null: none), from the per-hour ranges, and the rowid bounds in
   * the trigram index of the groups that can hold them.
   */
  #rangeBounds(from: number | undefined, to: number | undefined): { lo: bigint; hi: bigint; idLo: bigint; idHi: bigint } | null {
    if (from === undefined && to === undefined) return { lo: NO_LOWER_ID, hi: NO_UPPER_ID, idLo: NO_LOWER_ID, idHi: NO_UPPER_ID };
    const ids = this.#storedIdBounds(from, to);
    if (ids === null) return null;
    const [lo, hi] = targetGroupRowids(Number(ids.lo), Number(ids.hi));
    return { lo, hi, idLo: ids.lo, idHi: ids.hi };
  }

  #storedIdBounds(from: number | undefined, to: number | undefined): { lo: bigint; hi: bigint } | null {
    const row = this.#stmts.get('SELECT min(min_id) AS lo, max(max_id) AS hi FROM task_id_ranges WHERE hour >= ? AND hour <= ?').get(
      ...hourBounds(from, to),
    ) as { lo: number | null; hi: number | null };
    if (row.lo === null || row.hi === null) return null;
    return { lo: BigInt(row.lo), hi: BigInt(row.hi) };
  }

  /**
   * Where the exact-target index holds `target`'s tasks created in [from, to] (null: no task there): the
   * first and last bucket, and the two keys to probe in each. Rows from before v7 have the SHA-256 key
   * (legacyTargetHash); a range whose first task is at or after store_meta.target_hash_v7_from_id holds
   * none of them, so it probes the new key alone (half the seeks: every bucket costs one per key).
   */
  #targetProbe(target: string, from: number | undefined, to: number | undefined): { buckets: [bigint, bigint]; keys: [number, number] } | null {
    const b = this.#storedIdBounds(from, to);
    if (b === null) return null;
    const key = targetHash(target);
    return {
      buckets: [b.lo >> BigInt(TARGET_BUCKET_BITS), b.hi >> BigInt(TARGET_BUCKET_BITS)],
      keys: [key, b.lo >= this.#newKeysFrom() ? key : legacyTargetHash(target)],
    };
  }

  /** store_meta.target_hash_v7_from_id (absent: every range probes both keys); it never changes once written. */
  #newKeysFrom(): bigint {
    if (this.#v7From === undefined) {
      const row = this.#stmts.get("SELECT value FROM store_meta WHERE key = 'target_hash_v7_from_id'").get() as { value: number } | undefined;
      this.#v7From = row === undefined ? BigInt(Number.MAX_SAFE_INTEGER) : BigInt(row.value);
    }
    return this.#v7From;
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
