// What the SQLite writer and readers share: row shapes (store-rows.ts), the target hash, refresh-record
// rows and a bounded statement cache.
import { hash as digestOnce, randomInt } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { ExecutedAs } from '../../purge/types.ts';
import { REFRESH_TYPES, type NodeReport } from '../task-store.ts';
import { jobRecordId, RANDOM_RECORD_ID_LIMIT, SAFE_JOB_RECORD_ID_GLOB } from '../refresh-record-ids.ts';

export { TASK_COLS, taskCols, toJob, toTask, type JobRow, type TaskRow } from '../store-rows.ts';

/**
 * SQLite page cache of each connection, KiB (the writer's and every read worker's). It fills up to
 * its bound and stays there, so it is resident memory: at 64 MiB it was most of the control plane's
 * RSS growth in the soak (issue 7). 16 MiB holds the hot indexes; the OS page cache keeps the rest of
 * the file a read() away.
 */
export const PAGE_CACHE_KIB = 16 * 1024;

/** The connection's page cache bound, KiB (`PRAGMA cache_size`: negative values are KiB, positive pages). */
export function pageCacheKiB(db: DatabaseSync): number {
  const size = Number((db.prepare('PRAGMA cache_size').get() as { cache_size: number }).cache_size);
  const pageSize = Number((db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size);
  return size < 0 ? -size : (size * pageSize) / 1024;
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


/**
 * The key of the exact-target index since migration v7: 48 bits of a multiply-xorshift hash of the
 * target's UTF-16 code units (rows are re-checked, collisions are harmless). ~0.4 µs a URL where
 * SHA-256 took ~3 µs on the loaded machine (issue 11). Never change it: stored rows hold it.
 */
export function targetHash(target: string): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h2 & 0xffff) * 2 ** 32 + (h1 >>> 0);
}

/** The key of rows written before migration v7: 48 bits of SHA-256. */
export const legacyTargetHash = (target: string): number => digestOnce('sha256', target, 'buffer').readUIntBE(0, 6);

/**
 * Writes a URL or directory refresh job's legacy refresh-log records (refresh_records): one per
 * distinct host of `hosts` (its tasks' hosts in task order), in order of first appearance. The first one's id is the job id when that is
 * a safe 16-digit number; every other id is drawn at random below 2^48 (so never a job id), again on
 * the rare clash with an existing one. The caller holds the write transaction.
 */
export function insertRefreshRecords(
  stmt: (sql: string) => StatementSync,
  job: { readonly jobId: string; readonly appId: number; readonly createdAt: number; readonly type: string; readonly taskCount: number },
  hosts: readonly string[],
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

/**
 * The trigram index (`task_grams`, migration v9) holds one row per group of up to TARGET_GROUP_MAX tasks
 * with consecutive ids: its document is their targets joined by a newline,
 * its rowid the group's first id shifted left by TARGET_GROUP_BITS, plus the group's size less one. A
 * match names a group; the row check on each of its tasks keeps the answer exact. A row per task cost
 * half a 1,000-URL job's store CPU (each row's fixed cost, and the trigrams a deploy's URLs share, such
 * as the scheme and host, written and merged again for every task); a group writes them once.
 */
export const TARGET_GROUP_BITS = 4;
export const TARGET_GROUP_SIZE = 1 << TARGET_GROUP_BITS;
/**
 * The most tasks indexTargets puts in a group, fewer than the rowid could say: every task of a matched
 * group is read and checked, and a group's trigrams AND across its tasks. Measured on the seeded 1M
 * store, fuzzy (b) p99 18 ms with a row per task, 29 ms with groups of 8, 55 ms with 16 (bar 50);
 * a 1,000-URL job's store CPU in-process 29-32 ms, 23 ms, 16-20 ms.
 */
export const TARGET_GROUP_MAX = 8;

/**
 * The most tasks the trigram index may lag behind (store_meta.grams_through, migration v10): a fuzzy
 * search checks them row by row (~1 µs each), and a commit that leaves more indexes them all. A
 * 1,000-URL job is past it at once; 1-URL purges are indexed 512 at a time, not one FTS5 segment
 * (and its merges) per commit.
 */
export const TRIGRAM_BACKLOG_MAX = 512;

/** The rowid of the group of `size` tasks whose first id is `first`. BigInt: FTS5 ignores a rowid bound as REAL. */
export const targetGroupRowid = (first: number, size: number): bigint => (BigInt(first) << BigInt(TARGET_GROUP_BITS)) | BigInt(size - 1);

/** The rowid range of every group that can hold a task with an id in [first, last] (its first id at most TARGET_GROUP_SIZE - 1 lower). */
export const targetGroupRowids = (first: number, last: number): [bigint, bigint] => [
  targetGroupRowid(Math.max(0, first - TARGET_GROUP_SIZE + 1), 1),
  targetGroupRowid(last, TARGET_GROUP_SIZE),
];

/**
 * Adds `tasks` (in id order) to the trigram index: each run of consecutive ids cut into groups of
 * TARGET_GROUP_MAX. The caller holds the write transaction.
 */
export function indexTargets(tasks: ReadonlyArray<{ readonly id: number; readonly target: string }>, stmt: (sql: string) => StatementSync): void {
  const ins = stmt('INSERT INTO task_grams (rowid, targets) VALUES (?, ?)');
  let start = 0;
  for (let i = 1; i <= tasks.length; i++) {
    const full = i - start === TARGET_GROUP_MAX;
    if (i < tasks.length && !full && tasks[i]!.id === tasks[i - 1]!.id + 1) continue;
    const group = tasks.slice(start, i);
    ins.run(targetGroupRowid(group[0]!.id, group.length), groupDocument(group.map((t) => t.target)));
    start = i;
  }
}

/**
 * Indexes the tasks above store_meta.grams_through once they are at least `backlogMax` (0: at once),
 * and moves the mark past them. `added` are this transaction's new tasks, in id order: their targets
 * are at hand, so only older backlog is read back. The caller holds the write transaction.
 */
export function indexBacklog(added: ReadonlyArray<{ readonly id: number; readonly target: string }>, backlogMax: number, stmt: (sql: string) => StatementSync): void {
  const last = added.at(-1)?.id;
  if (last === undefined) return;
  const through = Number((stmt("SELECT value FROM store_meta WHERE key = 'grams_through'").get() as { value: number }).value);
  if (last - through < Math.max(1, backlogMax)) return;
  const older = stmt('SELECT id, target FROM tasks WHERE id > ? AND id < ? ORDER BY id').all(through, added[0]!.id) as Array<{ id: number; target: string }>;
  indexTargets(older.length === 0 ? added : [...older, ...added], stmt);
  stmt("UPDATE store_meta SET value = ? WHERE key = 'grams_through'").run(last);
}

/**
 * Removes from the trigram index the groups that no longer hold a task, among those that held one of
 * ids [first, last] (a pruned job's). A group also holding a task that stays keeps its row: the row
 * check skips the tasks that are gone. The caller holds the write transaction, after deleting the tasks.
 */
export function unindexTargets(first: number, last: number, stmt: (sql: string) => StatementSync): void {
  const groups = stmt('SELECT rowid AS r FROM task_grams WHERE rowid >= ? AND rowid <= ?').all(...targetGroupRowids(first, last)) as Array<{ r: number }>;
  const live = stmt('SELECT 1 FROM tasks WHERE id >= ? AND id <= ? LIMIT 1');
  const del = stmt('DELETE FROM task_grams WHERE rowid = ?');
  for (const { r } of groups) {
    const from = Math.floor(r / TARGET_GROUP_SIZE);
    const to = from + (r % TARGET_GROUP_SIZE);
    if (to >= first && from <= last && live.get(from, to) === undefined) del.run(BigInt(r));
  }
}

const isHighSurrogate = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const isLowSurrogate = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;

/**
 * A group's trigram document: its first target whole, then each other target from two characters
 * before where it stops sharing a prefix with the one before it, joined by newlines. Searches AND
 * single trigrams (detail = none keeps no positions), so a document only needs to hold every
 * trigram of its targets: one inside the shared prefix is in the previous target, which (by the same
 * argument) the document holds; one that crosses the prefix's end starts at most two characters
 * before it. A deploy's URLs share scheme, host and directories, so this tokenizes about half the
 * characters. Steps are in code points: a surrogate pair is never cut.
 */
export function groupDocument(targets: readonly string[]): string {
  let doc = targets[0] ?? '';
  for (let k = 1; k < targets.length; k++) {
    const prev = targets[k - 1]!;
    const cur = targets[k]!;
    let shared = 0;
    const max = Math.min(prev.length, cur.length);
    while (shared < max && prev.charCodeAt(shared) === cur.charCodeAt(shared)) shared++;
    // Same code units up to `shared`; a pair whose high half is shared but low half differs is not.
    if (shared > 0 && isHighSurrogate(cur.charCodeAt(shared - 1))) shared--;
    let from = shared;
    for (let back = 0; back < 2 && from > 0; back++) {
      from--;
      if (from > 0 && isLowSurrogate(cur.charCodeAt(from)) && isHighSurrogate(cur.charCodeAt(from - 1))) from--;
    }
    doc += '\n' + cur.slice(from);
  }
  return doc;
}

/**
 * The most tasks whose host rows may wait above store_meta.hosts_through (migration v11): their
 * task_hosts rows and their jobs' refresh_records. Both indexes that serve a host filter are keyed by
 * host first, so a commit of 1-URL purges for N hosts dirtied 2N leaf pages of them (26 of a
 * 12-purge commit's ~67 WAL frames); taken 512 tasks at a time, each host's leaves are written once.
 * Nothing reads those rows without writing the backlog first (SqliteTaskStore.#writeHostRowsNow).
 */
export const HOST_ROWS_BACKLOG_MAX = 512;

/** The tasks whose host rows wait: ids in (through, upTo], upTo being `last` or else the newest task. */
export function hostRowsWaiting(stmt: (sql: string) => StatementSync, last?: number): { through: number; upTo: number } {
  const through = Number((stmt("SELECT value FROM store_meta WHERE key = 'hosts_through'").get() as { value: number }).value);
  const upTo = last ?? Number((stmt('SELECT coalesce(max(id), 0) AS id FROM tasks').get() as { id: number }).id);
  return { through, upTo };
}

/**
 * Writes the host rows of the tasks above store_meta.hosts_through, up to task `last` (default: the
 * newest), once they are at least `backlogMax` (0: any), and moves the mark to `last`: each task's
 * task_hosts rows (its hosts from tasks.hosts, its status as of now; updateTasks keeps it from then
 * on), and the refresh_records of each refresh job among them, as insertRefreshRecords writes them.
 * A transaction holds whole jobs, so the mark is always between two jobs. Returns the tasks written.
 * The caller holds the write transaction.
 */
export function writeHostRows(stmt: (sql: string) => StatementSync, backlogMax: number, last?: number): number {
  const { through, upTo } = hostRowsWaiting(stmt, last);
  if (upTo - through < Math.max(1, backlogMax)) return 0;
  stmt(
    `INSERT INTO task_hosts (task_id, host, app_id, created_at, status, type, zone_id)
     SELECT t.id, h.value, t.app_id, t.created_at, t.status, t.type, t.zone_id FROM tasks t, json_each(t.hosts) h WHERE t.id > ? AND t.id <= ?`,
  ).run(through, upTo);
  // The common job, one task for one host with a job id that is its own record id (jobRecordId), has
  // one record: all of them in one statement. Through JS, a record cost ~8 µs more (its row read
  // back, the insert's binding): more than its 1-URL purge's task row (issue 11). A clash of record
  // ids (ON CONFLICT DO NOTHING) leaves that job without a record, for the loop below.
  stmt(
    `INSERT INTO refresh_records (job_id, host, ord, record_id, app_id, created_at, type, job_tasks)
     SELECT j.job_id, json_extract(t.hosts, '$[0]'), 0, CAST(j.job_id AS INTEGER), j.app_id, j.created_at, j.type, 1
     FROM tasks t NOT INDEXED CROSS JOIN jobs j ON j.job_id = t.job_id
     WHERE t.id > ? AND t.id <= ? AND t.type IN (${marks(REFRESH_TYPES.length)}) AND j.task_count = 1 AND json_array_length(t.hosts) = 1
       AND j.job_id GLOB '${SAFE_JOB_RECORD_ID_GLOB}' AND CAST(j.job_id AS INTEGER) <= ${Number.MAX_SAFE_INTEGER}
     ON CONFLICT (record_id) DO NOTHING`,
  ).run(through, upTo, ...REFRESH_TYPES);
  // Every other refresh job, record by record: its distinct hosts in order of first appearance (task
  // id, then place in the task's hosts; a job's tasks have consecutive ids), found in SQL, not by
  // reading back each of a 1,000-URL job's task rows. NOT INDEXED: the GROUP BY made the planner walk
  // all of tasks_job (every task in the store) for its order instead of the rowid range.
  const rows = stmt(
    `WITH firsts AS (
       SELECT t.job_id, h.value AS host, min((t.id << 20) + h.key) AS pos FROM tasks t NOT INDEXED, json_each(t.hosts) h
       WHERE t.id > ? AND t.id <= ? AND t.type IN (${marks(REFRESH_TYPES.length)}) AND NOT EXISTS (SELECT 1 FROM refresh_records r WHERE r.job_id = t.job_id)
       GROUP BY t.job_id, h.value)
     SELECT f.job_id, f.host, j.app_id, j.created_at, j.type, j.task_count FROM firsts f CROSS JOIN jobs j ON j.job_id = f.job_id ORDER BY f.pos`,
  ).all(through, upTo, ...REFRESH_TYPES) as Array<{ job_id: string; host: string; app_id: number; created_at: number; type: string; task_count: number }>;
  for (let i = 0; i < rows.length; ) {
    const job = rows[i]!;
    const hosts: string[] = [];
    for (; i < rows.length && rows[i]!.job_id === job.job_id; i++) hosts.push(rows[i]!.host);
    insertRefreshRecords(stmt, { jobId: job.job_id, appId: job.app_id, createdAt: job.created_at, type: job.type, taskCount: job.task_count }, hosts);
  }
  stmt("UPDATE store_meta SET value = ? WHERE key = 'hosts_through'").run(upTo);
  return upTo - through;
}
