// The PostgreSQL bench's history (issue 9): 10,000,000 tasks over 30 days, loaded the way a bulk import
// would (bare day tables filled by one INSERT … SELECT each, indexed once, attached as partitions).
// `EDGEPURGE_PG_BENCH_DB=pgquery_bench` keeps the database between runs: a database already holding the
// wanted history is reused as is (seeding takes minutes), anything else is (re)created.
// Run alone: EDGEPURGE_PG_BENCH_DB=name nice npx node bench/pg-seed.ts [tasks]
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { partitionName, DAY_MS } from '../src/store/postgres/postgres-partitions.ts';
import { PostgresTaskStore } from '../src/store/postgres/postgres-task-store.ts';
import { DOMAINS, EXTS, SECTIONS, WORDS, ZONES } from './store-bench.ts';

/** The account the bench queries (95 % of the history); a second one holds the rest. */
export const APP = 1250000001;
export const OTHER_APP = 1250000002;
const OTHER_ZONE = 'zone-7otherapp0001';
export const SPAN_DAYS = 30;
/** The history ends here (exclusive); its newest day is the day before. */
export const END = Date.UTC(2026, 1, 1);
export const LAST_DAY = Math.floor(END / DAY_MS) - 1;
const ADMIN = process.env.EDGEPURGE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const sqlArray = (xs: readonly string[]): string => `ARRAY[${xs.map((x) => `'${x.replaceAll("'", "''")}'`).join(', ')}]`;

/**
 * One day of synthetic history into `tasks`/`task_hosts` (partitions of `day`) and `jobs`. Jobs of 8
 * tasks share createdAt, type, zone and account; statuses and types mixed as in production; targets like
 * the SQLite bench's (bench/store-bench.ts): https://domain/section/2026/01/word-word-NNNNNNN.ext.
 */
export async function seedDay(c: pg.Client, day: number, n: number, firstId: number): Promise<void> {
  const t = partitionName('tasks', day);
  const h = partitionName('task_hosts', day);
  const from = day * DAY_MS;
  await c.query(`CREATE TABLE ${t} (LIKE tasks)`);
  await c.query(`CREATE TABLE ${h} (LIKE task_hosts)`);
  await c.query(
    `INSERT INTO ${t} (id, job_id, app_id, zone_id, type, method, target, hosts, status, created_at, updated_at, seq)
     SELECT id, 'b' || lpad(to_hex(id / 8), 11, '0'), CASE WHEN other THEN ${OTHER_APP} ELSE ${APP} END,
            CASE WHEN other THEN '${OTHER_ZONE}' WHEN di < 12 THEN '${ZONES[0]}' ELSE '${ZONES[1]}' END,
            CASE WHEN rt < 0.7 THEN 'purge_url' WHEN rt < 0.82 THEN 'purge_prefix' WHEN rt < 0.94 THEN 'prefetch_url'
                 WHEN rt < 0.97 THEN 'purge_host' WHEN rt < 0.985 THEN 'purge_all' ELSE 'purge_cache_tag' END,
            CASE WHEN rm < 0.9 THEN 'invalidate' ELSE 'delete' END,
            'https://' || d[di + 1] || '/' || s[1 + floor(r1 * ${SECTIONS.length})::int] || '/2026/01/' || w[1 + floor(r2 * ${WORDS.length})::int]
              || '-' || w[1 + floor(r3 * ${WORDS.length})::int] || '-' || (100000 + floor(r4 * 9000000))::bigint || '.' || e[1 + floor(r5 * ${EXTS.length})::int],
            ARRAY[d[di + 1]],
            CASE WHEN rs < 0.86 THEN 'success' WHEN rs < 0.90 THEN 'failed' WHEN rs < 0.93 THEN 'timeout' WHEN rs < 0.95 THEN 'processing'
                 WHEN rs < 0.97 THEN 'canceled' ELSE 'invalid' END,
            ts, ts, NULL
     FROM (SELECT ${firstId} + g AS id, ${from} + ((g / 8) * 8 * ${DAY_MS}::bigint / ${n}) AS ts, floor(random() * ${DOMAINS.length})::int AS di,
                  (hashint8((${firstId} + g) / 8) % 20) = 0 AS other,
                  random() AS rt, random() AS rm, random() AS rs, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5
           FROM generate_series(0, ${n - 1}) g) x,
          (SELECT ${sqlArray(DOMAINS)} AS d, ${sqlArray(SECTIONS)} AS s, ${sqlArray(WORDS)} AS w, ${sqlArray(EXTS)} AS e) lists`,
  );
  // A job's tasks share its type and zone (the job row takes the first).
  await c.query(
    `UPDATE ${t} t SET type = f.type, zone_id = CASE WHEN t.app_id = ${OTHER_APP} THEN t.zone_id ELSE f.zone_id END
     FROM (SELECT DISTINCT ON (job_id) job_id, type, zone_id FROM ${t} ORDER BY job_id, id) f
     WHERE f.job_id = t.job_id AND (t.type <> f.type OR t.zone_id <> f.zone_id)`,
  );
  await c.query(`INSERT INTO ${h} SELECT id, hosts[1], app_id, created_at, status, type, zone_id FROM ${t}`);
  await c.query(
    `INSERT INTO jobs SELECT job_id, min(app_id), min(zone_id), min(type), min(method), min(created_at), 'AKIDbench', '203.0.113.9', 'teo', count(*)
     FROM ${t} GROUP BY job_id`,
  );
  for (const table of [t, h]) await c.query(`ALTER TABLE ${table} ADD CONSTRAINT ${table}_range CHECK (created_at >= ${from} AND created_at < ${from + DAY_MS})`);
  await c.query(`ALTER TABLE tasks ATTACH PARTITION ${t} FOR VALUES FROM (${from}) TO (${from + DAY_MS})`);
  await c.query(`ALTER TABLE task_hosts ATTACH PARTITION ${h} FOR VALUES FROM (${from}) TO (${from + DAY_MS})`);
}

export interface SeededDb {
  readonly url: string;
  /** Tasks in the 30 days (both accounts). */
  readonly tasks: number;
  readonly days: number;
  readonly perDay: number;
  /** 0 when reused. */
  readonly seedSeconds: number;
  readonly vacuumSeconds: number;
  readonly reused: boolean;
  /** Drops the database unless it is kept (EDGEPURGE_PG_BENCH_DB). */
  readonly done: () => Promise<void>;
}

/**
 * A migrated, seeded, vacuumed database of `want` tasks over SPAN_DAYS days (fewer days when the seeding
 * budget runs out, newest first). With `keep` (a database name) an already complete one is reused, and
 * a new one is seeded whole whatever the budget (a partial one could not be reused).
 */
export async function seededDb(opts: { want: number; seedBudgetMs: number; keep?: string; log: (l: string) => void }): Promise<SeededDb> {
  const name = opts.keep ?? `edgepurge_bench_${randomBytes(5).toString('hex')}`;
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`EDGEPURGE_PG_BENCH_DB: ${name} is not a plain lower-case database name`);
  // Multiples of 8, so that no 8-task job straddles two days.
  const perDay = Math.ceil(opts.want / SPAN_DAYS / 8) * 8;
  const admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  const u = new URL(ADMIN);
  u.pathname = `/${name}`;
  const url = u.toString();
  const done = async (): Promise<void> => {
    if (opts.keep === undefined) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  };
  try {
    if (opts.keep !== undefined && (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        const { rows } = await c.query<{ n: string; days: string; complete: string | null }>(
          `SELECT (SELECT count(*) FROM tasks WHERE created_at >= $1 AND created_at < $2) AS n,
                  (SELECT count(DISTINCT created_at / ${DAY_MS}) FROM jobs WHERE created_at >= $1 AND created_at < $2) AS days,
                  (SELECT value FROM store_meta WHERE key = 'bench_seeded') AS complete`,
          [(LAST_DAY - SPAN_DAYS + 1) * DAY_MS, END],
        ).catch(() => ({ rows: [] as Array<{ n: string; days: string; complete: string | null }> }));
        const r = rows[0];
        if (r && r.complete !== null && Number(r.complete) === perDay && Number(r.n) === perDay * SPAN_DAYS) {
          opts.log(`reusing ${name}: ${Number(r.n).toLocaleString('en')} tasks over ${r.days} days`);
          return { url, tasks: Number(r.n), days: Number(r.days), perDay, seedSeconds: 0, vacuumSeconds: 0, reused: true, done };
        }
      } finally {
        await c.end();
      }
      // Never dropped here: it may be a seed still running (another process), and dropping it kills that.
      throw new Error(
        `${name} exists but does not hold ${(perDay * SPAN_DAYS).toLocaleString('en')} completely seeded tasks (a seed still running, ` +
          `an interrupted one, or another size): wait for it, or DROP DATABASE ${name} WITH (FORCE), or name another database`,
      );
    }
    await admin.query(`CREATE DATABASE ${name}`);
    const store = new PostgresTaskStore({ url, pool: { max: 2 } });
    await store.start();
    await store.close(); // migrated; reopened by the caller once the history is attached (it caches the days it knows)

    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query("SET maintenance_work_mem = '256MB'");
      const t0 = performance.now();
      let days = 0;
      // Newest day first, so that whatever fits in the budget is a recent, contiguous history.
      while (days < SPAN_DAYS && (opts.keep !== undefined || performance.now() - t0 < opts.seedBudgetMs)) {
        await seedDay(c, LAST_DAY - days, perDay, days * perDay + 8);
        days++;
        if (days % 5 === 0) opts.log(`seeded ${days} days (${(days * perDay).toLocaleString('en')} tasks) in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      }
      const tasks = days * perDay;
      await c.query(`SELECT setval('tasks_id_seq', $1)`, [tasks + 8 + 10 * perDay]);
      const seedSeconds = (performance.now() - t0) / 1000;
      opts.log(`seeded ${tasks.toLocaleString('en')} tasks over ${days} days in ${seedSeconds.toFixed(0)} s${days < SPAN_DAYS ? ` (seeding budget reached; ${opts.want.toLocaleString('en')} wanted)` : ''}`);
      const v0 = performance.now();
      // Index-only scans (the counts) need the visibility map; statistics for the planner.
      await c.query('VACUUM ANALYZE tasks, task_hosts, jobs');
      const vacuumSeconds = (performance.now() - v0) / 1000;
      opts.log(`VACUUM ANALYZE in ${vacuumSeconds.toFixed(0)} s`);
      if (days === SPAN_DAYS) await c.query(`INSERT INTO store_meta (key, value) VALUES ('bench_seeded', $1)`, [perDay]);
      return { url, tasks, days, perDay, seedSeconds, vacuumSeconds, reused: false, done };
    } finally {
      await c.end();
    }
  } catch (e) {
    await done().catch(() => {});
    throw e;
  }
}

if (import.meta.main) {
  const want = Number((process.argv[2] ?? '10000000').replaceAll('_', ''));
  const keep = process.env.EDGEPURGE_PG_BENCH_DB;
  if (!keep) throw new Error('set EDGEPURGE_PG_BENCH_DB=name: a seeded database nobody keeps is of no use');
  const db = await seededDb({ want, seedBudgetMs: 3_600_000, keep, log: (l) => console.log(l) });
  await db.done();
}
