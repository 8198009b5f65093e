// The PostgreSQL schema as an ordered list of migrations, tracked in `schema_migrations` and applied
// under a session advisory lock so that replicas starting together apply each one exactly once.
import type { PoolClient } from 'pg';

export interface PgMigration {
  /** 1, 2, 3… in order; `schema_migrations` holds one row per version applied. */
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * Append only: never edit a migration that has shipped, add the next one.
 *
 * Layout (v1), and why:
 * - `store_meta` holds `last_seq` (the purge-log counter, see postgres-task-store.ts "Log order") and
 *   `pruned_through_seq`, in separate rows so that pruning never takes the counter's row lock.
 * - `jobs` and `refresh_records` need ids unique across all time (a job id, a public record id), which
 *   a partitioned table cannot enforce, and hold one row per job (host): plain tables, pruned by an
 *   index range on created_at.
 * - `tasks` and `task_hosts` are the bulk of the history: partitioned by day of created_at (UTC), so
 *   that retention drops whole days (postgres-partitions.ts) and a time-bounded query reads only the
 *   partitions of its range. Each partition gets the parent's indexes:
 *   - `tasks (app_id, created_at, id) INCLUDE (status, type, zone_id)`: a query without a host or
 *     text filter counts from the index alone (index-only scan).
 *   - `task_hosts (app_id, host, created_at, task_id) INCLUDE (status, type, zone_id)`: the same for
 *     domain-filtered queries (DescribePurgeTasks `domains`, §4.2).
 *   - `tasks (app_id, hashtextextended(target, 0))`: exact target; a hash keeps long URLs out of the
 *     b-tree (whose entries are capped at ~2.7 kB).
 *   - `tasks USING gin (target gin_trgm_ops)`: fuzzy target (pg_trgm serves ILIKE '%needle%'); on the folded
 *     target since migration 7, with the hosts since migration 8.
 *   - `tasks (seq) WHERE status = 'processing'`: the timeout scan.
 * - `purge_log` is the ordered log edges stream (one row per fanned-out task, immutable, denormalised):
 *   readLog is one primary-key range, whatever the size of the history.
 * - Ids and host names compare byte by byte (COLLATE "C"): the page order is the same as SQLite's
 *   whatever the database's locale.
 * - `quota_usage` is charged in the createJob transaction; `node_progress` holds each node's ack.
 */
export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    name: 'jobs, day-partitioned tasks and hosts, purge log, refresh records, quota, node progress',
    sql: `
-- In public, which every store schema's search_path holds: created in the first store's own schema, its
-- operator classes were out of reach of a second store schema on the same database.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;

CREATE TABLE store_meta (
  key   text PRIMARY KEY,
  value bigint NOT NULL
);
INSERT INTO store_meta (key, value) VALUES ('last_seq', 0), ('pruned_through_seq', 0);

CREATE TABLE jobs (
  job_id     text COLLATE "C" PRIMARY KEY,
  app_id     bigint NOT NULL,
  zone_id    text NOT NULL,
  type       text NOT NULL,
  method     text NOT NULL,
  created_at bigint NOT NULL,
  secret_id  text NOT NULL,
  client_ip  text NOT NULL,
  source     text NOT NULL,
  task_count integer NOT NULL
);
CREATE INDEX jobs_time ON jobs (created_at);

CREATE SEQUENCE tasks_id_seq AS bigint;
CREATE TABLE tasks (
  id           bigint NOT NULL,
  job_id       text COLLATE "C" NOT NULL,
  app_id       bigint NOT NULL,
  zone_id      text NOT NULL,
  type         text NOT NULL,
  method       text NOT NULL,
  target       text NOT NULL,
  hosts        text[] NOT NULL,
  status       text NOT NULL,
  fail_type    text,
  fail_message text,
  created_at   bigint NOT NULL,
  updated_at   bigint NOT NULL,
  seq          bigint
) PARTITION BY RANGE (created_at);
CREATE INDEX tasks_id ON tasks (id);
CREATE INDEX tasks_job ON tasks (job_id);
CREATE INDEX tasks_app_time ON tasks (app_id, created_at, id) INCLUDE (status, type, zone_id);
CREATE INDEX tasks_target ON tasks (app_id, hashtextextended(target, 0));
CREATE INDEX tasks_target_trgm ON tasks USING gin (target gin_trgm_ops);
CREATE INDEX tasks_processing ON tasks (seq) WHERE status = 'processing';

CREATE TABLE task_hosts (
  task_id    bigint NOT NULL,
  host       text COLLATE "C" NOT NULL,
  app_id     bigint NOT NULL,
  created_at bigint NOT NULL,
  status     text NOT NULL,
  type       text NOT NULL,
  zone_id    text NOT NULL
) PARTITION BY RANGE (created_at);
CREATE INDEX task_hosts_lookup ON task_hosts (app_id, host, created_at, task_id) INCLUDE (status, type, zone_id);
CREATE INDEX task_hosts_task ON task_hosts (task_id);

CREATE TABLE purge_log (
  seq        bigint PRIMARY KEY,
  task_id    bigint NOT NULL,
  job_id     text NOT NULL,
  app_id     bigint NOT NULL,
  type       text NOT NULL,
  method     text NOT NULL,
  hosts      text[] NOT NULL,
  target     text NOT NULL,
  headers    jsonb,
  created_at bigint NOT NULL
);

CREATE TABLE refresh_records (
  job_id     text COLLATE "C" NOT NULL,
  host       text COLLATE "C" NOT NULL,
  ord        integer NOT NULL,
  record_id  bigint NOT NULL UNIQUE,
  app_id     bigint NOT NULL,
  created_at bigint NOT NULL,
  type       text NOT NULL,
  job_tasks  integer NOT NULL,
  PRIMARY KEY (job_id, host)
);
CREATE INDEX refresh_records_app_time ON refresh_records (app_id, created_at, job_id, ord) INCLUDE (type, host);
CREATE INDEX refresh_records_app_host ON refresh_records (app_id, host, created_at, job_id) INCLUDE (type);
CREATE INDEX refresh_records_time ON refresh_records (created_at);

CREATE TABLE quota_usage (
  app_id     bigint NOT NULL,
  quota_type text NOT NULL,
  day        text NOT NULL,
  used       bigint NOT NULL,
  PRIMARY KEY (app_id, quota_type, day)
);

CREATE TABLE node_progress (
  node_id   text COLLATE "C" PRIMARY KEY,
  acked_seq bigint NOT NULL,
  seen_at   bigint NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'node_reports: per (task, node), what the node executed (issue 8)',
    // Keyed like SQLite's; created_at is the task's, so retention deletes by one index range.
    sql: `
CREATE TABLE node_reports (
  task_id     bigint NOT NULL,
  node_id     text COLLATE "C" NOT NULL,
  seq         bigint NOT NULL,
  driver      text,
  executed_as text NOT NULL,
  matched     bigint,
  note        text,
  applied_at  bigint NOT NULL,
  job_id      text COLLATE "C" NOT NULL,
  app_id      bigint NOT NULL,
  created_at  bigint NOT NULL,
  PRIMARY KEY (task_id, node_id)
);
CREATE INDEX node_reports_job ON node_reports (job_id, app_id);
CREATE INDEX node_reports_time ON node_reports (created_at);
`,
  },
  {
    // What replicas share besides the data (postgres-replicas.ts). Both tables are written on a pool with
    // synchronous_commit=off: an admission costs no WAL flush wait.
    // - `rate_buckets`: one token bucket per (account, action); UNLOGGED (no WAL at all): a PostgreSQL crash
    //   empties it, which only refills every bucket. Bounded by accounts × actions.
    // - `replay_nonces`: accepted signed requests while their Timestamp is inside the window; logged, so a
    //   crash forgets at most the last few hundred ms of them. Expired by the nonce-expiry duty.
    version: 3,
    name: 'replica rate buckets and replay nonces',
    sql: `
CREATE UNLOGGED TABLE rate_buckets (
  key    text COLLATE "C" PRIMARY KEY,
  tokens double precision NOT NULL,
  at     bigint NOT NULL
);
CREATE TABLE replay_nonces (
  key        text COLLATE "C" PRIMARY KEY,
  expires_at bigint NOT NULL
);
CREATE INDEX replay_nonces_expiry ON replay_nonces (expires_at);
`,
  },
  {
    version: 4,
    name: 'status-first covering indexes (DescribePurgeTasks status filters at 10M tasks)',
    // A status filter is a range of these (one per status, and per domain), newest first: a rare status
    // is counted and paged without walking the other statuses' entries of the time range. Built on the
    // parents, so on every day partition; the build blocks writes while it runs (minutes per 10M tasks).
    sql: `
CREATE INDEX tasks_app_status_time ON tasks (app_id, status, created_at, id) INCLUDE (type, zone_id);
CREATE INDEX task_hosts_status ON task_hosts (app_id, host, status, created_at, task_id) INCLUDE (type, zone_id);
`,
  },
  {
    version: 5,
    name: 'webhook_deliveries: the durable webhook outbox and delivery log (issue 10)',
    // As SQLite's v4. UNIQUE (job_id, url) backs ON CONFLICT: two replicas never enqueue one event twice.
    sql: `
CREATE TABLE webhook_deliveries (
  id              bigserial PRIMARY KEY,
  event_id        text COLLATE "C" NOT NULL UNIQUE,
  app_id          bigint NOT NULL,
  job_id          text COLLATE "C" NOT NULL,
  url             text COLLATE "C" NOT NULL,
  event           text NOT NULL,
  created_at      bigint NOT NULL,
  status          text NOT NULL,
  attempts        integer NOT NULL DEFAULT 0,
  next_at         bigint NOT NULL,
  held_until      bigint NOT NULL DEFAULT 0,
  last_status     integer,
  last_error      text,
  last_attempt_at bigint,
  delivered_at    bigint,
  UNIQUE (job_id, url)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_app ON webhook_deliveries (app_id, id);
CREATE INDEX webhook_deliveries_time ON webhook_deliveries (created_at);
`,
  },
  {
    version: 6,
    name: 'prefetch_results: per (task, node), whether the node fetched the object (issue 9)',
    // As SQLite's v5, written in the ack's transaction: whichever replica takes a node's result, the leader
    // settles with it, and a replica's death loses none. created_at is the task's (retention, as node_reports).
    sql: `
CREATE TABLE prefetch_results (
  task_id      bigint NOT NULL,
  node_id      text COLLATE "C" NOT NULL,
  ok           boolean NOT NULL,
  fail_type    text,
  fail_message text,
  at           bigint NOT NULL,
  created_at   bigint NOT NULL,
  PRIMARY KEY (task_id, node_id)
);
CREATE INDEX prefetch_results_time ON prefetch_results (created_at);
`,
  },
  {
    version: 7,
    name: 'fuzzy target: trigram index on the target folded (ASCII lower case, URL punctuation as q) instead of the raw target',
    // pg_trgm cuts text into words at punctuation, so a needle such as `t-playli` (a file name's slice) had
    // only the trigrams of `playli`: 19,000 candidates a day at 10M for 1,700 matches, each a heap visit.
    // Folded (postgres-task-reader.ts TARGET_FOLD_SQL, the same text), a URL is one word and `tqplayli` keeps
    // the trigrams that cross the punctuation (`tqp`): 2,850 candidates. The fold maps characters one to one,
    // so a target containing the needle (ASCII case-insensitively) contains the folded needle: the index only
    // narrows, the row check stays exact. On an existing store the build blocks writes while it runs
    // (minutes per 10 million tasks); the old index goes (nothing reads it any more, every insert paid for it).
    // ANALYZE: the planner weighs a window's rows against the needle's candidates by the statistics of the
    // indexed expression, which only ANALYZE gathers (autovacuum may not for days on a settled history).
    sql: `
CREATE INDEX tasks_target_fold ON tasks USING gin ((replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(lower(target COLLATE "C"), '-', 'q'), '.', 'q'), '/', 'q'), '_', 'q'), ':', 'q'), '?', 'q'), '=', 'q'), '&', 'q'), '%', 'q'), '+', 'q'), ',', 'q'), '~', 'q')) gin_trgm_ops);
DROP INDEX tasks_target_trgm;
ANALYZE tasks;
`,
  },
  {
    version: 8,
    name: 'fuzzy target: the trigram index also holds each task\'s hosts (a fuzzy + domain query checks only the domain\'s candidates)',
    // A fuzzy query with a domain checked every candidate of the needle on its row for the domain: a week of
    // `er-season` at 10M is ~10,000 candidates for 383 tasks of one domain (65 ms of server CPU, hot). With
    // `hosts` as the index's first column, GIN intersects the domain's entries with the needle's: on one day
    // 87 candidates instead of 1,800 (1.7 ms instead of 6.1, hot; 3.2 instead of 23 cold), and a query
    // without a domain reads the same trigram entries as before (GIN keeps each column's keys apart). As
    // migration 7: the build blocks writes while it runs (about 9 s a day of 333,000 tasks here), the old
    // index goes, ANALYZE gathers the expression's statistics for the new one.
    sql: `
CREATE INDEX tasks_hosts_target_fold ON tasks USING gin (hosts, (replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(lower(target COLLATE "C"), '-', 'q'), '.', 'q'), '/', 'q'), '_', 'q'), ':', 'q'), '?', 'q'), '=', 'q'), '&', 'q'), '%', 'q'), '+', 'q'), ',', 'q'), '~', 'q')) gin_trgm_ops);
DROP INDEX tasks_target_fold;
ANALYZE tasks;
`,
  },
];

export const PG_LATEST_VERSION: number = PG_MIGRATIONS.reduce((v, m) => Math.max(v, m.version), 0);

/** Advisory-lock key of the migrations of one schema (two schemas on one server migrate independently). */
export const migrationLockKey = (schema: string): string => `edgepurge.migrate.${schema}`;

/**
 * Applies every migration newer than the last one recorded, each in its own transaction, while holding a
 * session advisory lock on the schema: replicas starting together queue on the lock, and the later ones
 * find nothing left to do. A process killed mid-migration leaves that migration rolled back and its
 * lock released (the session ends). Returns the versions applied; refuses a schema from a newer build.
 */
export async function migrate(client: Pick<PoolClient, 'query'>, schema: string, migrations: readonly PgMigration[] = PG_MIGRATIONS): Promise<number[]> {
  const key = migrationLockKey(schema);
  await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [key]);
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    // The connection's search_path names the schema first, but a session that began before the schema
    // existed could go on resolving names in public: CI saw a second store's whole table set, with its
    // own counters, created in public by replicas starting together (one replica's batches then counted
    // quota and seqs of their own). Set again, the path is resolved anew; checked, nothing lands elsewhere.
    await client.query(`SET search_path TO ${quoteIdent(schema)}, public`);
    const inSchema = (await client.query<{ s: string | null }>('SELECT current_schema() AS s')).rows[0]?.s;
    if (inSchema !== schema) throw new Error(`the store's schema ${schema} is not the session's current schema (${inSchema ?? 'none'}); refusing to migrate elsewhere`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    const current = Math.max(0, ...done);
    const latest = migrations.reduce((v, m) => Math.max(v, m.version), 0);
    if (current > latest) {
      throw new Error(
        `the task database is at schema version ${current} but this build only knows up to ${latest}; ` +
          'run a newer EdgePurge build against it (downgrades are not supported)',
      );
    }
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK');
        throw new Error(`store migration ${m.version} (${m.name}) failed: ${(e as Error).message}`, { cause: e });
      }
      applied.push(m.version);
    }
    return applied;
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
  }
}

/** A PostgreSQL identifier, quoted (schema names come from the configuration). */
export const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;
