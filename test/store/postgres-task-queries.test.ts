// The PostgreSQL store's DescribePurgeTasks paths past the conformance suite's sizes: pages merged from one
// index range per status and per domain, the total counted at most COUNT_AHEAD past the page, and fuzzy
// targets read window by window newest first. Every answer is checked against the same query computed
// here over the tasks as written (SQLite stays exact; its suite is task-store-conformance.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TaskRecord, TaskStatus } from '../../src/purge/types.ts';
import pg from 'pg';
import { PG_MIGRATIONS } from '../../src/store/postgres/migrations.ts';
import { asciiLower } from '../../src/store/refresh-record-ids.ts';
import { COUNT_AHEAD, foldTarget, FUZZY_COUNT_AHEAD, TARGET_FOLD_SQL, trigramSearchable } from '../../src/store/postgres/postgres-task-reader.ts';
import { PostgresTaskStore } from '../../src/store/postgres/postgres-task-store.ts';
import type { TaskQuery } from '../../src/store/task-store.ts';
import { freshTestDatabase, postgresSkip } from '../helpers/postgres.ts';

const skip = postgresSkip('the PostgreSQL query tests');
const url = skip ? '' : await freshTestDatabase();

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);
const APP = 7;
const HOSTS = ['a.example', 'b.example', 'c.example'];
const STATUSES: TaskStatus[] = ['success', 'failed', 'timeout', 'processing'];

/** What listTasks must answer: every match newest first (id breaking ties), the page, the exact count. */
function expected(all: readonly TaskRecord[], q: TaskQuery): { total: number; tasks: TaskRecord[] } {
  const m = all.filter(
    (t) =>
      t.appId === q.appId &&
      (q.from === undefined || t.createdAt >= q.from) &&
      (q.to === undefined || t.createdAt <= q.to) &&
      (q.statuses === undefined || q.statuses.includes(t.status)) &&
      (q.hosts === undefined || t.hosts.some((h) => q.hosts!.includes(h))) &&
      (q.targetContains === undefined || t.target.toLowerCase().includes(q.targetContains.toLowerCase())),
  );
  m.sort((a, b) => b.createdAt - a.createdAt || b.id - a.id);
  return { total: m.length, tasks: m.slice(q.offset, q.offset + q.limit) };
}

describe('PostgreSQL listTasks: merged probes, capped totals, fuzzy windows', { skip }, () => {
  it('answers every shape like the exact reference: pages in order, totals capped at offset + limit + COUNT_AHEAD (FUZZY_COUNT_AHEAD with a fuzzy target)', async (t) => {
    const s = new PostgresTaskStore({ url, schema: `q_${process.pid}`, pool: { max: 3 } });
    t.after(() => s.close());
    await s.start();
    // 1,800 tasks over ~3 days: a job every 37 minutes (windows of 1, 2, 4… hours each hold a different
    // number), statuses and hosts cycling at other periods, every 7th task on two hosts; a second app.
    const all: TaskRecord[] = [];
    for (let j = 0; j < 120; j++) {
      const appId = j % 10 === 9 ? APP + 1 : APP;
      const tasks = Array.from({ length: 15 }, (_, i) => {
        const k = j * 15 + i;
        const hosts = k % 7 === 0 ? [HOSTS[k % 3]!, HOSTS[(k + 1) % 3]!] : [HOSTS[k % 3]!];
        const word = k % 50 === 0 ? 'Rare' : k % 2 === 0 ? 'common' : 'other';
        return { target: `https://${hosts[0]}/img/${word}-${k}.jpg`, hosts, status: STATUSES[(k * 5 + j) % 4]!, fanOut: false };
      });
      const job = { jobId: `q${j}`, appId, zoneId: 'z', type: 'purge_url' as const, method: 'invalidate' as const, createdAt: T0 + j * 37 * 60_000, secretId: 's', clientIp: '::1', source: 'teo' as const, tasks };
      all.push(...(await s.createJob(job, { quotaType: 'purge_url', day: '2026-01-01', amount: 15, daily: 1e9 })).tasks);
    }
    const end = T0 + 120 * 37 * 60_000;
    const queries: TaskQuery[] = [];
    // [30, 2]: the page ends exactly at a statement's reach (32, see `reach`); the others reach past it.
    for (const [offset, limit] of [[0, 20], [20, 20], [30, 2], [1000, 50], [1590, 30], [0, 0]] as const) {
      const base = { appId: APP, offset, limit };
      queries.push(
        base,
        { ...base, statuses: ['success'] },
        { ...base, statuses: ['failed', 'timeout'] },
        { ...base, hosts: ['b.example'] },
        { ...base, hosts: ['a.example', 'c.example'], statuses: ['success', 'processing'], from: T0 + 5 * HOUR, to: end - 3 * HOUR },
        { ...base, hosts: ['a.example', 'b.example', 'c.example'] },
        // A value listed twice is one probe: its tasks are counted and paged once.
        { ...base, statuses: ['failed', 'failed'], hosts: ['a.example'] },
        { ...base, statuses: ['success', 'timeout', 'success'], hosts: ['b.example', 'b.example'] },
        { ...base, targetContains: 'COMMON' },
        { ...base, targetContains: 'rare-' },
        { ...base, targetContains: 'jpg', from: T0 + 90 * 60_000, to: end - 7 * HOUR },
        { ...base, targetContains: 'other-1', statuses: ['failed'], hosts: ['c.example'] },
        { ...base, targetContains: 'g' }, // no trigram: row by row, window by window
        // Across punctuation (folded to q in the index, migration 7), upper case, and punctuation alone.
        { ...base, targetContains: 'IMG/Common-1' },
        { ...base, targetContains: 'b.example/img/rare-', from: T0 + 3 * HOUR },
        { ...base, targetContains: 'n-2', statuses: ['success', 'timeout'] },
        { ...base, targetContains: '://' },
        { ...base, targetContains: '0.jp' },
        { ...base, targetContains: 'nothing-like-this' },
      );
    }
    // Twice: the index asked for every trigram of a needle, then (a sample of the targets taken) for a few.
    for (const sampled of [false, true]) {
      if (sampled) await s.refreshTargetSample();
      for (const q of queries) {
        const want = expected(all, q);
        const got = await s.listTasks(q);
        const what = `${JSON.stringify(q)}${sampled ? ' (sampled)' : ''}`;
        assert.deepEqual(got.tasks.map((x) => x.id), want.tasks.map((x) => x.id), `page of ${what}`);
        assert.deepEqual(got.tasks, want.tasks, `rows of ${what}`);
        // A fuzzy target counts less far past the page (each match counted costs its candidate rows).
        const cap = q.offset + q.limit + (q.targetContains === undefined ? COUNT_AHEAD : FUZZY_COUNT_AHEAD);
        assert.equal(got.total, Math.min(want.total, cap), `total of ${what} (exact ${want.total})`);
      }
    }
    // A fuzzy + domain query asks the index for the domain too (migration 8): only that domain's candidates
    // are read, not every candidate of the needle.
    const withDomain = (await s.explainListTasks({ appId: APP, targetContains: 'common-1', hosts: ['b.example'], offset: 0, limit: 20 }, { forbidSeqScan: true })).join('\n');
    assert.match(withDomain, /Index Cond: \(\(hosts && /, withDomain);
    // Sampled, the index is asked for a few of a long needle's trigrams, not its 19 (target-sample.ts).
    const plan = (await s.explainListTasks({ appId: APP, targetContains: 'example/img/common-12', to: end, offset: 0, limit: 20 })).join('\n');
    const asked = /~~ '%([^']*)%'::text/.exec(plan)?.[1];
    assert.ok(asked !== undefined, plan);
    const trigrams = asked.split('%').reduce((n, x) => n + x.length - 2, 0);
    assert.ok(trigrams >= 1 && trigrams <= 6, `asked for ${asked}`);
    // The cap is reached (the reference's total is above it) by at least one shape, and a client paging
    // while offset < total still walks every match.
    assert.ok(queries.some((q) => q.targetContains === undefined && expected(all, q).total > q.offset + q.limit + COUNT_AHEAD));
    assert.ok(queries.some((q) => q.targetContains !== undefined && expected(all, q).total > q.offset + q.limit + FUZZY_COUNT_AHEAD));
    const walk: number[] = [];
    for (let offset = 0; ; offset += 100) {
      const r = await s.listTasks({ appId: APP, targetContains: 'jpg', offset, limit: 100 });
      walk.push(...r.tasks.map((x) => x.id));
      if (offset + 100 >= r.total) break;
    }
    assert.deepEqual(walk, expected(all, { appId: APP, targetContains: 'jpg', offset: 0, limit: 1e9 }).tasks.map((x) => x.id));
  });

  it("folds a needle exactly as the fuzzy index's expression folds a target (migrations 7 and 8)", async (t) => {
    const migration = PG_MIGRATIONS.find((m) => m.version === 8)!;
    assert.ok(migration.sql.includes(`USING gin (hosts, (${TARGET_FOLD_SQL}) gin_trgm_ops)`), 'the index is on the expression the reader writes');
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    t.after(() => c.end());
    const printable = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');
    for (const text of [printable, "https://IMG.Example.com/a_b%c\\d'e/Été-ß.JPG?x=1&y=2", '']) {
      const { rows } = await c.query<{ f: string }>(`SELECT ${TARGET_FOLD_SQL.replace('(target', '($1::text')} AS f`, [text]);
      assert.equal(rows[0]!.f, foldTarget(text), text);
      // The row check's case folding (lower under the C collation) is asciiLower's.
      const lowered = (await c.query<{ l: string }>('SELECT lower($1::text COLLATE "C") AS l', [text])).rows[0]!.l;
      assert.equal(lowered, asciiLower(text), text);
      assert.equal([...foldTarget(text)].length, [...text].length, 'one character for one');
    }
    assert.equal(foldTarget('T-Playli.JS?a=É'), 'tqplayliqjsqaqÉ');
    for (const [needle, searchable] of [['://', false], ['ab', false], ['a-b', true], ['jpg', true], ['-/', false], ['é-x', true]] as const) {
      assert.equal(trigramSearchable(needle), searchable, needle);
    }
  });
});
