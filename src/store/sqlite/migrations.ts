// The SQLite schema as an ordered list of migrations, tracked by `PRAGMA user_version`.
import type { DatabaseSync } from 'node:sqlite';
import { insertRefreshRecords } from './sqlite-rows.ts';

export interface Migration {
  /** 1, 2, 3… in order; `PRAGMA user_version` holds the last one applied. */
  readonly version: number;
  readonly name: string;
  readonly sql: string;
  /** Runs after `sql`, in the same transaction: data changes that SQL alone cannot make safely. */
  readonly run?: (db: DatabaseSync) => void;
}

/**
 * Append only: never edit a migration that has shipped, add the next one.
 *
 * Layout (v1), and why:
 * - `tasks` is also the purge log: `seq` is set only for fanned-out tasks (UNIQUE, gap-free,
 *   DESIGN invariant 2). The last seq ever handed out lives in `store_meta` rather than being
 *   recomputed as max(seq), so pruning the whole log never lets a seq be reused.
 * - `tasks.hosts` keeps the host list as JSON for reads; `task_hosts` is the same list as rows,
 *   with the columns a host-filtered query tests (app, time, status, type, zone) copied in, so that
 *   counting DescribePurgeTasks matches (TENCENT-API §4.2 `domains`, §3.3 `Keyword`) reads one
 *   index range and never touches `tasks`. `status` is kept in step by updateTasks.
 * - `tasks_app_time` does the same for queries without a host filter.
 * - `tasks_target` finds an exact target (§4.4 prefetch `target`, §3.3 `Keyword` URL, §1.7 `url`)
 *   by a 48-bit hash computed in JS: a fraction of the size of an index on the URLs themselves.
 * - `task_fts` is a contentless trigram index of `tasks.target` for the fuzzy `target` filter
 *   (§4.2): rowid = tasks.id. `detail=none` keeps it small; we AND single trigrams and re-check
 *   the substring on the row, so phrase queries are not needed. `contentless_delete=1` lets
 *   prune delete by rowid.
 * - `task_id_ranges` maps hours of createdAt to task-id bounds; ids grow with commit order, not
 *   with createdAt, so the bounds are kept per hour instead of assumed.
 * - `tasks_processing` is a partial index: only still-running tasks, in log order (timeouts scan).
 * - `quota_usage` is charged in the createJob transaction; `node_progress` holds each node's ack.
 *
 * v2 adds `refresh_records`, one row per URL or directory refresh job and host: the unit of the legacy
 * refresh log (§1.7), so that counting and paging its records walks one index range and nothing else
 * (the hardening issue: one GetCdnRefreshLog call walked every job's tasks and blocked the control
 * plane 76 s). Other job types have no records: the log never shows them, and leaving them out keeps
 * the type filter out of the walk. `ord` is the host's
 * position in its job; `record_id` is the record's public id (see RefreshRecord.id); `job_tasks` the
 * job's task count, so that a page is cut to its task budget before any job is read. Records that
 * existed before v2 get ids the same way (the old ids were row ids, the leak v2 closes).
 *
 * v3 adds `node_reports`: what each node executed for a task's log entry (driver, executed-as, matched),
 * at most one row per (task, node), so its size is bounded by tasks × nodes; keyed by task first, so a
 * job's reports are one range per task and prune deletes them with the task.
 *
 * v4 adds `webhook_deliveries`, the webhook outbox (issue 10): one row per (job, endpoint URL), written
 * by updateTasks in the transaction that settles the job's last task, so a settled job's event is as
 * durable as its status. `next_at`/`held_until` drive claiming (a partial index holds only pending rows);
 * `created_at` is the settle time, which prune compares like the jobs' (a delivery never outlives retention).
 *
 * v6 keys `tasks_target` by (app, hour of createdAt, hash) instead of (app, hash) (issue 11): under a random
 * hash every insert landed on a random leaf of an index as large as the history (inserting a task cost
 * 42 µs CPU at 1M tasks against 24 µs on an empty store, measured in-process); now inserts go to
 * the current hour's few pages. An exact-target query probes each hour of its range that has tasks
 * (`task_id_ranges`): ~2 ms CPU for 30 days at 1M tasks (was ~0.1 ms), in a read worker. The hour is
 * a VIRTUAL generated column: nothing is stored in the rows, and adding it rewrites none; only the
 * index is rebuilt (a few seconds per million tasks, once).
 *
 * v7 changes how `tasks.target_hash` is computed (issue 11: SHA-256 was ~3 µs of a task's insert; see
 * targetHash). Rows are not rewritten: an exact-target query probes both the new key and the SHA-256
 * one (legacyTargetHash), so rows from before v7 are still found. `store_meta.target_hash_v7_from_id`
 * is the first task id written with the new key: once prune has removed every task below it, the second
 * probe finds nothing and can go. A build older than v7 would miss the new rows: it refuses the database.
 *
 * v8 keys `tasks_target` by (app, task id >> 12, hash) instead of (app, hour, hash) (issue 11): within an
 * hour the hash still sent each insert to a random leaf of that hour's part of the index, so a commit of
 * 8,000 tasks dirtied most of its pages (~4 µs of a task's ~14 µs without the trigram index, measured at
 * 480,000 tasks in one hour). Now a commit's inserts go to one or two buckets of 4,096 tasks. An exact-target
 * query probes each bucket of the ids its range holds (task_id_ranges): 57 for 7 days of the seeded 1M
 * where it probed 168 hours. Only the index is rebuilt (a few seconds per million tasks, once).
 *
 * v9 replaces `task_fts` (one trigram row per task) with `task_grams`, one row per group of up to 8 tasks
 * with consecutive ids (issue 11; see indexTargets): the trigram index was half a 1,000-URL job's store
 * time, and most of what made a 1-URL purge cost more on a store with a long history (its merges). A
 * match names a group (rowid = first id << 4 | size - 1) and the row check filters its tasks, as it
 * already re-checked every match. The new index is built from the tasks in the migration and merged
 * into one segment (7 s for the seeded 1M tasks), grouped by id >> 3; a bucket's gaps (pruned tasks)
 * only widen its range.
 *
 * v10 lets the trigram index lag the tasks by a bounded backlog (issue 11): `store_meta.grams_through`
 * is the highest task id indexed; a commit indexes the tasks above it only once there are at least
 * TRIGRAM_BACKLOG_MAX of them (indexBacklog), and a fuzzy search checks those few row by row. A 1-URL
 * purge's commit otherwise flushed a tiny FTS5 segment, and FTS5 merged it into ever larger ones: most
 * of a 1-URL purge's trigram cost, and what grew with history. Every task is indexed at v10.
 *
 * v11 lets the host rows lag the tasks the same way (issue 11): `store_meta.hosts_through` is the highest
 * task id whose `task_hosts` rows and whose job's `refresh_records` are written; a commit writes those of
 * the tasks above it once there are HOST_ROWS_BACKLOG_MAX of them (writeHostRows), and a read that uses
 * them (a host filter, the legacy refresh log) writes the rest first. Both tables' host indexes are
 * keyed by host first: a commit of 1-URL purges for N hosts dirtied 2N of their leaf pages. Every
 * task's host rows are written at v11; an older build, which would not know to write them, refuses it.
 *
 * v12 narrows `tasks_target`'s buckets from 4,096 task ids to 1,024 (issue 11): the hash sends each insert
 * to a random leaf of the current bucket, so a commit of 12 1-URL purges wrote ~7.4 of that index's leaves
 * (a fifth of its WAL frames), now ~3.8. An exact-target query probes four times as many buckets, with
 * one key instead of two where its range starts after target_hash_v7_from_id: (e) of the store bench
 * p50 0.6 -> 0.8 ms. Only the index is rebuilt (a few seconds per million tasks, once).
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'jobs, tasks (purge log), hosts, trigram index, quota, node progress',
    sql: `
CREATE TABLE store_meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO store_meta (key, value) VALUES ('last_seq', 0), ('pruned_through_seq', 0);

CREATE TABLE jobs (
  job_id     TEXT PRIMARY KEY,
  app_id     INTEGER NOT NULL,
  zone_id    TEXT NOT NULL,
  type       TEXT NOT NULL,
  method     TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  secret_id  TEXT NOT NULL,
  client_ip  TEXT NOT NULL,
  source     TEXT NOT NULL,
  task_count INTEGER NOT NULL
);
CREATE INDEX jobs_app_time ON jobs (app_id, created_at, type);
CREATE INDEX jobs_time ON jobs (created_at);

CREATE TABLE tasks (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id       TEXT NOT NULL,
  app_id       INTEGER NOT NULL,
  zone_id      TEXT NOT NULL,
  type         TEXT NOT NULL,
  method       TEXT NOT NULL,
  target       TEXT NOT NULL,
  target_hash  INTEGER NOT NULL,
  log_target   TEXT,
  hosts        TEXT NOT NULL,
  headers      TEXT,
  status       TEXT NOT NULL,
  fail_type    TEXT,
  fail_message TEXT,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  seq          INTEGER
);
CREATE UNIQUE INDEX tasks_seq ON tasks (seq) WHERE seq IS NOT NULL;
CREATE INDEX tasks_job ON tasks (job_id);
CREATE INDEX tasks_app_time ON tasks (app_id, created_at, status, type, zone_id);
CREATE INDEX tasks_target ON tasks (app_id, target_hash);
CREATE INDEX tasks_processing ON tasks (seq) WHERE status = 'processing';

CREATE TABLE task_hosts (
  task_id    INTEGER NOT NULL,
  host       TEXT NOT NULL,
  app_id     INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  status     TEXT NOT NULL,
  type       TEXT NOT NULL,
  zone_id    TEXT NOT NULL,
  PRIMARY KEY (task_id, host)
) WITHOUT ROWID;
CREATE INDEX task_hosts_lookup ON task_hosts (app_id, host, created_at, status, type, zone_id);

CREATE VIRTUAL TABLE task_fts USING fts5 (
  target, tokenize = 'trigram', detail = none, content = '', contentless_delete = 1
);

-- Per hour of createdAt, the lowest and highest task id created in it: turns a query's time range
-- into a rowid range for task_fts, so a fuzzy search only walks the trigram lists of that range.
CREATE TABLE task_id_ranges (
  hour   INTEGER PRIMARY KEY,
  min_id INTEGER NOT NULL,
  max_id INTEGER NOT NULL
);

CREATE TABLE quota_usage (
  app_id     INTEGER NOT NULL,
  quota_type TEXT NOT NULL,
  day        TEXT NOT NULL,
  used       INTEGER NOT NULL,
  PRIMARY KEY (app_id, quota_type, day)
) WITHOUT ROWID;

CREATE TABLE node_progress (
  node_id   TEXT PRIMARY KEY,
  acked_seq INTEGER NOT NULL,
  seen_at   INTEGER NOT NULL
) WITHOUT ROWID;
`,
  },
  {
    version: 2,
    name: 'refresh_records: one row per refresh job and host (legacy refresh-log records)',
    sql: `
CREATE TABLE refresh_records (
  job_id     TEXT NOT NULL,
  host       TEXT NOT NULL,
  ord        INTEGER NOT NULL,
  record_id  INTEGER NOT NULL,
  app_id     INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  type       TEXT NOT NULL,
  job_tasks  INTEGER NOT NULL,
  PRIMARY KEY (job_id, host)
) WITHOUT ROWID;
CREATE UNIQUE INDEX refresh_records_id ON refresh_records (record_id);
-- Walked backwards these give the page order (newest job first, its hosts in order) with the filters
-- inside the entry: neither counting nor paging reads a row.
CREATE INDEX refresh_records_app_time ON refresh_records (app_id, created_at, job_id, ord DESC, type);
CREATE INDEX refresh_records_app_host ON refresh_records (app_id, host, created_at, job_id, type);
`,
    run: backfillRefreshRecords,
  },
  {
    version: 3,
    name: 'node_reports: per (task, node), what the node executed (issue 8)',
    sql: `
CREATE TABLE node_reports (
  task_id     INTEGER NOT NULL,
  node_id     TEXT NOT NULL,
  seq         INTEGER NOT NULL,
  driver      TEXT,
  executed_as TEXT NOT NULL,
  matched     INTEGER,
  note        TEXT,
  applied_at  INTEGER NOT NULL,
  PRIMARY KEY (task_id, node_id)
) WITHOUT ROWID;
`,
  },
  {
    version: 4,
    name: 'webhook_deliveries: the durable webhook outbox and delivery log (issue 10)',
    sql: `
CREATE TABLE webhook_deliveries (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id        TEXT NOT NULL UNIQUE,
  app_id          INTEGER NOT NULL,
  job_id          TEXT NOT NULL,
  url             TEXT NOT NULL,
  event           TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  status          TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_at         INTEGER NOT NULL,
  held_until      INTEGER NOT NULL DEFAULT 0,
  last_status     INTEGER,
  last_error      TEXT,
  last_attempt_at INTEGER,
  delivered_at    INTEGER,
  UNIQUE (job_id, url)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_app ON webhook_deliveries (app_id, id);
CREATE INDEX webhook_deliveries_time ON webhook_deliveries (created_at);
`,
  },
  {
    version: 5,
    name: 'prefetch_results: per (task, node), whether the node fetched the object (issue 9)',
    // Written in the ack's transaction: a restart between a node's report and the task's settling loses
    // nothing. Keyed like node_reports: the settle pass reads one range per task, prune deletes with the task.
    sql: `
CREATE TABLE prefetch_results (
  task_id      INTEGER NOT NULL,
  node_id      TEXT NOT NULL,
  ok           INTEGER NOT NULL,
  fail_type    TEXT,
  fail_message TEXT,
  at           INTEGER NOT NULL,
  PRIMARY KEY (task_id, node_id)
) WITHOUT ROWID;
`,
  },
  {
    version: 6,
    name: 'tasks_target keyed by hour of createdAt: inserts go to the current hour, not a random page of the history (issue 11)',
    sql: `
ALTER TABLE tasks ADD COLUMN created_hour INTEGER GENERATED ALWAYS AS (created_at / 3600000) VIRTUAL;
DROP INDEX tasks_target;
CREATE INDEX tasks_target ON tasks (app_id, created_hour, target_hash);
`,
  },
  {
    version: 7,
    name: 'tasks.target_hash from a fast 48-bit hash instead of SHA-256; rows before it keep theirs (issue 11)',
    sql: `
INSERT INTO store_meta (key, value) VALUES ('target_hash_v7_from_id', (SELECT coalesce(max(id), 0) + 1 FROM tasks));
`,
  },
  {
    version: 8,
    name: 'tasks_target keyed by buckets of 4,096 task ids: a commit\'s inserts go to one or two buckets, not random pages of the hour (issue 11)',
    // TARGET_BUCKET_BITS (sqlite-task-reader.ts) was the 12 of this expression until v12.
    sql: `
DROP INDEX tasks_target;
CREATE INDEX tasks_target ON tasks (app_id, (id >> 12), target_hash);
`,
  },
  {
    version: 9,
    name: 'trigram index by groups of up to 8 consecutive tasks instead of one row per task (issue 11)',
    // TARGET_GROUP_BITS (sqlite-rows.ts) is the 4 of these expressions, TARGET_GROUP_MAX the 8 (id >> 3).
    sql: `
CREATE VIRTUAL TABLE task_grams USING fts5 (
  targets, tokenize = 'trigram', detail = none, content = '', contentless_delete = 1
);
INSERT INTO task_grams (rowid, targets)
  SELECT (min(id) << 4) | (max(id) - min(id)), group_concat(target, char(10)) FROM tasks GROUP BY id >> 3;
INSERT INTO task_grams (task_grams) VALUES ('optimize');
DROP TABLE task_fts;
`,
  },
  {
    version: 10,
    name: 'trigram index behind the tasks by a bounded backlog, store_meta.grams_through (issue 11)',
    sql: `
INSERT INTO store_meta (key, value) SELECT 'grams_through', coalesce(max(id), 0) FROM tasks;
`,
  },
  {
    version: 11,
    name: 'host rows (task_hosts, refresh_records) behind the tasks by a bounded backlog, store_meta.hosts_through (issue 11)',
    sql: `
INSERT INTO store_meta (key, value) SELECT 'hosts_through', coalesce(max(id), 0) FROM tasks;
`,
  },
  {
    version: 12,
    name: 'tasks_target keyed by buckets of 1,024 task ids instead of 4,096: a commit\'s inserts dirty fewer of the current bucket\'s leaves (issue 11)',
    // TARGET_BUCKET_BITS (sqlite-task-reader.ts) is the 10 of this expression.
    sql: `
DROP INDEX tasks_target;
CREATE INDEX tasks_target ON tasks (app_id, (id >> 10), target_hash);
`,
  },
];

/** v2: the records of every job already stored, exactly as createJob now writes them. */
function backfillRefreshRecords(db: DatabaseSync): void {
  const jobs = db.prepare(`SELECT job_id, app_id, created_at, type FROM jobs WHERE type IN ('purge_url', 'purge_prefix') ORDER BY job_id`);
  const hosts = db.prepare('SELECT hosts FROM tasks WHERE job_id = ? ORDER BY id');
  for (const j of jobs.iterate() as Iterable<{ job_id: string; app_id: number; created_at: number; type: string }>) {
    const lists = (hosts.all(j.job_id) as Array<{ hosts: string }>).map((r) => JSON.parse(r.hosts) as string[]);
    insertRefreshRecords((sql) => db.prepare(sql), { jobId: j.job_id, appId: j.app_id, createdAt: j.created_at, type: j.type, taskCount: lists.length }, lists.flat());
  }
}

export const LATEST_VERSION: number = MIGRATIONS.reduce((v, m) => Math.max(v, m.version), 0);

function userVersion(db: DatabaseSync): number {
  const row = db.prepare('PRAGMA user_version').get() as { user_version?: number } | undefined;
  return row?.user_version ?? 0;
}

/**
 * Applies every migration newer than the database's `user_version`, all in one IMMEDIATE
 * transaction (two processes starting together: the second waits, then finds nothing to do).
 * Returns the versions applied. Refuses a database written by a newer build.
 */
export function migrate(db: DatabaseSync, migrations: readonly Migration[] = MIGRATIONS): number[] {
  const applied: number[] = [];
  db.exec('BEGIN IMMEDIATE');
  try {
    const current = userVersion(db);
    const latest = migrations.reduce((v, m) => Math.max(v, m.version), 0);
    if (current > latest) {
      throw new Error(
        `the task database is at schema version ${current} but this build only knows up to ${latest}; ` +
          'run a newer EdgePurge build against it (downgrades are not supported)',
      );
    }
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (m.version <= current) continue;
      try {
        db.exec(m.sql);
        m.run?.(db);
      } catch (e) {
        throw new Error(`store migration ${m.version} (${m.name}) failed: ${(e as Error).message}`, { cause: e });
      }
      // PRAGMA takes no bound parameters; the version is an integer we control.
      db.exec(`PRAGMA user_version = ${Math.trunc(m.version)}`);
      applied.push(m.version);
    }
    db.exec('COMMIT');
  } catch (e) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw e;
  }
  return applied;
}
