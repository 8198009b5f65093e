// `edgepurge store migrate`: moves a SQLite store (the embedded default) into PostgreSQL, so that one
// machine can grow into replicas. History (jobs, tasks, refresh records, node reports), the purge log,
// quota usage and node progress move in ONE PostgreSQL transaction: the target has all of it or none.
// Counts are checked before COMMIT. The control plane must be stopped while it runs (a job accepted
// meanwhile would not move); nodes then resume on PostgreSQL from their applied seq (same seqs).
import { existsSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { quoteIdent } from './postgres/migrations.ts';
import { DAY_MS, partitionName } from './postgres/postgres-partitions.ts';
import { PostgresTaskStore } from './postgres/postgres-task-store.ts';
import { LATEST_VERSION } from './sqlite/migrations.ts';
import { writeHostRows } from './sqlite/sqlite-rows.ts';
import { SqliteTaskStore } from './sqlite/sqlite-task-store.ts';

export interface StoreMigrateOptions {
  /** The SQLite file. */
  readonly from: string;
  /** postgres://… */
  readonly to: string;
  /** Target schema (default public). */
  readonly schema?: string;
  /** Empty a target that holds data first (in the same transaction); otherwise such a target is refused. */
  readonly replace?: boolean;
  /** Rows per INSERT (default 5000). */
  readonly batch?: number;
  /** Called after each batch with the table and the rows moved so far. */
  readonly onProgress?: (table: string, rows: number) => void;
}

export interface StoreMigrateResult {
  /** Rows per target table (each equal to the source's, or the migration rolled back). */
  readonly counts: Readonly<Record<MovedTable, number>>;
  readonly lastSeq: number;
}

/** The target refused (not empty): nothing was written. */
export class MigrateRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrateRefusedError';
  }
}

const MOVED_TABLES = ['jobs', 'tasks', 'task_hosts', 'purge_log', 'refresh_records', 'quota_usage', 'node_progress', 'node_reports', 'prefetch_results', 'webhook_deliveries'] as const;
type MovedTable = (typeof MOVED_TABLES)[number];

/** What each target table holds, counted in the source. */
const SOURCE_COUNTS: Record<MovedTable, string> = {
  jobs: 'SELECT count(*) AS n FROM jobs',
  tasks: 'SELECT count(*) AS n FROM tasks',
  task_hosts: 'SELECT count(*) AS n FROM task_hosts',
  purge_log: 'SELECT count(*) AS n FROM tasks WHERE seq IS NOT NULL',
  refresh_records: 'SELECT count(*) AS n FROM refresh_records',
  quota_usage: 'SELECT count(*) AS n FROM quota_usage',
  node_progress: 'SELECT count(*) AS n FROM node_progress',
  // Reports live and die with their task; one without it is not part of the history.
  node_reports: 'SELECT count(*) AS n FROM node_reports r JOIN tasks t ON t.id = r.task_id',
  prefetch_results: 'SELECT count(*) AS n FROM prefetch_results r JOIN tasks t ON t.id = r.task_id',
  webhook_deliveries: 'SELECT count(*) AS n FROM webhook_deliveries',
};

type Row = Record<string, unknown>;

/** One source query (ordered, read whole) and the statement that inserts a batch of its rows (JSON in $1). */
interface Copy {
  readonly table: MovedTable | 'tasks, task_hosts, purge_log';
  readonly select: string;
  readonly row?: (r: Row) => Row;
  readonly insert: string;
}

const COPIES: readonly Copy[] = [
  {
    table: 'jobs',
    select: 'SELECT job_id, app_id, zone_id, type, method, created_at, secret_id, client_ip, source, task_count FROM jobs ORDER BY job_id',
    insert: `INSERT INTO jobs (job_id, app_id, zone_id, type, method, created_at, secret_id, client_ip, source, task_count)
             SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(job_id text, app_id bigint, zone_id text, type text, method text,
               created_at bigint, secret_id text, client_ip text, source text, task_count integer)`,
  },
  {
    // One statement per batch writes a task, its host rows and its log entry, as createJob does.
    table: 'tasks, task_hosts, purge_log',
    select: `SELECT id, job_id, app_id, zone_id, type, method, target, log_target, hosts, headers, status, fail_type, fail_message,
               created_at, updated_at, seq FROM tasks ORDER BY id`,
    row: (r) => ({ ...r, hosts: JSON.parse(r.hosts as string), headers: r.headers === null ? null : JSON.parse(r.headers as string) }),
    insert: `WITH x AS (
               SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id bigint, job_id text, app_id bigint, zone_id text, type text, method text,
                 target text, log_target text, hosts text[], headers jsonb, status text, fail_type text, fail_message text,
                 created_at bigint, updated_at bigint, seq bigint)
             ), t AS (
               INSERT INTO tasks (id, job_id, app_id, zone_id, type, method, target, hosts, status, fail_type, fail_message, created_at, updated_at, seq)
               SELECT id, job_id, app_id, zone_id, type, method, target, hosts, status, fail_type, fail_message, created_at, updated_at, seq FROM x
             ), h AS (
               INSERT INTO task_hosts (task_id, host, app_id, created_at, status, type, zone_id)
               SELECT x.id, h.host, x.app_id, x.created_at, x.status, x.type, x.zone_id FROM x CROSS JOIN unnest(x.hosts) AS h(host)
             )
             INSERT INTO purge_log (seq, task_id, job_id, app_id, type, method, hosts, target, headers, created_at)
             SELECT seq, id, job_id, app_id, type, method, hosts, coalesce(log_target, target), headers, created_at FROM x WHERE seq IS NOT NULL`,
  },
  {
    table: 'refresh_records',
    select: 'SELECT job_id, host, ord, record_id, app_id, created_at, type, job_tasks FROM refresh_records ORDER BY job_id, host',
    insert: `INSERT INTO refresh_records (job_id, host, ord, record_id, app_id, created_at, type, job_tasks)
             SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(job_id text, host text, ord integer, record_id bigint, app_id bigint,
               created_at bigint, type text, job_tasks integer)`,
  },
  {
    table: 'quota_usage',
    select: 'SELECT app_id, quota_type, day, used FROM quota_usage ORDER BY app_id, quota_type, day',
    insert: `INSERT INTO quota_usage (app_id, quota_type, day, used)
             SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(app_id bigint, quota_type text, day text, used bigint)`,
  },
  {
    table: 'node_progress',
    select: 'SELECT node_id, acked_seq, seen_at FROM node_progress ORDER BY node_id',
    insert: `INSERT INTO node_progress (node_id, acked_seq, seen_at)
             SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(node_id text, acked_seq bigint, seen_at bigint)`,
  },
  {
    table: 'node_reports',
    select: `SELECT r.task_id, r.node_id, r.seq, r.driver, r.executed_as, r.matched, r.note, r.applied_at, t.job_id, t.app_id, t.created_at
               FROM node_reports r JOIN tasks t ON t.id = r.task_id ORDER BY r.task_id, r.node_id`,
    insert: `INSERT INTO node_reports (task_id, node_id, seq, driver, executed_as, matched, note, applied_at, job_id, app_id, created_at)
             SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(task_id bigint, node_id text, seq bigint, driver text, executed_as text,
               matched bigint, note text, applied_at bigint, job_id text, app_id bigint, created_at bigint)`,
  },
  {
    // Results of prefetches still processing settle them on the target (issue 9); settled ones are shown.
    table: 'prefetch_results',
    select: `SELECT r.task_id, r.node_id, r.ok, r.fail_type, r.fail_message, r.at, t.created_at
               FROM prefetch_results r JOIN tasks t ON t.id = r.task_id ORDER BY r.task_id, r.node_id`,
    row: (r) => ({ ...r, ok: r.ok === 1 }),
    insert: `INSERT INTO prefetch_results (task_id, node_id, ok, fail_type, fail_message, at, created_at)
             SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(task_id bigint, node_id text, ok boolean, fail_type text,
               fail_message text, at bigint, created_at bigint)`,
  },
  {
    // The webhook outbox and its log, in enqueue order (new ids keep it); holds are dropped, so pending
    // deliveries go out as soon as a control plane runs on the target.
    table: 'webhook_deliveries',
    select: `SELECT event_id, app_id, job_id, url, event, created_at, status, attempts, next_at, last_status, last_error, last_attempt_at, delivered_at
               FROM webhook_deliveries ORDER BY id`,
    insert: `INSERT INTO webhook_deliveries (event_id, app_id, job_id, url, event, created_at, status, attempts, next_at, last_status, last_error, last_attempt_at, delivered_at)
             SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(event_id text, app_id bigint, job_id text, url text, event text, created_at bigint,
               status text, attempts integer, next_at bigint, last_status integer, last_error text, last_attempt_at bigint, delivered_at bigint)`,
  },
];

/** Moves the SQLite store at `o.from` into the PostgreSQL store at `o.to` (see the file comment). */
export async function migrateSqliteToPostgres(o: StoreMigrateOptions): Promise<StoreMigrateResult> {
  const schema = o.schema ?? 'public';
  const batch = o.batch ?? 5000;
  if (!existsSync(o.from)) throw new Error(`no SQLite store at ${o.from}`);
  await upgradeSqlite(o.from);
  // The target's schema, as a replica starting on it would make it (migrations under the advisory lock).
  const target = new PostgresTaskStore({ url: o.to, schema, pool: { max: 2 } });
  try {
    await target.start();
  } finally {
    await target.close();
  }

  writeWaitingHostRows(o.from);
  const src = new DatabaseSync(o.from, { readOnly: true });
  const client = new pg.Client({ connectionString: o.to, options: `-c search_path=${quoteIdent(schema)},public` });
  // A lost connection fails the query in flight (and so the move); unheard, it would also crash the process.
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query('BEGIN');
    try {
      const result = await copyAll(src, client, schema, batch, o);
      await client.query('COMMIT');
      return result;
    } catch (e) {
      await client.query('ROLLBACK');
      throw e;
    }
  } finally {
    await client.end();
    src.close();
  }
}

/** Writes the host rows a SQLite store still owes (writeHostRows): the copy reads task_hosts' source and refresh_records whole. */
function writeWaitingHostRows(path: string): void {
  const db = new DatabaseSync(path, { timeout: 5000 });
  try {
    db.exec('BEGIN IMMEDIATE');
    try {
      writeHostRows((sql) => db.prepare(sql), 0);
      db.exec('COMMIT');
    } catch (e) {
      db.exec('ROLLBACK');
      throw e;
    }
  } finally {
    db.close();
  }
}

/** Brings an older SQLite file to this build's schema (what `serve` would do on it); refuses a newer one. */
async function upgradeSqlite(path: string): Promise<void> {
  const db = new DatabaseSync(path, { readOnly: true });
  let version: number;
  try {
    version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  } finally {
    db.close();
  }
  if (version === LATEST_VERSION) return;
  if (version === 0) throw new Error(`${path} is not an EdgePurge store (no schema version)`);
  const store = new SqliteTaskStore({ path });
  try {
    await store.start();
  } finally {
    await store.close();
  }
}

async function copyAll(src: DatabaseSync, client: pg.Client, schema: string, batch: number, o: StoreMigrateOptions): Promise<StoreMigrateResult> {
  // Every table of the schema (those other features add too), so that a replica started on the target
  // meanwhile waits, and --replace leaves nothing of the old store behind.
  const tables = (
    await client.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'schema_migrations' ORDER BY 1`,
      [schema],
    )
  ).rows.map((r) => quoteIdent(r.name));
  await client.query(`LOCK TABLE ${tables.join(', ')} IN ACCESS EXCLUSIVE MODE`);
  const data = tables.filter((t) => t !== '"store_meta"');
  const held: string[] = [];
  for (const t of data) if ((await client.query(`SELECT EXISTS (SELECT 1 FROM ${t}) AS any`)).rows[0].any) held.push(t);
  const lastSeqThere = Number((await client.query("SELECT value FROM store_meta WHERE key = 'last_seq'")).rows[0]?.value ?? 0);
  if (held.length > 0 || lastSeqThere > 0) {
    if (!o.replace) {
      throw new MigrateRefusedError(
        `the target schema "${schema}" is not empty (${held.length ? `rows in ${held.join(', ')}` : `purge log at seq ${lastSeqThere}`}); ` +
          'migrate into an empty schema (--schema NAME), or pass --replace to empty it first (its data is lost)',
      );
    }
    await client.query(`TRUNCATE ${data.join(', ')}`);
  }

  // Day partitions for every day the history covers.
  const days = (src.prepare(`SELECT DISTINCT created_at / ${DAY_MS} AS day FROM tasks`).all() as Array<{ day: number }>).map((r) => r.day);
  for (const day of days) {
    for (const table of ['tasks', 'task_hosts']) {
      await client.query(`CREATE TABLE IF NOT EXISTS ${partitionName(table, day)} PARTITION OF ${table} FOR VALUES FROM (${day * DAY_MS}) TO (${(day + 1) * DAY_MS})`);
    }
  }

  for (const c of COPIES) {
    let rows: Row[] = [];
    let moved = 0;
    const flush = async () => {
      if (rows.length === 0) return;
      await client.query(c.insert, [JSON.stringify(rows)]);
      moved += rows.length;
      rows = [];
      o.onProgress?.(c.table, moved);
    };
    for (const r of src.prepare(c.select).iterate() as Iterable<Row>) {
      rows.push(c.row ? c.row(r) : r);
      if (rows.length >= batch) await flush();
    }
    await flush();
  }

  // The log counter and the retained-log floor, as the source had them: seqs are never reused, and a
  // node that fell behind the source's retained log still gets its reset.
  const meta = new Map((src.prepare('SELECT key, value FROM store_meta').all() as Array<{ key: string; value: number }>).map((r) => [r.key, r.value]));
  const lastSeq = meta.get('last_seq') ?? 0;
  await client.query('UPDATE store_meta SET value = $2 WHERE key = $1', ['last_seq', lastSeq]);
  await client.query('UPDATE store_meta SET value = $2 WHERE key = $1', ['pruned_through_seq', meta.get('pruned_through_seq') ?? 0]);
  // New task ids continue after the moved ones (ids are public: DescribePurgeTasks TaskId).
  const maxId = (src.prepare("SELECT max(id) AS m FROM tasks").get() as { m: number | null }).m;
  const seqRow = src.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'tasks'").get() as { seq: number } | undefined;
  const nextAfter = Math.max(maxId ?? 0, seqRow?.seq ?? 0);
  if (nextAfter > 0) await client.query("SELECT setval('tasks_id_seq', $1)", [nextAfter]);

  const counts = {} as Record<MovedTable, number>;
  const wrong: string[] = [];
  for (const t of MOVED_TABLES) {
    const want = (src.prepare(SOURCE_COUNTS[t]).get() as { n: number }).n;
    const got = Number((await client.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
    counts[t] = got;
    if (got !== want) wrong.push(`${t}: ${got} rows in PostgreSQL, ${want} in SQLite`);
  }
  if (wrong.length) throw new Error(`the counts differ after the copy (rolled back, nothing written): ${wrong.join('; ')}`);
  return { counts, lastSeq };
}
