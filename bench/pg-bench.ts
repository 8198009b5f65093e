// PostgreSQL store benchmark (issue 9): DescribePurgeTasks (listTasks) p50/p99 on a large seeded history,
// the cost of retention (dropping a day), and createJob throughput on SQLite vs PostgreSQL side by side.
// Run: npx node bench/pg-bench.ts [tasks] [seedSeconds]   (default 10,000,000 tasks, at most 300 s of seeding)
// The server: EDGEPURGE_TEST_PG or postgres://postgres@127.0.0.1:5432/postgres; a fresh database, dropped after,
// or EDGEPURGE_PG_BENCH_DB=name: kept and reused by the next run (bench/pg-seed.ts).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { TaskStatus } from '../src/purge/types.ts';
import { DAY_MS } from '../src/store/postgres/postgres-partitions.ts';
import { PostgresTaskStore } from '../src/store/postgres/postgres-task-store.ts';
import { SqliteTaskStore } from '../src/store/sqlite/sqlite-task-store.ts';
import type { NewJob, TaskQuery, TaskStore } from '../src/store/task-store.ts';
import { prng, quantile } from './stats.ts';
import { APP, END, LAST_DAY, seedDay, seededDb } from './pg-seed.ts';
import { DOMAINS, WORDS, ZONES, zoneOf } from './store-bench.ts';

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
  /**
   * Server CPU per query, p50/p99 ms (the backends' run time, /proc/<pid>/schedstat; NaN when the server is
   * not on this machine): what a query costs whatever else runs, where wall-clock p99 on a loaded machine is
   * mostly waits in the run queue.
   */
  readonly cpuP50: number;
  readonly cpuP99: number;
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

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** Nanoseconds on CPU of these server processes so far (NaN when one is not readable: a remote server). */
const cpuNs = (pids: readonly number[]): number =>
  pids.reduce((n, pid) => {
    try {
      return n + Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      return Number.NaN;
    }
  }, 0);

export async function runPgBench(opts: PgBenchOptions = {}): Promise<PgBenchResult> {
  const want = opts.tasks ?? 10_000_000;
  const iterations = opts.iterations ?? 200;
  const log = opts.log ?? ((l: string) => console.log(l));
  const keep = process.env.EDGEPURGE_PG_BENCH_DB;
  const db = await seededDb({ want, seedBudgetMs: (opts.seedSeconds ?? 300) * 1000, ...(keep ? { keep } : {}), log });
  const { url, tasks, days, seedSeconds, vacuumSeconds } = db;
  const lastDay = LAST_DAY;
  const stores: TaskStore[] = [];
  const sqliteDir = mkdtempSync(join(tmpdir(), 'edgepurge-pg-bench-'));
  try {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    // Left by a previous run on a kept database.
    await c.query('DROP SCHEMA IF EXISTS throughput CASCADE');
    const { rows: samples } = await c.query<{ target: string; created_at: number }>(
      `SELECT target, created_at::float8 AS created_at FROM tasks TABLESAMPLE SYSTEM (0.05) WHERE type IN ('purge_url', 'prefetch_url') AND app_id = $1 LIMIT 2000`,
      [APP],
    );
    await c.end();

    // --- queries ---
    const reader = new PostgresTaskStore({ url, pool: { max: 4 } });
    stores.push(reader);
    const m0 = performance.now();
    await reader.start(); // migrates a database seeded by an older build (index builds: minutes)
    if (performance.now() - m0 > 5000) log(`store start (migrations) in ${((performance.now() - m0) / 1000).toFixed(0)} s`);
    // The sample choosing a fuzzy needle's trigrams (target-sample.ts): a replica takes it at its first fuzzy query
    // and every 15 minutes after, in the background; the queries below are measured with it in place.
    const s0 = performance.now();
    await reader.refreshTargetSample();
    log(`target sample in ${(performance.now() - s0).toFixed(0)} ms`);
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
    const domain = (): { zoneId: string; hosts: string[] } => {
      const di = Math.floor(r() * DOMAINS.length);
      return { zoneId: zoneOf(di), hosts: [DOMAINS[di]!] };
    };
    const fuzzyWeek = (n: { at: number }): { from: number; to: number } => {
      const to = Math.min(start + span, n.at + Math.floor(r() * 7 * DAY_MS));
      return { from: to - 7 * DAY_MS, to };
    };
    const page = { appId: APP, offset: 0, limit: 20 };
    const scenarios: Array<{ name: string; query: () => TaskQuery }> = [
      { name: '(a) zone + 7 days + statuses + domain', query: () => ({ ...page, ...domain(), ...week(), statuses: pick(r, statusSets) }) },
      {
        name: '(a2) 7 days + 2 statuses + 3 domains',
        query: () => ({ ...page, ...week(), statuses: pick(r, statusSets.filter((x) => x.length > 1)), hosts: [0, 1, 2].map(() => pick(r, DOMAINS)) }),
      },
      { name: '(a3) 7 days + rare status (canceled) + domain', query: () => ({ ...page, ...week(), statuses: ['canceled'], hosts: domain().hosts }) },
      { name: '(b) fuzzy target (8-20 chars of a file name) + 7 days', query: () => { const n = needle(); return { ...page, ...fuzzyWeek(n), targetContains: n.text }; } },
      { name: '(b2) fuzzy + 7 days + status + domain', query: () => { const n = needle(); return { ...page, ...fuzzyWeek(n), targetContains: n.text, statuses: ['success'], hosts: domain().hosts }; } },
      { name: '(b3) fuzzy target (file name), no time range', query: () => ({ ...page, targetContains: needle().text }) },
      { name: '(b4) fuzzy common word (e.g. "logo-") + 7 days', query: () => ({ ...page, ...week(), targetContains: `${pick(r, WORDS)}-` }) },
      // A user paging through a fuzzy search: the sixth page of 20 (the windows read on until it and the count are settled).
      { name: '(b5) fuzzy + 7 days, sixth page (offset 100)', query: () => { const n = needle(); return { ...page, offset: 100, ...fuzzyWeek(n), targetContains: n.text }; } },
      { name: '(c) 7 days + statuses, no domain', query: () => ({ ...page, ...week(), statuses: pick(r, statusSets) }) },
      { name: '(d) 30 days, no filter, page at offset 1,000', query: () => ({ ...page, offset: 1000 }) },
      {
        name: '(e) exact target + 7 days',
        query: () => {
          const s = pick(r, samples);
          return { ...page, from: s.created_at - DAY_MS, to: s.created_at + 6 * DAY_MS, target: s.target };
        },
      },
    ];
    log(`load average before the queries: ${loadavg().map((x) => x.toFixed(2)).join(', ')} (${cpus().length} CPUs)`);
    // The plan of (b)'s first window; the trigram index's partitions (migration 8, on the hosts and the folded target)
    // are named `…_hosts_replace_idx` (`tasks_target`, the exact target's hash, is `…_app_id_hashtextextended_idx`).
    const fuzzyPlan = await reader.explainListTasks(scenarios.find((s) => s.name.startsWith('(b)'))!.query());
    const fuzzyIndex = (fuzzyPlan.find((l) => /Index Scan .*_replace_idx/.test(l)) ?? fuzzyPlan.find((l) => /Index Scan/.test(l)))?.trim() ?? fuzzyPlan.join(' | ');
    log(`fuzzy plan: ${fuzzyIndex}`);
    const results: PgScenario[] = [];
    const backends = async (): Promise<number[]> => {
      const a = new pg.Client({ connectionString: url });
      await a.connect();
      try {
        const { rows } = await a.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'edgepurge'`);
        return rows.map((x) => x.pid);
      } finally {
        await a.end();
      }
    };
    for (const sc of scenarios) {
      for (let i = 0; i < 10; i++) await reader.listTasks(sc.query());
      // The reader's connections (opened by the warm-up; sequential queries reuse them).
      const pids = await backends();
      const times: number[] = [];
      const cpu: number[] = [];
      let totals = 0;
      for (let i = 0; i < iterations; i++) {
        const q = sc.query();
        const c0 = cpuNs(pids);
        const q0 = performance.now();
        const res = await reader.listTasks(q);
        times.push(performance.now() - q0);
        cpu.push((cpuNs(pids) - c0) / 1e6);
        totals += res.total;
      }
      const res = {
        name: sc.name, p50: quantile(times, 0.5), p99: quantile(times, 0.99), meanTotal: totals / iterations, cpuP50: quantile(cpu, 0.5), cpuP99: quantile(cpu, 0.99),
      };
      results.push(res);
      log(
        `${res.name.padEnd(56)} p50 ${res.p50.toFixed(2).padStart(7)} ms  p99 ${res.p99.toFixed(2).padStart(7)} ms  ` +
          `server CPU p50 ${res.cpuP50.toFixed(2)} / p99 ${res.cpuP99.toFixed(2)} ms  mean total ${res.meanTotal.toFixed(0)}`,
      );
    }

    // --- retention: one day, dropped (a day seeded below the history for it, so a kept database stays whole) ---
    const extra = new pg.Client({ connectionString: url });
    await extra.connect();
    const oldest = lastDay - days;
    await seedDay(extra, oldest, db.perDay, days * db.perDay + 8);
    await extra.end();
    const p0 = performance.now();
    const dropDayTasks = await reader.prune((oldest + 1) * DAY_MS);
    const dropDayMs = performance.now() - p0;
    log(`prune of one day (${dropDayTasks.toLocaleString('en')} tasks): ${dropDayMs.toFixed(0)} ms`);

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
    await db.done();
  }
}

if (import.meta.main) {
  const [tasks, seconds] = process.argv.slice(2).map((a) => Number(a.replaceAll('_', '')));
  await runPgBench({ ...(tasks ? { tasks } : {}), ...(seconds ? { seedSeconds: seconds } : {}) });
}
