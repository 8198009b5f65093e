// The PostgreSQL store's history queries (jobTasks, listTasks, listRefreshRecords): each answered from the
// index of its most selective filter, a count and its page in one statement (one snapshot).
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Pool, PoolClient } from 'pg';
import type { TaskRecord } from '../../purge/types.ts';
import { asciiLower } from '../refresh-record-ids.ts';
import { DAY_MS, dayOf } from './postgres-partitions.ts';
import { SAMPLE_ROWS, TargetSample } from './target-sample.ts';
import { TASK_COLS, taskCols, toJob, toTask, type JobRow, type TaskRow } from '../store-rows.ts';
import { REFRESH_TYPES, type RefreshRecord, type RefreshRecordQuery, type TaskQuery } from '../task-store.ts';

/** Positional parameters of one statement: `add` returns the placeholder of a new value. */
class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

/** One SELECT's FROM/WHERE, built for one access path. */
interface Source {
  from: string;
  where: string[];
  /** Task id and creation time of the matching task, as expressions over `from`. */
  id: string;
  ts: string;
  /** A task can match once per host (several `hosts` asked for): count and page distinct ids. */
  distinct: boolean;
  /** Candidates cost a row visit each (text filters): gather them once for both the count and the page. */
  onePass: boolean;
  /**
   * Index paths: the page as a merge of one newest-first index range per listed value (each host, each
   * status), `probeWhere` naming the value as `u.<col>`; a range over `col = ANY(list)` is not in time order.
   */
  probes?: { lists: Array<{ col: string; param: string }>; where: string[] };
  /** Placeholder of the statuses list, when filtered. */
  statusesParam?: string;
}

/**
 * PostgreSQL counts at most this many matches past the page (`total` = offset + limit + COUNT_AHEAD when
 * more match): an exact count of a busy week walks millions of index entries (README "Limits").
 */
export const COUNT_AHEAD = 1000;

/**
 * COUNT_AHEAD of a fuzzy target (#listByWindows): each match counted there costs its candidate rows, each a
 * heap visit (a page read from outside shared buffers, mostly): `mer-summer` reads 13 candidates a match
 * whatever trigrams are asked for (every `…er-summer` holds them all), and counting 1,000 past the page took
 * ~105 ms of server CPU (16,500 pages read) where 100 past it takes about a tenth. Paging by
 * `Offset < TotalCount` still reaches every match: a capped total is always past the page.
 */
export const FUZZY_COUNT_AHEAD = 100;

/**
 * The target's ASCII letters in lower case and nothing else (asciiLower): `lower` under the C collation.
 * `translate(target, 'A…Z', 'a…z')` is the same, at 24 µs a 70-character URL (it walks the 26 letters for
 * every character) against 0.3 µs: per candidate row of a fuzzy query, it was most of the query's time.
 */
const LOWER_TARGET = 'lower(t.target COLLATE "C")';

/** Punctuation common in URLs: `q` in the fuzzy index (TARGET_FOLD_SQL). */
const FOLDED = ['-', '.', '/', '_', ':', '?', '=', '&', '%', '+', ',', '~'];

/**
 * The fuzzy index's expression (migrations 7 and 8, the same text): the target in ASCII lower case with its
 * common punctuation as `q`, so that pg_trgm (which cuts words at punctuation) sees `logo-12.js` as one
 * word and keeps the trigrams crossing the punctuation (`oq1`, `2qj`). One character for one, so a target
 * containing the needle (ASCII case-insensitively) contains the folded needle. `replace`, not `translate`:
 * the index rechecks every candidate row with it (12 replaces: 1.7 µs a URL; translate: 53 µs).
 */
export const TARGET_FOLD_SQL = FOLDED.reduce((e, c) => `replace(${e}, '${c}', 'q')`, 'lower(target COLLATE "C")');

/** TARGET_FOLD_SQL's fold, on a needle. */
export const foldTarget = (s: string): string => Array.from(asciiLower(s), (c) => (FOLDED.includes(c) ? 'q' : c)).join('');

const isWord = (c: string): boolean => /^[\p{L}\p{N}]$/u.test(c);

/**
 * pg_trgm turns a LIKE pattern into the trigrams of its words (runs of letters and digits); a folded
 * needle without a run of 3 has none, and the GIN index would then be read whole; nor does one whose runs
 * are punctuation alone (`://` is `qqq`, in every URL). Such needles are checked row by row within the
 * app's time range instead (EdgeOne caps that range at 7 days, §4.2).
 */
export function trigramSearchable(needle: string): boolean {
  const cs = Array.from(needle);
  for (let i = 0; i + 3 <= cs.length; i++) {
    const w = cs.slice(i, i + 3);
    if (w.every((c) => isWord(c) || FOLDED.includes(c)) && w.some(isWord)) return true;
  }
  return false;
}

/** `%needle%` with LIKE's wildcards and escape character taken literally. */
const containsPattern = (needle: string): string => `%${needle.replace(/[\\%_]/g, '\\$&')}%`;

/**
 * A named (prepared) statement: planning a query over a month of day partitions costs tens of ms, more
 * than running it. Prepared per connection and planned once as a generic plan (the pool sets
 * plan_cache_mode), whose partitions are pruned when it runs. Names are hashes of the text: the filter
 * shapes, hence the names, are a bounded set.
 */
const prepared = (text: string, values: unknown[]): { name: string; text: string; values: unknown[] } => ({
  name: `ep_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`,
  text,
  values,
});

/** The first window of a fuzzy-target query without a sample (#fuzzyPlan); the next ones are sized from the matches so far. */
const WINDOW_MS = 3_600_000;

/**
 * The shortest first window sized from the sample (#fuzzyPlan). A common needle (`logo-`: ~800 matches an
 * hour at 10M tasks) wants a few minutes for its page and count (offset + limit + FUZZY_COUNT_AHEAD); a
 * first hour checked every candidate of it: (b4) 11 ms of server CPU at p50, 5 ms with this floor.
 */
const MIN_FIRST_WINDOW_MS = 5 * 60_000;

/** A fuzzy-target query, answered window by window (#listByWindows). */
const windowed = (q: TaskQuery): boolean => q.targetContains !== undefined && q.jobId === undefined && q.target === undefined;

/**
 * `n` rounded up to a power of two (at least 32), written into the statement as a literal: the planner
 * sees how far a page reaches, and a shape has a few dozen statement texts at most, not one per offset.
 */
const reach = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(32, n)));

const isEmptyList = (l: readonly unknown[] | undefined): boolean => l !== undefined && l.length === 0;

const page = (limit: number, offset: number): { limit: number; offset: number } => ({
  limit: Math.max(0, Math.trunc(limit)),
  offset: Math.max(0, Math.trunc(offset)),
});

/** The sample of targets choosing a fuzzy needle's trigrams (target-sample.ts) is taken again after this long. */
const SAMPLE_TTL_MS = 15 * 60_000;

export class PostgresTaskReader {
  readonly #pool: Pool;
  #sample: TargetSample | null = null;
  /** performance.now() of the sample's query (-Infinity: none yet). */
  #sampledAt = Number.NEGATIVE_INFINITY;
  #sampling: Promise<void> | null = null;
  /** Tasks a ms (of every account) when the sample was taken: the stored tasks over the time they span. */
  #rowsPerMs = 0;

  constructor(pool: Pool) {
    this.#pool = pool;
  }

  /**
   * Takes a new sample of the stored targets (about SAMPLE_ROWS, from random pages of every day) for the
   * choice of a fuzzy needle's trigrams. Fuzzy queries take one in the background when theirs is older
   * than SAMPLE_TTL_MS; until the first is in, they ask the index for every trigram of the needle.
   */
  refreshTargetSample(): Promise<void> {
    this.#sampling ??= (async () => {
      const at = performance.now();
      try {
        // Rows from the statistics (reltuples: -1 before the first ANALYZE), else from the pages at ~20 a page;
        // the time they span from the jobs' time index (two probes).
        const { rows: size } = await this.#pool.query<{ rows: number; pages: number; span: number | null }>(
          `SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::float8 AS rows, coalesce(sum(pg_relation_size(c.oid)), 0)::float8 / 8192 AS pages,
                  (SELECT (max(created_at) - min(created_at))::float8 FROM jobs) AS span
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'tasks'::regclass`,
        );
        const rows = Math.max(size[0]?.rows ?? 0, (size[0]?.pages ?? 0) * 20, 1);
        const percent = Math.min(100, (100 * 1.2 * SAMPLE_ROWS) / rows);
        const { rows: sampled } = await this.#pool.query<{ f: string }>(
          `SELECT ${TARGET_FOLD_SQL} AS f FROM tasks TABLESAMPLE SYSTEM ($1) LIMIT ${2 * SAMPLE_ROWS}`,
          [percent],
        );
        this.#sample = await TargetSample.build(sampled.map((r) => r.f));
        this.#rowsPerMs = rows / Math.max(size[0]?.span ?? 0, WINDOW_MS);
        this.#sampledAt = at;
      } finally {
        this.#sampling = null;
      }
    })();
    return this.#sampling;
  }

  /**
   * How to ask the fuzzy index for a needle: a few of its trigrams (target-sample.ts), or all of them; and the
   * first window of #listByWindows, from the needle's share of the sampled targets (of every account: this
   * one's matches are at most as dense), sized to see the page and the count (`cap`) with a quarter to
   * spare: the whole range at once when even that share would not fill it (a rare needle then reads each
   * day's trigram entries once, not once for a first hour and again for the rest).
   */
  #fuzzyPlan(needle: string, cap: number): { pattern: string; firstWindow: number } {
    if (performance.now() - this.#sampledAt > SAMPLE_TTL_MS && this.#sampling === null) {
      // A failure (a closed pool) leaves the old sample, and the next fuzzy query tries again.
      this.refreshTargetSample().catch(() => {});
    }
    const folded = foldTarget(needle);
    const sample = this.#sample;
    if (sample === null) return { pattern: containsPattern(folded), firstWindow: WINDOW_MS };
    const { pattern, share } = sample.choose(folded);
    if (share === null) return { pattern, firstWindow: WINDOW_MS };
    // A needle in none of the sampled rows: in at most about one in twice the sample's size.
    const perMs = Math.max(share, 0.5 / sample.size) * this.#rowsPerMs;
    return { pattern, firstWindow: Math.max(MIN_FIRST_WINDOW_MS, Math.ceil((cap * 1.25) / perMs)) };
  }

  async jobTasks(appId: number, jobId: string): Promise<TaskRecord[]> {
    // The job's createdAt names the one partition holding its tasks.
    const { rows } = await this.#pool.query<TaskRow>(
      `SELECT ${TASK_COLS} FROM tasks t
       WHERE t.job_id = $1 AND t.app_id = $2 AND t.created_at = (SELECT created_at FROM jobs WHERE job_id = $1 AND app_id = $2)
       ORDER BY t.id`,
      [jobId, appId],
    );
    return rows.map(toTask);
  }

  async listTasks(q: TaskQuery): Promise<{ total: number; tasks: TaskRecord[] }> {
    if (windowed(q)) return this.#listByWindows(q);
    const stmt = this.#taskStatement(q);
    if (stmt === null) return { total: 0, tasks: [] };
    const { rows } = await this.#pool.query<TaskRow & { total: number }>(prepared(stmt.sql, stmt.params));
    const total = rows[0]?.total ?? 0;
    return { total, tasks: rows.filter((r) => r.id !== null).map(toTask) };
  }

  /**
   * A fuzzy target: the time range in windows, newest first, the first sized from the needle's share of the
   * sampled targets (#fuzzyPlan; 1 hour without a sample), the next ones from the matches so far, each answered
   * from the trigram index (or row by row for a needle without a trigram) with its exact count, until
   * offset + limit + FUZZY_COUNT_AHEAD matches are seen or the range is done (once the page is complete, the rest is
   * counted in one statement that stops at the cap: #countRest). A needle matching thousands an
   * hour stops in the first windows; a rare one reads its candidates once. One snapshot for all windows.
   */
  async #listByWindows(q: TaskQuery): Promise<{ total: number; tasks: TaskRecord[] }> {
    if (isEmptyList(q.hosts) || isEmptyList(q.statuses) || isEmptyList(q.types)) return { total: 0, tasks: [] };
    const { limit, offset } = page(q.limit, q.offset);
    const cap = offset + limit + FUZZY_COUNT_AHEAD;
    const want = offset + limit;
    const { pattern, firstWindow } = this.#fuzzyPlan(q.targetContains!, cap);
    const client = await this.#pool.connect();
    let broken = false;
    try {
      // A window under a day is planned with its bounds (custom plan): the planner weighs the window's rows
      // against the needle's candidates. A window of whole days is read through the trigram index whatever
      // its bounds (pinned, see #taskSource), so it runs as a prepared statement's generic plan, whose
      // partitions are pruned when it runs: planning a month of day partitions cost more than reading them
      // (a needle found in 10 tasks over 30 days: 2.5–3.4 ms of planning a window, 4–6 ms of execution).
      // The plan mode is switched (SET LOCAL, a round trip) only when a window needs the other one; BEGIN
      // carries the first window's when the range is known (each round trip is a wait in the server's run
      // queue on a loaded machine).
      const setting = (custom: boolean): string => `SET LOCAL plan_cache_mode = ${custom ? 'force_custom_plan' : 'force_generic_plan'}`;
      /** Whether a window [lo, hi] is planned with its bounds. */
      const subDay = (lo: number, hi: number): boolean => hi - lo + 1 < DAY_MS;
      const openEnd = q.from === undefined || q.to === undefined;
      // The pool's connections plan prepared statements generically (see `prepared`).
      let custom = !openEnd && subDay(Math.max(q.from!, q.to! - firstWindow + 1), q.to!);
      await client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY${custom ? `; ${setting(true)}` : ''}`);
      const planMode = async (c: boolean): Promise<void> => {
        if (c === custom) return;
        await client.query(setting(c));
        custom = c;
      };
      try {
        let from = q.from ?? null;
        let to = q.to ?? null;
        if (openEnd) {
          // The app's oldest and newest tasks: one statement, one index probe each.
          const edges = (
            await client.query<{ lo: number | null; hi: number | null }>(
              prepared('SELECT min(created_at) AS lo, max(created_at) AS hi FROM tasks WHERE app_id = $1', [q.appId]),
            )
          ).rows[0];
          from ??= edges?.lo ?? null;
          to ??= edges?.hi ?? null;
        }
        if (from === null || to === null) {
          await client.query('COMMIT');
          return { total: 0, tasks: [] };
        }
        let seen = 0;
        const tasks: TaskRecord[] = [];
        for (let hi = to, width = firstWindow; hi >= from && seen < cap; ) {
          if (seen >= want) {
            await planMode(true);
            seen += await this.#countRest(client, q, from, hi, cap - seen, pattern);
            break;
          }
          const lo = Math.max(from, hi - width + 1);
          // This window's part of the page: positions [offset, offset + limit) less those seen before.
          const localOffset = Math.max(0, offset - seen);
          const localLimit = Math.max(0, offset + limit - Math.max(seen, offset));
          // Under a day the planner weighs the window's rows against the needle's candidates (a time range,
          // or both bitmaps ANDed); a day or more is read through the trigram index (pinned, as without windows).
          const window = subDay(lo, hi);
          const stmt = this.#taskStatement({ ...q, from: lo, to: hi, offset: localOffset, limit: localLimit }, window, pattern)!;
          await planMode(window);
          const { rows } = window
            ? await client.query<TaskRow & { total: number }>(stmt.sql, stmt.params)
            : await client.query<TaskRow & { total: number }>(prepared(stmt.sql, stmt.params));
          seen += rows[0]?.total ?? 0;
          for (const r of rows) if (r.id !== null) tasks.push(toTask(r));
          hi = lo - 1;
          // The next window from the density so far: wide enough for what is still wanted with half again
          // to spare (not twice the last: a needle matching 744 in the first hour wanted 0.4 hour more, and
          // two hours cost 1,483 row checks), the whole rest when nothing matched yet, so that a rare needle
          // reads each day's trigram entries about once instead of once per window touching the day.
          const covered = to - hi;
          width = seen === 0 ? hi - from + 1 : Math.max(WINDOW_MS / 4, Math.ceil(((cap - seen) * covered * 1.5) / seen));
        }
        await client.query('COMMIT');
        return { total: Math.min(seen, cap), tasks };
      } catch (e) {
        await client.query('ROLLBACK').catch(() => (broken = true));
        throw e;
      }
    } finally {
      client.release(broken);
    }
  }

  /**
   * The matches of a fuzzy query in [from, hi], counted up to `upTo` (the page is complete; only the total is
   * left): one branch per day, newest first, under one LIMIT, so the count stops at the cap. Windows counted
   * every match they held, and were sized with half again to spare: for a needle whose trigrams all occur in
   * other targets (14 candidate rows a match), that spare was thousands of row checks. Each branch is
   * planned with its day's bounds (one partition); the day's trigram entries are decoded only when reached.
   */
  async #countRest(client: PoolClient, q: TaskQuery, from: number, hi: number, upTo: number, pattern: string): Promise<number> {
    const p = new Params();
    const branches: string[] = [];
    for (let d = dayOf(hi); d >= dayOf(from); d--) {
      const lo = Math.max(from, d * DAY_MS);
      const top = Math.min(hi, (d + 1) * DAY_MS - 1);
      const src = this.#taskSource({ ...q, from: lo, to: top }, p, top - lo + 1 < DAY_MS, pattern);
      branches.push(`(SELECT ${src.distinct ? 'DISTINCT ' : ''}${src.id} FROM ${src.from} WHERE ${src.where.join(' AND ')})`);
    }
    const sql = `SELECT count(*)::bigint AS n FROM (${branches.join(' UNION ALL ')} LIMIT ${p.add(upTo)}) x`;
    const { rows } = await client.query<{ n: string }>(sql, p.values);
    return Number(rows[0]?.n ?? 0);
  }

  /** PostgreSQL's plan (EXPLAIN lines) of listTasks' statement; [] when it would answer without one. */
  async explainListTasks(q: TaskQuery, options: { forbidSeqScan?: boolean } = {}): Promise<string[]> {
    // A windowed query: the plan of its first window (the last hour of the range).
    const window = windowed(q) && q.to !== undefined;
    const pattern = q.targetContains === undefined ? undefined : this.#fuzzyPlan(q.targetContains, 0).pattern;
    const stmt = window ? this.#taskStatement({ ...q, from: Math.max(q.from ?? q.to!, q.to! - WINDOW_MS + 1) }, true, pattern) : this.#taskStatement(q, false, pattern);
    if (stmt === null) return [];
    const client = await this.#pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      try {
        if (window) await client.query('SET LOCAL plan_cache_mode = force_custom_plan');
        if (options.forbidSeqScan) await client.query('SET LOCAL enable_seqscan = off');
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS OFF) ${stmt.sql}`, stmt.params);
        return rows.map((r) => r['QUERY PLAN']);
      } finally {
        // Also after an error: a client left in an aborted transaction would fail its next user's BEGIN.
        await client.query('ROLLBACK').catch(() => (broken = true));
      }
    } finally {
      client.release(broken);
    }
  }

  async listRefreshRecords(q: RefreshRecordQuery): Promise<{ total: number; records: RefreshRecord[] }> {
    const stmt = this.#refreshStatement(q);
    if (stmt === null) return { total: 0, records: [] };
    const client = await this.#pool.connect();
    let broken = false;
    try {
      // One snapshot for the records, their jobs and their tasks.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        const { rows: keys } = await client.query<{ total: number; job_id: string | null; host: string; record_id: number; job_tasks: number }>(
          prepared(stmt.sql, stmt.params),
        );
        const total = keys[0]?.total ?? 0;
        // The task budget, from the records alone: whole jobs are read, so each job's tasks count once.
        const kept: typeof keys = [];
        const jobIds = new Set<string>();
        let tasks = 0;
        for (const k of keys) {
          if (k.job_id === null) continue;
          const more = jobIds.has(k.job_id) ? 0 : k.job_tasks;
          if (kept.length > 0 && tasks + more > stmt.budget) break;
          kept.push(k);
          jobIds.add(k.job_id);
          tasks += more;
        }
        if (kept.length === 0) {
          await client.query('COMMIT');
          return { total, records: [] };
        }
        const ids = [...jobIds];
        const jobs = new Map(
          (await client.query<JobRow>('SELECT * FROM jobs WHERE job_id = ANY($1::text[])', [ids])).rows.map((r) => [r.job_id, toJob(r)]),
        );
        const { rows } = await client.query<TaskRow>(
          `SELECT ${taskCols('t')} FROM jobs j JOIN tasks t ON t.job_id = j.job_id AND t.created_at = j.created_at
           WHERE j.job_id = ANY($1::text[]) AND t.app_id = $2 ORDER BY t.id`,
          [ids, q.appId],
        );
        await client.query('COMMIT');
        const byJob = new Map<string, TaskRecord[]>();
        for (const r of rows) {
          const t = toTask(r);
          const list = byJob.get(t.jobId);
          if (list) list.push(t);
          else byJob.set(t.jobId, [t]);
        }
        const records: RefreshRecord[] = [];
        for (const k of kept) {
          const job = jobs.get(k.job_id!);
          if (job) records.push({ id: k.record_id, job, host: k.host, tasks: (byJob.get(job.jobId) ?? []).filter((t) => t.hosts.includes(k.host)) });
        }
        return { total, records };
      } catch (e) {
        await client.query('ROLLBACK').catch(() => (broken = true));
        throw e;
      }
    } finally {
      client.release(broken);
    }
  }

  // --- internals ---

  /** The one statement answering a task query (rows: the page, each with `total`; one all-null row when the page is empty). */
  #taskStatement(q: TaskQuery, window = false, indexPattern?: string): { sql: string; params: unknown[] } | null {
    if (isEmptyList(q.hosts) || isEmptyList(q.statuses) || isEmptyList(q.types)) return null;
    if (q.from !== undefined && q.to !== undefined && q.from > q.to) return null;
    const p = new Params();
    const src = this.#taskSource(q, p, window, indexPattern);
    const { limit, offset } = page(q.limit, q.offset);
    const where = src.where.join(' AND ');
    const cap = offset + limit + COUNT_AHEAD;
    const ids = `SELECT ${src.distinct ? 'DISTINCT ' : ''}${src.id} AS id, ${src.ts} AS ts FROM ${src.from} WHERE ${where}`;
    const pageOf = (from: string): string =>
      // The first `reach` matches newest first, then the page among them. `reach` is a literal: a generic plan
      // takes a LIMIT placeholder for 10 % of the rows, and sorts the whole account's entries (seconds at
      // 10M) instead of walking the days' time indexes newest first and stopping.
      // Each page row fetched by its id from the one partition its time names: a lateral probe per row (the
      // LIMIT keeps the planner from turning it into a hash join over every day when its estimates are off).
      `SELECT pr.* FROM (SELECT id, ts FROM (SELECT id, ts FROM (${from}) i ORDER BY ts DESC, id DESC LIMIT ${reach(offset + limit)}) w` +
      ` ORDER BY ts DESC, id DESC LIMIT ${p.add(limit)} OFFSET ${p.add(offset)}) k` +
      ` CROSS JOIN LATERAL (SELECT ${taskCols('r')} FROM tasks r WHERE r.id = k.id AND r.created_at = k.ts LIMIT 1) pr`;
    const tail = ' ORDER BY p.created_at DESC, p.id DESC';
    if (src.onePass) {
      const sql =
        `WITH m AS MATERIALIZED (${ids}) SELECT c.total, p.* FROM (SELECT count(*) AS total FROM m) c` +
        (limit === 0 ? ' CROSS JOIN (SELECT NULL::bigint AS id, NULL::bigint AS created_at) p' : ` LEFT JOIN LATERAL (${pageOf('SELECT id, ts FROM m')}) p ON true`) +
        tail;
      return { sql, params: p.values };
    }
    // Index paths: the count stays inside one index, up to the cap; the page walks it newest first and
    // stops, or merges one such walk per probed value (each stops after offset + limit).
    // Several hosts: a task is one entry per host asked for, so the first cap × hosts entries hold at least
    // `cap` distinct tasks when they all come (DISTINCT over the whole range would read every entry first).
    let count: string;
    let pageIds = ids;
    if (!src.probes) {
      count = src.distinct
        ? `SELECT least(count(DISTINCT n.id), ${p.add(cap)}) AS total FROM (SELECT ${src.id} AS id FROM ${src.from} WHERE ${where} LIMIT ${p.add(cap * new Set(q.hosts).size)}) n`
        : `SELECT count(*) AS total FROM (SELECT 1 FROM ${src.from} WHERE ${where} LIMIT ${p.add(cap)}) n`;
    } else {
      const lists = src.probes.lists.map((l, i) => `unnest(${l.param}::text[]) u${i}(${l.col})`);
      // DISTINCT: a value listed twice is one probe (twice would count and page its tasks twice).
      const u = `(SELECT DISTINCT ${src.probes.lists.map((l, i) => `u${i}.${l.col}`).join(', ')} FROM ${lists.join(' CROSS JOIN ')}) u`;
      const probeWhere = src.probes.where.join(' AND ');
      // The count as one capped range per probed value too: with `status = ANY($n)` a generic plan takes the
      // (app, host, created_at) index and filters the statuses, reading every other status's entries of the
      // range (50,000 for a rare status over a week at 10M: 20 ms) where each status's own range holds the
      // matches alone. Capped per probe: one range reaching the cap settles the total; otherwise all are whole.
      // Different statuses are different tasks; the same task under several hosts counts once (DISTINCT).
      count = src.distinct
        ? `SELECT least(count(DISTINCT x.id), ${p.add(cap)})::bigint AS total FROM ${u} CROSS JOIN LATERAL` +
          ` (SELECT ${src.id} AS id FROM ${src.from} WHERE ${probeWhere} LIMIT ${p.add(cap)}) x`
        : `SELECT least(coalesce(sum(x.n), 0), ${p.add(cap)})::bigint AS total FROM ${u} CROSS JOIN LATERAL` +
          ` (SELECT count(*) AS n FROM (SELECT 1 FROM ${src.from} WHERE ${probeWhere} LIMIT ${p.add(cap)}) y) x`;
      if (limit > 0) {
        pageIds =
          `SELECT ${src.distinct ? 'DISTINCT ' : ''}x.id, x.ts FROM ${u} CROSS JOIN LATERAL (SELECT ${src.id} AS id, ${src.ts} AS ts FROM ${src.from}` +
          ` WHERE ${probeWhere} ORDER BY ${src.ts} DESC, ${src.id} DESC LIMIT ${p.add(offset + limit)}) x`;
      }
    }
    const sql =
      `SELECT c.total, p.* FROM (${count}) c` +
      (limit === 0 ? ' CROSS JOIN (SELECT NULL::bigint AS id, NULL::bigint AS created_at) p' : ` LEFT JOIN LATERAL (${pageOf(pageIds)}) p ON true`) +
      tail;
    return { sql, params: p.values };
  }

  /**
   * The access path of a task query, most selective first: the job, the exact target, the trigram
   * index (fuzzy target), the host index, then the app's time index. Every one is an index range of the
   * app (and of the day partitions of the time range); only a needle with no trigram is checked row by
   * row, within the app's time range (and hosts).
   */
  #taskSource(q: TaskQuery, p: Params, window = false, indexPattern?: string): Source {
    const onTasks = (where: string[], pinned = false): Source => {
      const src: Source = { from: 'tasks t', where, id: 't.id', ts: 't.created_at', distinct: false, onePass: true };
      columnFilters(src, q, p, pinned ? 't.+' : 't.');
      // The row's own hosts (task_hosts holds one row per element): no probe into task_hosts per candidate,
      // which cost a fifth of a fuzzy + domain week (3,000 candidates) at 10M. The fuzzy index holds them too
      // (its first column, migration 8): GIN reads only the domain's candidates.
      if (q.hosts !== undefined) src.where.push(`t.hosts && ${p.add(q.hosts)}::text[]`);
      textFilters(src, q, p);
      return src;
    };
    if (q.jobId !== undefined) {
      // The job's createdAt names the one partition holding its tasks.
      const [job, app] = [p.add(q.jobId), p.add(q.appId)];
      return onTasks([`t.job_id = ${job}`, `t.app_id = ${app}`, `t.created_at = (SELECT created_at FROM jobs WHERE job_id = ${job} AND app_id = ${app})`]);
    }
    if (q.target !== undefined) {
      const target = p.add(q.target);
      return onTasks([`t.app_id = ${p.add(q.appId)}`, `hashtextextended(t.target, 0) = hashtextextended(${target}::text, 0)`]);
    }
    if (q.targetContains !== undefined && trigramSearchable(q.targetContains)) {
      // `+ 0` on the app and times pins the trigram index (as `+` does in SQLite): on its own the planner
      // often prefers an app or time index range (every row of the range checked) on thin statistics.
      // Day-aligned bounds on the bare column keep the partitions of other days out.
      // A window (see #listByWindows) is planned with its bounds: the planner weighs the window's rows.
      // The needle folded as the index's expression (TARGET_FOLD_SQL, written out: the planner matches the
      // index by its text), or a few of its trigrams (#fuzzyPlan); the row check (textFilters) stays the exact one.
      const folded = `${TARGET_FOLD_SQL.replace('(target', '(t.target')} LIKE ${p.add(indexPattern ?? containsPattern(foldTarget(q.targetContains)))}`;
      if (window) return onTasks([`t.app_id = ${p.add(q.appId)}`, folded]);
      return onTasks([`t.app_id + 0 = ${p.add(q.appId)}`, folded], true);
    }
    if (q.hosts !== undefined) {
      const hosts = p.add(q.hosts);
      const src: Source = {
        from: 'task_hosts h',
        where: [`h.app_id = ${p.add(q.appId)}`, `h.host = ANY(${hosts}::text[])`],
        id: 'h.task_id',
        ts: 'h.created_at',
        distinct: q.hosts.length > 1,
        onePass: false,
      };
      columnFilters(src, q, p, 'h.');
      probesOf(src, q, 'h.', hosts);
      if (q.targetContains !== undefined) {
        // Only then is the task row needed; the count otherwise stays inside the host index.
        src.from += ' JOIN tasks t ON t.id = h.task_id AND t.created_at = h.created_at';
        src.onePass = true;
        textFilters(src, q, p);
        delete src.probes;
      }
      return src;
    }
    const src: Source = { from: 'tasks t', where: [`t.app_id = ${p.add(q.appId)}`], id: 't.id', ts: 't.created_at', distinct: false, onePass: false };
    columnFilters(src, q, p, 't.');
    src.onePass = q.targetContains !== undefined;
    textFilters(src, q, p);
    if (!src.onePass) probesOf(src, q, 't.');
    return src;
  }

  /**
   * The statement listing a page of record keys with `total` (one row with null keys when the page is
   * empty); null when nothing can match. One access path each, most selective first: the exact target,
   * the job, the host, then the app's time range.
   */
  #refreshStatement(q: RefreshRecordQuery): { sql: string; params: unknown[]; budget: number } | null {
    if (isEmptyList(q.types)) return null;
    if (q.from !== undefined && q.to !== undefined && q.from > q.to) return null;
    const budget = q.maxTasks === undefined ? Number.POSITIVE_INFINITY : Math.max(1, Math.trunc(q.maxTasks));
    // Every record holds a task, so a page never needs more records than the budget has tasks.
    const { limit, offset } = page(Math.min(q.limit, budget), q.offset);
    // Every record is of a refresh type: a filter naming all of them filters nothing, and is skipped.
    const types = q.types && REFRESH_TYPES.some((t) => !q.types!.includes(t)) ? [...new Set(q.types)] : undefined;
    const p = new Params();
    const where: string[] = [];
    const filters = (col: string, skip: { host?: boolean } = {}): void => {
      if (q.from !== undefined) where.push(`${col}created_at >= ${p.add(q.from)}`);
      if (q.to !== undefined) where.push(`${col}created_at <= ${p.add(q.to)}`);
      if (types) where.push(`${col}type = ANY(${p.add(types)}::text[])`);
      if (!skip.host && q.host !== undefined) where.push(`${col}host = ${p.add(q.host)}`);
    };
    let from: string;
    if (q.target !== undefined) {
      // The records holding the target: its tasks (few, through the hash), their hosts, their records.
      const target = p.add(q.target);
      const sub = [
        `t.app_id = ${p.add(q.appId)}`,
        `hashtextextended(t.target, 0) = hashtextextended(${target}::text, 0)`,
        `t.target = ${target}`,
        `t.type = ANY(${p.add(types ?? REFRESH_TYPES)}::text[])`,
      ];
      if (q.jobId !== undefined) sub.push(`t.job_id = ${p.add(q.jobId)}`);
      if (q.from !== undefined) sub.push(`t.created_at >= ${p.add(q.from)}`);
      if (q.to !== undefined) sub.push(`t.created_at <= ${p.add(q.to)}`);
      if (q.host !== undefined) sub.push(`x.host = ${p.add(q.host)}`);
      from =
        `(SELECT DISTINCT t.job_id, x.host FROM tasks t JOIN task_hosts x ON x.task_id = t.id AND x.created_at = t.created_at` +
        ` WHERE ${sub.join(' AND ')}) m JOIN refresh_records r ON r.job_id = m.job_id AND r.host = m.host`;
      where.push('true');
    } else if (q.jobId !== undefined) {
      from = 'refresh_records r';
      where.push(`r.job_id = ${p.add(q.jobId)}`, `r.app_id = ${p.add(q.appId)}`);
      filters('r.');
    } else if (q.host !== undefined) {
      from = 'refresh_records r';
      where.push(`r.app_id = ${p.add(q.appId)}`, `r.host = ${p.add(q.host)}`);
      filters('r.', { host: true });
    } else {
      from = 'refresh_records r';
      where.push(`r.app_id = ${p.add(q.appId)}`);
      filters('r.');
    }
    const w = where.join(' AND ');
    const sql =
      `SELECT c.total, k.job_id, k.host, k.record_id, k.job_tasks FROM (SELECT count(*) AS total FROM ${from} WHERE ${w}) c` +
      (limit === 0
        ? ' CROSS JOIN (SELECT NULL::text AS job_id, NULL::text AS host, NULL::bigint AS record_id, NULL::integer AS job_tasks, NULL::bigint AS created_at, NULL::integer AS ord) k'
        : ` LEFT JOIN LATERAL (SELECT r.job_id, r.host, r.record_id, r.job_tasks, r.created_at, r.ord FROM ${from} WHERE ${w}` +
          ` ORDER BY r.created_at DESC, r.job_id DESC, r.ord LIMIT ${p.add(limit)} OFFSET ${p.add(offset)}) k ON true`) +
      ' ORDER BY k.created_at DESC, k.job_id DESC, k.ord';
    return { sql, params: p.values, budget };
  }
}

/**
 * Time, status, type and zone filters on the columns behind `col` (`h.` task_hosts, `t.` tasks). `t.+`:
 * the times as expressions no index serves (another index drives), plus whole-day bounds on the column
 * itself, which prune partitions but select every row of the days they keep.
 */
function columnFilters(src: Source, q: TaskQuery, p: Params, col: 'h.' | 't.' | 't.+'): void {
  if (col === 't.+') {
    if (q.from !== undefined) src.where.push(`t.created_at >= ${p.add(dayOf(q.from) * DAY_MS)}`, `t.created_at + 0 >= ${p.add(q.from)}`);
    if (q.to !== undefined) src.where.push(`t.created_at < ${p.add((dayOf(q.to) + 1) * DAY_MS)}`, `t.created_at + 0 <= ${p.add(q.to)}`);
    col = 't.';
  } else {
    if (q.from !== undefined) src.where.push(`${col}created_at >= ${p.add(q.from)}`);
    if (q.to !== undefined) src.where.push(`${col}created_at <= ${p.add(q.to)}`);
  }
  if (q.statuses) {
    src.statusesParam = p.add(q.statuses);
    src.where.push(`${col}status = ANY(${src.statusesParam}::text[])`);
  }
  if (q.types) src.where.push(`${col}type = ANY(${p.add(q.types)}::text[])`);
  if (q.zoneId !== undefined) src.where.push(`${col}zone_id = ${p.add(q.zoneId)}`);
}

/**
 * The page of an index path as one newest-first range per listed value: per host (`hosts`, the
 * placeholder of task_hosts' host list) and per status: each a range of one index in time order.
 */
function probesOf(src: Source, q: TaskQuery, col: 'h.' | 't.', hosts?: string): void {
  const lists: Array<{ col: string; param: string; any: string }> = [];
  if (hosts !== undefined) lists.push({ col: 'host', param: hosts, any: `${col}host = ANY(${hosts}::text[])` });
  const statuses = src.statusesParam;
  if (statuses !== undefined) lists.push({ col: 'status', param: statuses, any: `${col}status = ANY(${statuses}::text[])` });
  if (lists.length === 0) return;
  const where = src.where.map((w) => {
    const l = lists.find((x) => x.any === w);
    return l ? `${col}${l.col} = u.${l.col}` : w;
  });
  src.probes = { lists: lists.map(({ col: c, param }) => ({ col: c, param })), where };
}

/** Exact and substring target checks on the row (the hash and trigram indexes only narrow). */
function textFilters(src: Source, q: TaskQuery, p: Params): void {
  if (q.target !== undefined) src.where.push(`t.target = ${p.add(q.target)}`);
  if (q.targetContains !== undefined) {
    // Substring match, ASCII case-insensitive exactly (the trigram index only narrows).
    src.where.push(`strpos(${LOWER_TARGET}, ${p.add(asciiLower(q.targetContains))}) > 0`);
  }
}
