// PostgreSQL store benchmark (issue 9): DescribePurgeTasks (listTasks) p50/p99 on a large seeded history,
// the cost of retention (dropping a day), and createJob throughput on SQLite vs PostgreSQL side by side.
// Run: npx node bench/pg-bench.ts [tasks] [seedSeconds]   (default 10,000,000 tasks, at most 300 s of seeding)
// The server: EDGEPURGE_TEST_PG or postgres://postgres@127.0.0.1:5432/postgres; a fresh database, dropped after.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { TaskStatus } from '../src/purge/types.ts';
import { partitionName, DAY_MS } from '../src/store/postgres/postgres-partitions.ts';
import { PostgresTaskStore } from '../src/store/postgres/postgres-task-store.ts';
import { SqliteTaskStore } from '../src/store/sqlite/sqlite-task-store.ts';
import type { NewJob, TaskQuery, TaskStore } from '../src/store/task-store.ts';
import { prng, quantile } from './stats.ts';
import { DOMAINS, EXTS, SECTIONS, WORDS, ZONES, zoneOf } from './store-bench.ts';

export interface PgBenchOptions {
  readonly tasks?: number;
  /** Seeding stops after the day in progress when this much time has passed (default 300 s). */
  readonly seedSeconds?: number;
  readonly iterations?: number;
  readonly throughputMs?: number;
  readonly log?: (line: string) => void;
}

export interface PgScenario {
  readonly name: string;
  readonly p50: number;
  readonly p99: number;
  readonly meanTotal: number;
}

export interface PgBenchResult {
  readonly tasks: number;
  readonly days: number;
  readonly seedSeconds: number;
  readonly vacuumSeconds: number;
  readonly scenarios: readonly PgScenario[];
  /** Plan of the fuzzy scenario's statement: which index served it. */
  readonly fuzzyIndex: string;
  readonly dropDayMs: number;
  readonly dropDayTasks: number;
  /** createJob (1 URL) per second, 64 in flight. */
  readonly throughput: { readonly sqlite: number; readonly pg1: number; readonly pg2: number };
}

const APP = 1250000001;
const SPAN_DAYS = 30;
const END = Date.UTC(2026, 1, 1);
const ADMIN = process.env.EDGEPURGE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const sqlArray = (xs: readonly string[]): string => `ARRAY[${xs.map((x) => `'${x.replaceAll("'", "''")}'`).join(', ')}]`;
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/**
 * One day of synthetic history, loaded the way a bulk import would: into bare tables, indexed once, then
 * attached as the day's partitions (attaching builds the parents' indexes on them in one pass each).
 */
async function seedDay(c: pg.Client, day: number, n: number, firstId: number): Promise<void> {
  const t = partitionName('tasks', day);
  const h = partitionName('task_hosts', day);
  const from = day * DAY_MS;
  await c.query(`CREATE TABLE ${t} (LIKE tasks)`);
  await c.query(`CREATE TABLE ${h} (LIKE task_hosts)`);
  // Jobs of 8 tasks sharing createdAt, type and zone; targets like the SQLite bench's (bench/store-bench.ts).
  await c.query(
    `INSERT INTO ${t} (id, job_id, app_id, zone_id, type, method, target, hosts, status, created_at, updated_at, seq)
     SELECT id, 'b' || lpad(to_hex(id / 8), 11, '0'), ${APP}, CASE WHEN di < 12 THEN '${ZONES[0]}' ELSE '${ZONES[1]}' END,
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
                  random() AS rt, random() AS rm, random() AS rs, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5
           FROM generate_series(0, ${n - 1}) g) x,
          (SELECT ${sqlArray(DOMAINS)} AS d, ${sqlArray(SECTIONS)} AS s, ${sqlArray(WORDS)} AS w, ${sqlArray(EXTS)} AS e) lists`,
  );
  await c.query(`INSERT INTO ${h} SELECT id, hosts[1], app_id, created_at, status, type, zone_id FROM ${t}`);
  await c.query(
    `INSERT INTO jobs SELECT job_id, ${APP}, min(zone_id), min(type), min(method), min(created_at), 'AKIDbench', '203.0.113.9', 'teo', count(*)
     FROM ${t} GROUP BY job_id`,
  );
  for (const table of [t, h]) await c.query(`ALTER TABLE ${table} ADD CONSTRAINT ${table}_range CHECK (created_at >= ${from} AND created_at < ${from + DAY_MS})`);
  await c.query(`ALTER TABLE tasks ATTACH PARTITION ${t} FOR VALUES FROM (${from}) TO (${from + DAY_MS})`);
  await c.query(`ALTER TABLE task_hosts ATTACH PARTITION ${h} FOR VALUES FROM (${from}) TO (${from + DAY_MS})`);
}

/** createJob calls per second of one-URL jobs, `inFlight` outstanding at all times, spread over `stores`. */
async function throughput(stores: readonly TaskStore[], ms: number, tag: string): Promise<number> {
  const inFlight = 64;
  let done = 0;
  let n = 0;
  const end = performance.now() + ms;
  const worker = async (w: number): Promise<void> => {
    const store = stores[w % stores.length]!;
    while (performance.now() < end) {
      const id = `${tag}${(n++).toString(36).padStart(10, '0')}`;
      const job: NewJob = {
        jobId: id, appId: APP, zoneId: ZONES[0], type: 'purge_url', method: 'invalidate', createdAt: END + (n % 1000),
        secretId: 's', clientIp: '::1', source: 'teo',
        tasks: [{ target: `https://${DOMAINS[0]}/tp/${id}.js`, hosts: [DOMAINS[0]], status: 'processing', fanOut: true }],
      };
      await store.createJob(job, { quotaType: 'purge_url', day: '2026-02-01', amount: 1, daily: 1e12 });
      done++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: inFlight }, (_, w) => worker(w)));
  return (done / (performance.now() - t0)) * 1000;
}

export async function runPgBench(opts: PgBenchOptions = {}): Promise<PgBenchResult> {
  const want = opts.tasks ?? 10_000_000;
  const seedBudgetMs = (opts.seedSeconds ?? 300) * 1000;
  const iterations = opts.iterations ?? 200;
  const log = opts.log ?? ((l: string) => console.log(l));
  const name = `edgepurge_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(ADMIN);
  u.pathname = `/${name}`;
  const url = u.toString();
  const stores: TaskStore[] = [];
  const sqliteDir = mkdtempSync(join(tmpdir(), 'edgepurge-pg-bench-'));
  try {
    const store = new PostgresTaskStore({ url, pool: { max: 4 } });
    stores.push(store);
    await store.start();
    await store.close(); // migrated; reopened once the history is attached (it caches the days it knows)

    // --- seed: newest day first, so that whatever fits in the budget is a recent, contiguous history ---
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {}); // dropped with the database at the end, whatever happened
    await c.connect();
    await c.query("SET maintenance_work_mem = '256MB'");
    // Multiples of 8, so that no 8-task job straddles two days.
    const perDay = Math.ceil(want / SPAN_DAYS / 8) * 8;
    const lastDay = Math.floor(END / DAY_MS) - 1;
    const t0 = performance.now();
    let days = 0;
    while (days < SPAN_DAYS && performance.now() - t0 < seedBudgetMs) {
      await seedDay(c, lastDay - days, perDay, days * perDay + 8);
      days++;
      if (days % 5 === 0) log(`  seeded ${days} days (${(days * perDay).toLocaleString('en')} tasks) in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
    const tasks = days * perDay;
    await c.query(`SELECT setval('tasks_id_seq', $1)`, [tasks + 8]);
    const seedSeconds = (performance.now() - t0) / 1000;
    log(`seeded ${tasks.toLocaleString('en')} tasks over ${days} days in ${seedSeconds.toFixed(0)} s${days < SPAN_DAYS ? ` (seeding budget reached; ${want.toLocaleString('en')} wanted)` : ''}`);
    const v0 = performance.now();
    // Index-only scans (the counts) need the visibility map; statistics for the planner.
    await c.query('VACUUM ANALYZE tasks, task_hosts, jobs');
    const vacuumSeconds = (performance.now() - v0) / 1000;
    log(`VACUUM ANALYZE in ${vacuumSeconds.toFixed(0)} s`);
    const { rows: samples } = await c.query<{ target: string; created_at: number }>(
      `SELECT target, created_at::float8 AS created_at FROM tasks TABLESAMPLE SYSTEM (0.05) WHERE type IN ('purge_url', 'prefetch_url') LIMIT 2000`,
    );
    await c.end();

    // --- queries ---
    const reader = new PostgresTaskStore({ url, pool: { max: 4 } });
    stores.push(reader);
    await reader.start();
    const r = prng(42);
    const start = (lastDay - days + 1) * DAY_MS;
    const span = days * DAY_MS;
    const statusSets: ReadonlyArray<readonly TaskStatus[]> = [['success'], ['failed'], ['processing', 'success'], ['failed', 'timeout'], ['processing']];
    const week = (): { from: number; to: number } => {
      const len = Math.min(7 * DAY_MS, span);
      const to = start + len + Math.floor(r() * Math.max(1, span - len));
      return { from: to - len, to };
    };
    const needle = (): { text: string; at: number } => {
      const s = pick(r, samples);
      const file = s.target.slice(s.target.lastIndexOf('/') + 1);
      const len = Math.min(file.length, 8 + Math.floor(r() * 13));
      const at = Math.floor(r() * (file.length - len + 1));
      return { text: file.slice(at, at + len), at: s.created_at };
    };
    const scenarios: Array<{ name: string; query: () => TaskQuery }> = [
      {
        name: '(a) zone + 7 days + statuses + domain',
        query: () => {
          const di = Math.floor(r() * DOMAINS.length);
          return { appId: APP, zoneId: zoneOf(di), ...week(), statuses: pick(r, statusSets), hosts: [DOMAINS[di]!], offset: 0, limit: 20 };
        },
      },
      {
        name: '(b) fuzzy target (8-20 chars of a file name) + 7 days',
        query: () => {
          const n = needle();
          const to = Math.min(start + span, n.at + Math.floor(r() * 7 * DAY_MS));
          return { appId: APP, from: to - 7 * DAY_MS, to, targetContains: n.text, offset: 0, limit: 20 };
        },
      },
      { name: '(b3) fuzzy target (file name), no time range', query: () => ({ appId: APP, targetContains: needle().text, offset: 0, limit: 20 }) },
      { name: '(c) 7 days + statuses, no domain', query: () => ({ appId: APP, ...week(), statuses: pick(r, statusSets), offset: 0, limit: 20 }) },
      {
        name: '(e) exact target + 7 days',
        query: () => {
          const s = pick(r, samples);
          return { appId: APP, from: s.created_at - DAY_MS, to: s.created_at + 6 * DAY_MS, target: s.target, offset: 0, limit: 20 };
        },
      },
    ];
    const fuzzyPlan = await reader.explainListTasks(scenarios[1]!.query());
    const fuzzyIndex = fuzzyPlan.find((l) => /Index Scan/.test(l))?.trim() ?? fuzzyPlan.join(' | ');
    log(`fuzzy plan: ${fuzzyIndex}`);
    const results: PgScenario[] = [];
    for (const sc of scenarios) {
      for (let i = 0; i < 10; i++) await reader.listTasks(sc.query());
      const times: number[] = [];
      let totals = 0;
      for (let i = 0; i < iterations; i++) {
        const q = sc.query();
        const q0 = performance.now();
        const res = await reader.listTasks(q);
        times.push(performance.now() - q0);
        totals += res.total;
      }
      const res = { name: sc.name, p50: quantile(times, 0.5), p99: quantile(times, 0.99), meanTotal: totals / iterations };
      results.push(res);
      log(`${res.name.padEnd(56)} p50 ${res.p50.toFixed(2).padStart(7)} ms  p99 ${res.p99.toFixed(2).padStart(7)} ms  mean total ${res.meanTotal.toFixed(0)}`);
    }

    // --- retention: the oldest day, dropped ---
    const oldest = lastDay - days + 1;
    const p0 = performance.now();
    const dropDayTasks = await reader.prune((oldest + 1) * DAY_MS);
    const dropDayMs = performance.now() - p0;
    log(`prune of the oldest day (${dropDayTasks.toLocaleString('en')} tasks): ${dropDayMs.toFixed(0)} ms`);

    // --- createJob throughput, side by side ---
    const ms = opts.throughputMs ?? 10_000;
    const sqlite = new SqliteTaskStore({ path: join(sqliteDir, 'tp.db') });
    stores.push(sqlite);
    await sqlite.start();
    const tpSqlite = await throughput([sqlite], ms, 's');
    await sqlite.close();
    const fresh = (): PostgresTaskStore => {
      const s = new PostgresTaskStore({ url, schema: 'throughput', pool: { max: 8 } });
      stores.push(s);
      return s;
    };
    const one = fresh();
    await one.start();
    const tpPg1 = await throughput([one], ms, 'p');
    const two = fresh();
    await two.start();
    const tpPg2 = await throughput([one, two], ms, 'q');
    log(`createJob throughput (1 URL, 64 in flight): SQLite ${tpSqlite.toFixed(0)}/s, PostgreSQL 1 pool ${tpPg1.toFixed(0)}/s, 2 pools ${tpPg2.toFixed(0)}/s`);
    return {
      tasks, days, seedSeconds, vacuumSeconds, scenarios: results, fuzzyIndex, dropDayMs, dropDayTasks,
      throughput: { sqlite: tpSqlite, pg1: tpPg1, pg2: tpPg2 },
    };
  } finally {
    for (const s of stores) await s.close().catch(() => {});
    rmSync(sqliteDir, { recursive: true, force: true });
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

if (import.meta.main) {
  const [tasks, seconds] = process.argv.slice(2).map((a) => Number(a.replaceAll('_', '')));
  await runPgBench({ ...(tasks ? { tasks } : {}), ...(seconds ? { seedSeconds: seconds } : {}) });
}
