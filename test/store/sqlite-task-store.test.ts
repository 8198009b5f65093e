// Runs the TaskStore conformance suite against SQLite, plus what only the SQLite store promises.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs, { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { TaskType } from '../../src/purge/types.ts';
import { openStore } from '../../src/store/index.ts';
import { LATEST_VERSION, migrate, MIGRATIONS } from '../../src/store/sqlite/migrations.ts';
import { ftsTerm, SqliteTaskStore, targetHash, trigramsOf } from '../../src/store/sqlite/sqlite-task-store.ts';
import { legacyTargetHash, TRIGRAM_BACKLOG_MAX } from '../../src/store/sqlite/sqlite-rows.ts';
import { DuplicateJobIdError, QuotaExceededError, type NewJob, type QuotaCharge } from '../../src/store/task-store.ts';
import { describeTaskStoreConformance } from './task-store-conformance.ts';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Opens the store at `path` (migrating an older database) and adds job 'new' of app 1 with one task for `target` on a.example. */
async function startWithNewJob(t: TestContext, path: string, createdAt: number, target: string): Promise<SqliteTaskStore> {
  const store = new SqliteTaskStore({ path, readers: 0 });
  await store.start();
  t.after(() => store.close());
  await store.createJob(
    {
      jobId: 'new', appId: 1, zoneId: 'z', type: 'purge_url', method: 'invalidate', createdAt, secretId: 's', clientIp: '::1', source: 'teo',
      tasks: [{ target, hosts: ['a.example'], status: 'success', fanOut: false }],
    },
    { quotaType: 'purge_url', day: '2026-01-01', amount: 1, daily: 10 },
  );
  return store;
}

/** Puts `fake` in place of fs.fdatasync for the store (its ESM import is resynced) until the test ends; returns the real one. */
function replaceFdatasync(t: TestContext, fake: (fd: number, cb: (error: NodeJS.ErrnoException | null) => void) => void): typeof fs.fdatasync {
  const real = fs.fdatasync;
  fs.fdatasync = fake as typeof fs.fdatasync;
  syncBuiltinESMExports();
  t.after(() => {
    fs.fdatasync = real;
    syncBuiltinESMExports();
  });
  return real;
}

const oneUrlJob = (jobId: string): NewJob => ({
  jobId, appId: 7, zoneId: 'zone-a', type: 'purge_url', method: 'invalidate', createdAt: 1_000, secretId: 'AKID', clientIp: '127.0.0.1', source: 'teo',
  tasks: [{ target: `https://a.example.com/${jobId}`, hosts: ['a.example.com'], status: 'processing', fanOut: true }],
});
const ONE_URL_CHARGE = { quotaType: 'purge_url' as const, day: '2026-01-01', amount: 1, daily: 100 };

describeTaskStoreConformance('sqlite (file)', (t) => new SqliteTaskStore({ path: join(tempDir(t), 'db', 'tasks.db') }));
// The file store leaves host rows to its backlog (written by the reads that need them); this one writes
// them with every commit, the other way they get written.
describeTaskStoreConformance('sqlite (:memory:)', () => new SqliteTaskStore({ path: ':memory:', hostRowsBacklog: 0 }));

describe('SqliteTaskStore specifics', () => {
  it('creates the database directory and uses WAL', async (t) => {
    const dir = tempDir(t);
    const path = join(dir, 'a', 'b', 'tasks.db');
    const store = new SqliteTaskStore({ path });
    t.after(() => store.close());
    await store.start();
    assert.ok(existsSync(path));
    const db = new DatabaseSync(path, { readOnly: true });
    t.after(() => db.close());
    assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
    assert.equal((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, LATEST_VERSION);
  });

  it('regression: the writer\'s and the read workers\' page caches are bounded at 16 MiB (64 MiB was most of the soak\'s control-plane RSS growth)', async (t) => {
    const store = new SqliteTaskStore({ path: join(tempDir(t), 'tasks.db'), readers: 1 });
    t.after(() => store.close());
    await store.start();
    assert.deepEqual(await store.pageCacheKiB(), { writer: 16 * 1024, reader: 16 * 1024 });
  });

  it('regression: a committed log entry is not streamed (readLog, lastSeq) before the WAL sync that acknowledges it', async (t) => {
    const path = join(tempDir(t), 'tasks.db');
    const store = new SqliteTaskStore({ path, readers: 0 });
    t.after(() => store.close());
    await store.start();
    const job = (jobId: string) => ({
      jobId, appId: 7, zoneId: 'zone-a', type: 'purge_url' as const, method: 'invalidate' as const, createdAt: 1_000, secretId: 'AKID', clientIp: '127.0.0.1', source: 'teo' as const,
      tasks: [{ target: `https://a.example.com/${jobId}`, hosts: ['a.example.com'], status: 'processing' as const, fanOut: true }],
    });
    const charge = { quotaType: 'purge_url' as const, day: '2026-01-01', amount: 1, daily: 100 };
    const acked = store.createJob(job('j1'), charge);
    // The group commit runs in the check phase it was queued for, this callback right after it: the
    // transaction is committed, its WAL sync (thread pool) cannot have been answered yet.
    await new Promise((resolve) => setImmediate(resolve));
    const raw = new DatabaseSync(path, { readOnly: true });
    t.after(() => raw.close());
    assert.equal((raw.prepare('SELECT max(seq) AS s FROM tasks').get() as { s: number }).s, 1, 'the entry is committed');
    assert.equal(await store.lastSeq(), 0, 'lastSeq before the sync');
    assert.deepEqual(await store.readLog(0, 10), [], 'readLog before the sync');
    const { tasks } = await acked;
    assert.equal(tasks[0]?.seq, 1);
    assert.equal(await store.lastSeq(), 1, 'lastSeq after the sync');
    assert.deepEqual((await store.readLog(0, 10)).map((e) => e.seq), [1]);
  });

  it('a batch committed while a WAL sync runs gets its own sync at once, and is answered only after the earlier one succeeded; a failed sync fails the batches beside it', async (t) => {
    // fdatasync held by the test: node:fs is patched and the ESM bindings resynced, so the store's import sees it.
    const held: Array<(error: NodeJS.ErrnoException | null) => void> = [];
    let holding = true;
    const realFdatasync = replaceFdatasync(t, (fd, cb) => {
      if (holding) held.push(cb);
      else realFdatasync(fd, cb);
    });
    const store = new SqliteTaskStore({ path: join(tempDir(t), 'tasks.db'), readers: 0 });
    t.after(async () => {
      holding = false;
      for (const cb of held.splice(0)) cb(null);
      await store.close();
    });
    await store.start();
    const answered: string[] = [];
    const submit = (jobId: string) => {
      const p = store.createJob(oneUrlJob(jobId), ONE_URL_CHARGE).then(
        () => void answered.push(`${jobId} ok`),
        (e: Error) => void answered.push(`${jobId} ${e.message}`),
      );
      return p;
    };
    const turn = () => new Promise((resolve) => setImmediate(resolve));

    const j1 = submit('j1');
    await turn();
    const j2 = submit('j2');
    await turn();
    assert.equal(held.length, 2, 'j2\'s batch did not wait for j1\'s sync to end before its own started');
    const j3 = submit('j3');
    await turn();
    assert.equal(held.length, 2, 'at most two syncs at once');
    held[1]!(null);
    await turn();
    assert.deepEqual(answered, [], 'j2\'s sync ended first: nothing answered before j1\'s sync succeeded');
    assert.equal(await store.lastSeq(), 0);
    held[0]!(null);
    await Promise.all([j1, j2]);
    assert.deepEqual(answered, ['j1 ok', 'j2 ok']);
    assert.equal(await store.lastSeq(), 2);
    assert.equal(held.length, 3, 'j3 got its sync once one was free');
    held[2]!(null);
    await j3;
    assert.equal(await store.lastSeq(), 3);

    // j4's sync fails after j5's (started beside it) succeeded: j5 is not durable for that success.
    const j4 = submit('j4');
    await turn();
    const j5 = submit('j5');
    await turn();
    assert.equal(held.length, 5);
    held[4]!(null);
    held[3]!(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await Promise.all([j4, j5]);
    assert.deepEqual(answered.slice(3), ['j4 EIO: i/o error, fdatasync', 'j5 EIO: i/o error, fdatasync']);
    assert.equal(await store.lastSeq(), 3, 'the entries of the failed syncs are not offered to nodes');
  });

  it('close() waits for the WAL syncs in flight before it closes the WAL', async (t) => {
    const held: Array<() => void> = [];
    // Each sync really runs, but only once the test lets it.
    const realFdatasync = replaceFdatasync(t, (fd, cb) => void held.push(() => realFdatasync(fd, cb)));
    const store = new SqliteTaskStore({ path: join(tempDir(t), 'tasks.db'), readers: 0 });
    await store.start();
    const jobs = [store.createJob(oneUrlJob('j1'), ONE_URL_CHARGE)];
    await new Promise((resolve) => setImmediate(resolve));
    jobs.push(store.createJob(oneUrlJob('j2'), ONE_URL_CHARGE));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(held.length, 2);
    let closed = false;
    const closing = store.close().then(() => void (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(closed, false, 'close() waits for the syncs in flight');
    // Released in reverse: a descriptor closed under the first would fail it (EBADF).
    while (held.length > 0) {
      held.pop()!();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await closing;
    for (const r of await Promise.all(jobs)) assert.equal(r.tasks.length, 1);
  });

  it('a job that fails half-way through its writes fails alone: the rest of its group commit is kept, nothing of it is', async (t) => {
    const store = new SqliteTaskStore({ path: join(tempDir(t), 'tasks.db'), readers: 0 });
    t.after(() => store.close());
    await store.start();
    const job = (jobId: string, target: string) => ({
      jobId, appId: 7, zoneId: 'zone-a', type: 'purge_url' as const, method: 'invalidate' as const, createdAt: 1_000, secretId: 'AKID', clientIp: '127.0.0.1', source: 'teo' as const,
      tasks: [
        { target: `https://a.example.com/${jobId}/1`, hosts: ['a.example.com'], status: 'processing' as const, fanOut: true },
        { target, hosts: ['a.example.com'], status: 'processing' as const, fanOut: true },
      ],
    });
    const charge = { quotaType: 'purge_url' as const, day: '2026-01-01', amount: 2, daily: 100 };
    // Same turn of the loop: one batch. The second task of `bad` breaks tasks.target NOT NULL after
    // its job row and first task were written.
    const results = await Promise.allSettled([
      store.createJob(job('good-1', 'https://a.example.com/g1'), charge),
      store.createJob(job('bad', null as unknown as string), charge),
      store.createJob(job('good-2', 'https://a.example.com/g2'), charge),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.equal(await store.getJob(7, 'bad'), null);
    assert.ok(await store.getJob(7, 'good-2'));
    // The log has no gap where the failed job's seqs were handed out and taken back.
    assert.deepEqual((await store.readLog(0, 10)).map((e) => [e.seq, e.jobId]), [[1, 'good-1'], [2, 'good-1'], [3, 'good-2'], [4, 'good-2']]);
    assert.equal((await store.quotaUsage(7, '2026-01-01')).get('purge_url'), 4);
  });

  it('a job that fails after all its tasks were written gives back its seqs and leaves no hour range: the batch writes both once', async (t) => {
    const path = join(tempDir(t), 'tasks.db');
    const store = new SqliteTaskStore({ path, readers: 0 });
    t.after(() => store.close());
    await store.start();
    // The last write of a job settled at creation is its webhook delivery: a trigger refuses the one of `bad`.
    const side = new DatabaseSync(path);
    side.exec("CREATE TRIGGER refuse_bad BEFORE INSERT ON webhook_deliveries WHEN NEW.job_id = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END");
    side.close();
    const HOUR = 3_600_000;
    const job = (jobId: string, createdAt: number) => ({
      jobId, appId: 7, zoneId: 'zone-a', type: 'purge_url' as const, method: 'invalidate' as const, createdAt, secretId: 'AKID', clientIp: '127.0.0.1', source: 'teo' as const,
      // Settled at creation (so it has a delivery), and given seqs all the same.
      tasks: [1, 2].map((k) => ({ target: `https://a.example.com/${jobId}/${k}`, hosts: ['a.example.com'], status: 'success' as const, fanOut: true })),
    });
    const charge = { quotaType: 'purge_url' as const, day: '2026-01-01', amount: 2, daily: 100 };
    const hooks = () => ['https://hooks.example.com/purged'];
    const results = await Promise.allSettled([
      store.createJob(job('good-1', 1_000), charge, hooks),
      store.createJob(job('bad', 5 * HOUR), charge, hooks),
      store.createJob(job('good-2', 1_000), charge, hooks),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((results[1] as PromiseRejectedResult).reason), /refused/);
    assert.deepEqual((await store.readLog(0, 10)).map((e) => [e.seq, e.jobId]), [[1, 'good-1'], [2, 'good-1'], [3, 'good-2'], [4, 'good-2']]);
    assert.equal(await store.lastSeq(), 4);
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      const ids = db.prepare('SELECT min(id) AS lo, max(id) AS hi FROM tasks').get() as { lo: number; hi: number };
      assert.deepEqual(db.prepare('SELECT hour, min_id, max_id FROM task_id_ranges ORDER BY hour').all().map((r) => ({ ...r })), [{ hour: 0, min_id: ids.lo, max_id: ids.hi }]);
    } finally {
      db.close();
    }
    // The next batch goes on from seq 4.
    await store.createJob(job('good-3', 1_000), charge, hooks);
    assert.deepEqual((await store.readLog(4, 10)).map((e) => e.seq), [5, 6]);
  });

  it('a large job\'s tasks, inserted 50 rows a statement, come back with the ids, seqs and fields they were stored with, in order', async (t) => {
    const store = new SqliteTaskStore({ path: join(tempDir(t), 'tasks.db'), readers: 0 });
    t.after(() => store.close());
    await store.start();
    const job = (jobId: string, n: number): NewJob => ({
      ...oneUrlJob(jobId),
      tasks: Array.from({ length: n }, (_, i) => ({
        target: `https://h${i % 3}.example.com/${jobId}/${i}`,
        hosts: [`h${i % 3}.example.com`, `h${i % 3}.example.com`],
        // Every seventh task has no node to apply it: settled at once, no seq.
        ...(i % 7 === 3 ? { status: 'success' as const, fanOut: false } : { status: 'processing' as const, fanOut: true }),
        ...(i % 5 === 0 ? { headers: { 'x-n': String(i) } } : {}),
      })),
    });
    const charge = { ...ONE_URL_CHARGE, amount: 1, daily: 1e6 };
    const [a, b] = await Promise.all([store.createJob(job('big', 123), charge), store.createJob(job('next', 51), charge)]);
    const tasks = [...a.tasks, ...b.tasks];
    // Ids run on across the chunks (50, 50, then 23 one by one) and into the next job.
    assert.deepEqual(tasks.map((x) => x.id), tasks.map((_, i) => tasks[0]!.id + i));
    const seqs = tasks.filter((x) => x.seq !== null).map((x) => x.seq!);
    assert.deepEqual(seqs, seqs.map((_, i) => seqs[0]! + i), 'seqs gap-free, in task order');
    assert.equal(seqs.length, tasks.filter((_, i) => (i < 123 ? i : i - 123) % 7 !== 3).length);
    for (const [id, got] of [['big', a.tasks], ['next', b.tasks]] as const) {
      const stored = await store.jobTasks(7, id);
      assert.deepEqual(stored.map((x) => ({ ...x })), got.map((x) => ({ ...x })), id);
      assert.deepEqual(stored.map((x) => x.hosts), got.map((_, i) => [`h${i % 3}.example.com`]));
    }
    const log = await store.readLog(seqs[0]! - 1, 1000);
    assert.deepEqual(log.map((e) => e.seq), seqs);
    assert.deepEqual(log.find((e) => e.target === 'https://h2.example.com/big/5')?.headers, { 'x-n': '5' });
  });

  it('jobs of one group commit are admitted in turn against one quota counter: each sees what the earlier ones took', async (t) => {
    const store = new SqliteTaskStore({ path: join(tempDir(t), 'tasks.db'), readers: 0 });
    t.after(() => store.close());
    await store.start();
    await store.createJob(oneUrlJob('before'), { ...ONE_URL_CHARGE, amount: 1, daily: 6 });
    const charge = (amount: number, over: Partial<QuotaCharge> = {}): QuotaCharge => ({ ...ONE_URL_CHARGE, amount, daily: 6, ...over });
    // Same turn of the loop: one batch.
    const results = await Promise.allSettled([
      store.createJob(oneUrlJob('a'), charge(2)),
      store.createJob(oneUrlJob('b'), charge(2)),
      store.createJob(oneUrlJob('c'), charge(2)),
      store.createJob(oneUrlJob('a'), charge(1)), // duplicate id: refused, charges nothing
      store.createJob(oneUrlJob('d'), charge(1)),
      store.createJob(oneUrlJob('e'), charge(1)),
      store.createJob(oneUrlJob('other-day'), charge(5, { day: '2026-01-02' })),
      store.createJob(oneUrlJob('prefix'), charge(3, { quotaType: 'purge_prefix' })),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const refusal = (i: number): unknown => (results[i] as PromiseRejectedResult).reason;
    const [c, dup, e] = [refusal(2), refusal(3), refusal(5)];
    assert.ok(c instanceof QuotaExceededError && c.used === 5, 'c sees before + a + b');
    assert.ok(dup instanceof DuplicateJobIdError);
    assert.ok(e instanceof QuotaExceededError && e.used === 6, 'e sees d too');
    assert.deepEqual([...(await store.quotaUsage(7, '2026-01-01'))].sort(), [['purge_prefix', 3], ['purge_url', 6]]);
    assert.equal((await store.quotaUsage(7, '2026-01-02')).get('purge_url'), 5);
    assert.equal(await store.getJob(7, 'c'), null);
  });

  it('checkpoints run in their own thread: the WAL is copied into the database without a COMMIT doing it (issue 11)', async (t) => {
    const path = join(tempDir(t), 'tasks.db');
    const store = new SqliteTaskStore({ path, readers: 0 });
    t.after(() => store.close());
    await store.start();
    const charge = { quotaType: 'purge_url' as const, day: '2026-01-01', amount: 1, daily: 1_000_000 };
    for (let b = 0; b < 20; b++) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => store.createJob({
        jobId: `j-${b}-${i}`, appId: 7, zoneId: 'zone-a', type: 'purge_url', method: 'invalidate', createdAt: 1_000, secretId: 'AKID', clientIp: '127.0.0.1', source: 'teo',
        tasks: Array.from({ length: 20 }, (_, k) => ({ target: `https://a.example.com/${b}/${i}/${k}/${'x'.repeat(100)}`, hosts: ['a.example.com'], status: 'processing' as const, fanOut: true })),
      }, charge)));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const stats = store.checkpointStats();
    assert.ok(stats, 'a file store has a checkpoint thread');
    assert.equal(stats.failures, 0);
    assert.ok((stats.last?.checkpointed ?? 0) > 0, `the thread copied frames: ${JSON.stringify(stats.last)}`);
    assert.ok(statSync(path).size > 1024 * 1024, `the database file holds the checkpointed pages: ${statSync(path).size} B, WAL ${statSync(`${path}-wal`).size} B, ${JSON.stringify(stats.last)}`);
  });

  it('regression: a trickle of commits does not have the WAL rewound after each (each rewind fsyncs the WAL header on the event loop)', async (t) => {
    const path = join(tempDir(t), 'tasks.db');
    const store = new SqliteTaskStore({ path, readers: 0 });
    t.after(() => store.close());
    await store.start();
    // The WAL header's checkpoint sequence number (bytes 12-15) goes up each time the WAL is rewound.
    const rewinds = new Set<number>();
    const charge = { quotaType: 'purge_url' as const, day: '2026-01-01', amount: 1, daily: 1_000_000 };
    // ~2.5 s of one small purge every 20 ms: a checkpoint every 100 ms had the WAL rewound ~25 times.
    for (let i = 0; i < 100; i++) {
      await store.createJob(oneUrlJob(`trickle-${i}`), charge);
      rewinds.add(fs.readFileSync(`${path}-wal`).readUInt32BE(12));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Paced by frames (about one checkpoint per 1,000): 100 commits of ~10-20 frames allow a few, not ~25.
    assert.ok(rewinds.size <= 6, `the WAL was rewound ${rewinds.size - 1} times in 100 commits over ~2.5 s`);
    assert.equal(store.checkpointStats()?.failures, 0);
  });

  it('regression: close() keeps the process alive until the checkpoint thread is gone (a script that starts and closes a store exits 0)', (t) => {
    const path = join(tempDir(t), 'tasks.db');
    const store = new URL('../../src/store/sqlite/sqlite-task-store.ts', import.meta.url).href;
    const code = `import { SqliteTaskStore } from ${JSON.stringify(store)}; const s = new SqliteTaskStore({ path: ${JSON.stringify(path)} }); await s.start(); await s.close(); console.log('closed');`;
    const script = join(tempDir(t), 'start-close.mjs');
    writeFileSync(script, code);
    const r = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'closed');
  });

  it('applies migrations once and refuses a database from a newer build', async (t) => {
    const db = new DatabaseSync(':memory:');
    t.after(() => db.close());
    assert.deepEqual(migrate(db), MIGRATIONS.map((m) => m.version));
    assert.deepEqual(migrate(db), []);
    db.exec(`PRAGMA user_version = ${LATEST_VERSION + 1}`);
    assert.throws(() => migrate(db), /schema version .* newer EdgePurge build/);
  });

  it('a failing migration leaves the database untouched', async (t) => {
    const db = new DatabaseSync(':memory:');
    t.after(() => db.close());
    const bad = [...MIGRATIONS, { version: LATEST_VERSION + 1, name: 'broken', sql: 'CREATE TABLE ok_one (x); CREATE TABLE (' }];
    assert.throws(() => migrate(db, bad), /migration \d+ \(broken\) failed/);
    assert.equal((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, 0);
    assert.equal(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name IN ('tasks', 'ok_one')").get()?.n, 0);
  });

  it('prune removes the trigram, host and id-range rows of what it deletes', async (t) => {
    const path = join(tempDir(t), 'tasks.db');
    // Every commit indexed at once, its host rows written: the pruned task's rows are there to remove.
    const store = new SqliteTaskStore({ path, trigramBacklog: 0, hostRowsBacklog: 0 });
    t.after(() => store.close());
    await store.start();
    const base = Date.UTC(2026, 0, 1);
    for (const [i, word] of [[0, 'oldword'], [1, 'newword']] as const) {
      await store.createJob(
        {
          jobId: `prune${i}0000000`, appId: 1, zoneId: 'z', type: 'purge_url', method: 'invalidate',
          createdAt: base + i * 86_400_000, secretId: 's', clientIp: '::1', source: 'teo',
          tasks: [{ target: `https://h.example/${word}.js`, hosts: ['h.example', 'i.example'], status: 'success', fanOut: true }],
        },
        { quotaType: 'purge_url', day: '2026-01-01', amount: 1, daily: 10 },
      );
    }
    assert.equal(await store.prune(base + 3_600_000), 1);
    const db = new DatabaseSync(path, { readOnly: true });
    t.after(() => db.close());
    const n = (sql: string): unknown => db.prepare(sql).get()?.n;
    assert.equal(n(`SELECT count(*) AS n FROM task_grams WHERE task_grams MATCH '"ldw"'`), 0);
    assert.equal(n(`SELECT count(*) AS n FROM task_grams WHERE task_grams MATCH '"eww"'`), 1);
    assert.equal(n('SELECT count(*) AS n FROM task_hosts'), 2);
    assert.equal(n('SELECT count(*) AS n FROM jobs'), 1);
    assert.equal(n(`SELECT count(*) AS n FROM task_id_ranges WHERE hour < ${Math.floor(base / 3_600_000) + 1}`), 0);
  });

  it('migration 7: the exact-target key is a fixed fast hash; tasks keyed by SHA-256 before it are still found beside new ones', async (t) => {
    // Stored rows hold the key: these values must never change.
    assert.equal(targetHash('https://a.example/x'), 224_235_618_797_525);
    assert.equal(targetHash(''), 242_683_283_934_595);
    assert.notEqual(targetHash('https://a.example/x'), legacyTargetHash('https://a.example/x'));
    const path = join(tempDir(t), 'tasks.db');
    const db = new DatabaseSync(path);
    migrate(db, MIGRATIONS.filter((m) => m.version <= 6));
    const url = 'https://a.example/same.js';
    const at = Date.UTC(2026, 0, 1);
    db.prepare(`INSERT INTO jobs (job_id, app_id, zone_id, type, method, created_at, secret_id, client_ip, source, task_count) VALUES ('old', 1, 'z', 'purge_url', 'invalidate', ?, 's', '::1', 'teo', 1)`).run(at);
    const id = Number(
      db.prepare(`INSERT INTO tasks (job_id, app_id, zone_id, type, method, target, target_hash, hosts, status, created_at, updated_at) VALUES ('old', 1, 'z', 'purge_url', 'invalidate', ?, ?, '["a.example"]', 'success', ?, ?)`)
        .run(url, legacyTargetHash(url), at, at).lastInsertRowid,
    );
    db.prepare('INSERT INTO task_id_ranges (hour, min_id, max_id) VALUES (?, ?, ?)').run(Math.floor(at / 3_600_000), id, id);
    db.prepare(`INSERT INTO task_hosts (task_id, host, app_id, created_at, status, type, zone_id) VALUES (?, 'a.example', 1, ?, 'success', 'purge_url', 'z')`).run(id, at);
    db.prepare(`INSERT INTO refresh_records (job_id, host, ord, record_id, app_id, created_at, type, job_tasks) VALUES ('old', 'a.example', 0, 77, 1, ?, 'purge_url', 1)`).run(at);
    db.close();
    const store = await startWithNewJob(t, path, at + 1, url);
    const check = new DatabaseSync(path, { readOnly: true });
    t.after(() => check.close());
    assert.deepEqual(check.prepare('SELECT job_id, target_hash FROM tasks ORDER BY id').all().map((r) => ({ ...r })), [
      { job_id: 'old', target_hash: legacyTargetHash(url) },
      { job_id: 'new', target_hash: targetHash(url) },
    ]);
    assert.equal(check.prepare(`SELECT value FROM store_meta WHERE key = 'target_hash_v7_from_id'`).get()?.value, id + 1);
    assert.deepEqual((await store.listTasks({ appId: 1, offset: 0, limit: 10, target: url })).tasks.map((x) => x.jobId), ['new', 'old']);
    assert.deepEqual((await store.listTasks({ appId: 1, offset: 0, limit: 10, target: url, from: at, to: at })).tasks.map((x) => x.jobId), ['old']);
    // A range that starts after the last SHA-256-keyed task probes the new key alone (v12); one that holds it, both.
    assert.deepEqual((await store.listTasks({ appId: 1, offset: 0, limit: 10, target: url, from: at + 1 })).tasks.map((x) => x.jobId), ['new']);
    assert.deepEqual((await store.listTasks({ appId: 1, offset: 0, limit: 10, target: url, from: at })).tasks.map((x) => x.jobId), ['new', 'old']);
    assert.deepEqual((await store.listRefreshRecords({ appId: 1, offset: 0, limit: 10, target: url })).records.map((r) => r.job.jobId), ['new', 'old']);
  });

  it('the trigram index groups consecutive tasks (issue 11): a fuzzy target finds exactly the tasks holding it, across groups, batches and prunes', async (t) => {
    const path = join(tempDir(t), 'tasks.db');
    // Every commit indexed at once (no backlog, v10): every task is in a group.
    const store = new SqliteTaskStore({ path, readers: 0, trigramBacklog: 0 });
    t.after(() => store.close());
    await store.start();
    const base = Date.UTC(2026, 0, 1);
    const charge: QuotaCharge = { quotaType: 'purge_url', day: '2026-01-01', amount: 1, daily: 1e9 };
    const words = ['Alpha', 'beta', 'gamma', 'delta', 'epsilon'];
    // Jobs of 1 to 40 URLs, several per batch (one transaction), so that groups span jobs and runs end mid-group.
    const jobs: NewJob[] = Array.from({ length: 60 }, (_, i) => ({
      jobId: `grp${String(i).padStart(9, '0')}`, appId: 1, zoneId: 'z', type: 'purge_url', method: 'invalidate', createdAt: base + i * 60_000,
      secretId: 's', clientIp: '::1', source: 'teo',
      tasks: Array.from({ length: 1 + ((i * 7) % 40) }, (_, k) => ({
        target: `https://h${i % 3}.example/${words[(i + k) % 5]}/${i}-${k}.js`, hosts: [`h${i % 3}.example`], status: 'success' as const, fanOut: false,
      })),
    }));
    for (let i = 0; i < jobs.length; i += 6) await Promise.all(jobs.slice(i, i + 6).map((j) => store.createJob(j, { ...charge, amount: j.tasks.length })));
    const db = new DatabaseSync(path, { readOnly: true });
    t.after(() => db.close());
    const n = (sql: string): unknown => db.prepare(sql).get()?.n;
    const tasks = jobs.reduce((sum, j) => sum + j.tasks.length, 0);
    // Groups of up to 8: far fewer rows than tasks (runs end at a batch's end).
    assert.ok(Number(n('SELECT count(*) AS n FROM task_grams')) <= Math.ceil(tasks / 8) + 10, 'grouped');
    // Every task is in exactly one group, and every group holds a task.
    const coverage = () => {
      assert.equal(n(`SELECT count(*) AS n FROM tasks t WHERE (SELECT count(*) FROM task_grams g WHERE g.rowid >= ((t.id - 15) << 4) AND g.rowid <= ((t.id << 4) | 15) AND t.id <= (g.rowid >> 4) + (g.rowid & 15)) <> 1`), 0);
      assert.equal(n('SELECT count(*) AS n FROM task_grams g WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id >= g.rowid >> 4 AND t.id <= (g.rowid >> 4) + (g.rowid & 15))'), 0);
    };
    coverage();
    const expect = async (needle: string, kept: (j: NewJob) => boolean) => {
      const want = jobs.filter(kept).flatMap((j) => j.tasks.filter((x) => x.target.toLowerCase().includes(needle.toLowerCase())).map((x) => x.target)).sort();
      const got = await store.listTasks({ appId: 1, offset: 0, limit: 10_000, targetContains: needle });
      assert.deepEqual(got.tasks.map((x) => x.target).sort(), want, needle);
      assert.equal(got.total, want.length, needle);
      const week = await store.listTasks({ appId: 1, offset: 0, limit: 10_000, targetContains: needle, from: base + 30 * 60_000, to: base + 45 * 60_000 });
      assert.deepEqual(week.tasks.map((x) => x.target).sort(), jobs.filter((j) => kept(j) && j.createdAt >= base + 30 * 60_000 && j.createdAt <= base + 45 * 60_000)
        .flatMap((j) => j.tasks.filter((x) => x.target.toLowerCase().includes(needle.toLowerCase())).map((x) => x.target)).sort(), `${needle} in a time range`);
    };
    const needles = ['alpha', 'h1.example/gamma', '/17-3.js', 'ta/5', '.js\nhttps', 'example/delta/59-', 'nowhere'];
    for (const needle of needles) await expect(needle, () => true);
    // Pruning the first 25 jobs: groups shared with job 25 keep their rows, groups of pruned tasks only go.
    assert.ok((await store.prune(base + 25 * 60_000)) > 0);
    for (const needle of needles) await expect(needle, (j) => j.createdAt >= base + 25 * 60_000);
    coverage();
  });

  it('migration 9: the per-task trigram index is rebuilt as groups; tasks stored before it are found by a fuzzy target, and new ones beside them', async (t) => {
    const path = join(tempDir(t), 'tasks.db');
    const db = new DatabaseSync(path);
    migrate(db, MIGRATIONS.filter((m) => m.version <= 8));
    const at = Date.UTC(2026, 0, 1);
    db.prepare(`INSERT INTO jobs (job_id, app_id, zone_id, type, method, created_at, secret_id, client_ip, source, task_count) VALUES ('old', 1, 'z', 'purge_url', 'invalidate', ?, 's', '::1', 'teo', 40)`).run(at);
    const insTask = db.prepare(`INSERT INTO tasks (job_id, app_id, zone_id, type, method, target, target_hash, hosts, status, created_at, updated_at) VALUES ('old', 1, 'z', 'purge_url', 'invalidate', ?, ?, '["a.example"]', 'success', ?, ?)`);
    const insFts = db.prepare('INSERT INTO task_fts (rowid, target) VALUES (?, ?)');
    const ids: number[] = [];
    for (let k = 0; k < 40; k++) {
      const url = `https://a.example/old/${k}.js`;
      const id = Number(insTask.run(url, targetHash(url), at, at).lastInsertRowid);
      insFts.run(id, url);
      ids.push(id);
    }
    // A gap, as a prune leaves one.
    db.prepare('DELETE FROM tasks WHERE id = ?').run(ids[20]!);
    db.prepare('INSERT INTO task_id_ranges (hour, min_id, max_id) VALUES (?, ?, ?)').run(Math.floor(at / 3_600_000), ids[0]!, ids.at(-1)!);
    db.close();
    const store = await startWithNewJob(t, path, at + 1, 'https://a.example/new/1.js');
    const check = new DatabaseSync(path, { readOnly: true });
    t.after(() => check.close());
    assert.equal(check.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'task_fts'`).get()?.n, 0);
    // 39 old tasks in ids 1..40 (six buckets of id >> 3, one holding the gap); the new one (id 41)
    // waits in the backlog above grams_through (v10), found row by row.
    assert.equal(check.prepare('SELECT count(*) AS n FROM task_grams').get()?.n, 6);
    assert.equal(check.prepare(`SELECT value AS n FROM store_meta WHERE key = 'grams_through'`).get()?.n, 40);
    const found = async (needle: string, range = {}) => (await store.listTasks({ appId: 1, offset: 0, limit: 100, targetContains: needle, ...range })).tasks.map((x) => x.target);
    assert.deepEqual(await found('old/3'), ['https://a.example/old/39.js', 'https://a.example/old/38.js', 'https://a.example/old/37.js', 'https://a.example/old/36.js', 'https://a.example/old/35.js', 'https://a.example/old/34.js', 'https://a.example/old/33.js', 'https://a.example/old/32.js', 'https://a.example/old/31.js', 'https://a.example/old/30.js', 'https://a.example/old/3.js']);
    assert.deepEqual(await found('old/20.'), []);
    assert.deepEqual(await found('/1.js'), ['https://a.example/new/1.js', 'https://a.example/old/1.js']);
    assert.deepEqual(await found('/1.js', { from: at, to: at }), ['https://a.example/old/1.js']);
  });

  it('regression: the exact-target index is keyed by buckets of task ids (migration 8): found exactly across buckets and time ranges (issue 11)', async (t) => {
    const store = new SqliteTaskStore({ path: join(tempDir(t), 'tasks.db'), readers: 0 });
    t.after(() => store.close());
    await store.start();
    const base = Date.UTC(2026, 0, 1);
    const same = 'https://h.example/same.js';
    // 12,000 one-URL jobs over 50 hours (three buckets of 4,096 ids and then some), every 1,000th of them the same URL, in two apps.
    const jobs: NewJob[] = Array.from({ length: 12_000 }, (_, i) => ({
      jobId: `bk${String(i).padStart(10, '0')}`, appId: 1 + (i % 2), zoneId: 'z', type: 'purge_url', method: 'invalidate', createdAt: base + i * 15_000,
      secretId: 's', clientIp: '::1', source: 'teo',
      tasks: [{ target: i % 1000 === 0 || i % 1000 === 1 ? same : `https://h.example/f${i}.js`, hosts: ['h.example'], status: 'success', fanOut: false }],
    }));
    store.bulkLoadForBench(jobs);
    const want = (appId: number, from?: number, to?: number) =>
      jobs.filter((j) => j.appId === appId && j.tasks[0]!.target === same && (from === undefined || j.createdAt >= from) && (to === undefined || j.createdAt <= to)).map((j) => j.jobId).reverse();
    for (const [appId, from, to] of [[1], [2], [1, base + 3_000 * 15_000, base + 9_000 * 15_000], [2, base + 5_000 * 15_000 + 1], [1, undefined, base + 1_500 * 15_000]] as const) {
      const got = await store.listTasks({ appId, offset: 0, limit: 50, target: same, ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) });
      assert.deepEqual(got.tasks.map((x) => x.jobId), want(appId, from, to), `app ${appId} ${from} ${to}`);
      assert.equal(got.total, want(appId, from, to).length);
    }
    assert.equal((await store.listTasks({ appId: 1, offset: 0, limit: 50, target: same, from: base - 10, to: base - 1 })).total, 0);
    assert.match(store.explainListTasks({ appId: 1, offset: 0, limit: 10, target: same }).join('\n'), /USING INDEX tasks_target \(app_id=\? AND <expr>=\? AND target_hash=\?\)/);
  });

  it('a store used before start() fails with an explicit error', async () => {
    const store = new SqliteTaskStore({ path: ':memory:' });
    await assert.rejects(store.lastSeq(), /not started/);
  });

  it('the data survives close and reopen', async (t) => {
    const path = join(tempDir(t), 'tasks.db');
    const a = new SqliteTaskStore({ path });
    await a.start();
    await a.createJob(
      {
        jobId: 'reopen000001', appId: 1, zoneId: 'z', type: 'purge_url', method: 'delete', createdAt: 1,
        secretId: 's', clientIp: '::1', source: 'cdn',
        tasks: [{ target: 'https://h.example/x', hosts: ['h.example'], status: 'processing', fanOut: true }],
      },
      { quotaType: 'purge_url', day: '1970-01-01', amount: 1, daily: 10 },
    );
    await a.close();
    const b = new SqliteTaskStore({ path });
    t.after(() => b.close());
    await b.start();
    assert.equal((await b.getJob(1, 'reopen000001'))?.method, 'delete');
    assert.equal(await b.lastSeq(), 1);
  });

  it('splits needles into distinct code-point trigrams and quotes FTS syntax', () => {
    assert.deepEqual(trigramsOf('ab'), []);
    assert.deepEqual(trigramsOf('abc'), ['abc']);
    assert.deepEqual(trigramsOf('aaaaaa'), ['aaa']);
    assert.deepEqual(trigramsOf('图片.jpg'), ['图片.', '片.j', '.jp', 'jpg']);
    const long = trigramsOf('https://static.example.com/a/very/long/path/file-123456.jpg', 8);
    assert.equal(long.length, 8);
    assert.equal(long[0], 'htt');
    assert.equal(long[7], 'jpg');
    assert.equal(ftsTerm('a"b'), '"a""b"');
  });

  it('the trigram index lags by at most TRIGRAM_BACKLOG_MAX tasks, searched row by row meanwhile; the commit that reaches it indexes them all (migration 10)', async (t) => {
    const path = join(tempDir(t), 'tasks.db');
    const store = new SqliteTaskStore({ path, readers: 0 });
    t.after(() => store.close());
    await store.start();
    const db = new DatabaseSync(path, { readOnly: true });
    t.after(() => db.close());
    const through = () => db.prepare(`SELECT value AS n FROM store_meta WHERE key = 'grams_through'`).get()?.n;
    const groups = () => db.prepare('SELECT count(*) AS n FROM task_grams').get()?.n;
    const at = Date.UTC(2026, 0, 1);
    const job = (k: number, n: number): NewJob => ({
      jobId: `backlog${k}`, appId: 1, zoneId: 'z', type: 'purge_url', method: 'invalidate', createdAt: at + k, secretId: 's', clientIp: '::1', source: 'teo',
      tasks: Array.from({ length: n }, (_, i) => ({ target: `https://a.example/j${k}/file-${i}.js`, hosts: ['a.example'], status: 'success' as const, fanOut: false })),
    });
    const charge = { quotaType: 'purge_url' as const, day: '2026-01-01', amount: 1, daily: 1e6 };
    const found = async (needle: string) => (await store.listTasks({ appId: 1, offset: 0, limit: 2000, targetContains: needle })).total;
    await store.createJob(job(0, TRIGRAM_BACKLOG_MAX - 1), charge);
    assert.equal(through(), 0);
    assert.equal(groups(), 0);
    assert.equal(await found('j0/file-1'), 111, 'file-1, file-10..19, file-100..199: all in the backlog');
    // Its plan: the backlog's id range of tasks, no table scan.
    assert.ok(store.explainListTasks({ appId: 1, offset: 0, limit: 20, targetContains: 'j0/file-1' }).some((d) => /^SEARCH t USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/.test(d)));
    await store.createJob(job(1, 1), charge);
    assert.equal(through(), TRIGRAM_BACKLOG_MAX);
    assert.equal(groups(), TRIGRAM_BACKLOG_MAX / 8);
    assert.equal(await found('j0/file-1'), 111, 'now all from the index');
    assert.equal(await found('file-0.js'), 2);
    await store.createJob(job(2, 3), charge);
    assert.equal(through(), TRIGRAM_BACKLOG_MAX);
    assert.equal(await found('file-0.js'), 3, 'indexed and backlog tasks together, each once');
  });

  it('regression: every listTasks shape is served by its index, never a table scan (1M-task latency)', async (t) => {
    // Indexed at once, so that a fuzzy target's trigrams are in the index (the backlog is a rowid range).
    const store = new SqliteTaskStore({ path: ':memory:', trigramBacklog: 0 });
    t.after(() => store.close());
    await store.start();
    const base = Date.UTC(2026, 0, 1);
    await store.createJob(
      {
        jobId: 'plan00000001', appId: 1, zoneId: 'z', type: 'purge_url', method: 'invalidate', createdAt: base,
        secretId: 's', clientIp: '::1', source: 'teo',
        tasks: [{ target: 'https://h.example/a/banner.jpg', hosts: ['h.example'], status: 'success', fanOut: true }],
      },
      { quotaType: 'purge_url', day: '2026-01-01', amount: 1, daily: 10 },
    );
    const week = { appId: 1, from: base - 86_400_000, to: base + 6 * 86_400_000, offset: 0, limit: 20 };
    const cases: Array<[string, Parameters<SqliteTaskStore['explainListTasks']>[0], RegExp]> = [
      ['domain + statuses + zone', { ...week, zoneId: 'z', statuses: ['success'], hosts: ['h.example'] }, /USING (COVERING )?INDEX task_hosts_lookup/],
      ['two domains', { ...week, hosts: ['h.example', 'i.example'] }, /USING (COVERING )?INDEX task_hosts_lookup/],
      ['statuses only', { ...week, statuses: ['failed', 'timeout'] }, /USING (COVERING )?INDEX tasks_app_time/],
      ['exact target', { ...week, target: 'https://h.example/a/banner.jpg' }, /USING INDEX tasks_target/],
      ['job id', { ...week, jobId: 'plan00000001' }, /USING INDEX tasks_job/],
      ['fuzzy target', { ...week, targetContains: 'banner', hosts: ['h.example'] }, /SCAN g VIRTUAL TABLE INDEX \d+:M\d*></],
      ['short fuzzy target', { ...week, targetContains: 'jp' }, /USING INDEX tasks_app_time/],
    ];
    for (const [name, query, expected] of cases) {
      const plan = store.explainListTasks(query);
      assert.ok(plan.some((d) => expected.test(d)), `${name}: ${plan.join(' | ')}`);
      // Count and page both take the intended path (no other index of tasks, no scan).
      const other = plan.filter(
        (d) => (/^SEARCH [th] USING (COVERING )?INDEX/.test(d) && !expected.test(d)) || /^SCAN [thrj]( |$)/.test(d),
      );
      assert.deepEqual(other, [], `${name}: ${plan.join(' | ')}`);
    }
  });

  it('regression: fuzzy search bounds FTS rowids with integers (a REAL bound is silently ignored by FTS5)', async (t) => {
    const store = new SqliteTaskStore({ path: ':memory:' });
    t.after(() => store.close());
    await store.start();
    const base = Date.UTC(2026, 0, 1);
    for (let h = 0; h < 48; h++) {
      await store.createJob(
        {
          jobId: `bound${String(h).padStart(7, '0')}`, appId: 1, zoneId: 'z', type: 'purge_url', method: 'invalidate',
          createdAt: base + h * 3_600_000, secretId: 's', clientIp: '::1', source: 'teo',
          tasks: [{ target: `https://h.example/hour-${h}/file.js`, hosts: ['h.example'], status: 'success', fanOut: false }],
        },
        { quotaType: 'purge_url', day: '2026-01-01', amount: 1, daily: 1000 },
      );
    }
    const r = await store.listTasks({
      appId: 1, from: base + 10 * 3_600_000, to: base + 12 * 3_600_000, targetContains: 'file.js', offset: 0, limit: 10,
    });
    assert.deepEqual(r.tasks.map((x) => x.target), [12, 11, 10].map((h) => `https://h.example/hour-${h}/file.js`));
  });
});

/** `n` one-URL refresh jobs a second apart on two hosts, bulk-loaded (no quota, no fsync per job). */
function refreshJobs(n: number, base: number): NewJob[] {
  return Array.from({ length: n }, (_, i) => ({
    jobId: String(base + i * 1000).padEnd(16, '0'), appId: 1, zoneId: 'z', type: 'purge_url' as TaskType, method: 'invalidate' as const,
    createdAt: base + i * 1000, secretId: 's', clientIp: '::1', source: 'v2' as const,
    tasks: [{ target: `https://${i % 3 ? 'h' : 'i'}.example/f${i}.js`, hosts: [`${i % 3 ? 'h' : 'i'}.example`], status: 'success' as const, fanOut: false }],
  }));
}

describe('SqliteTaskStore: history reads never stall the event loop (hardening: GetCdnRefreshLog froze the control plane 76 s)', () => {
  it('regression: every listRefreshRecords shape is served by its index; counting and paging records read no row', async (t) => {
    const store = new SqliteTaskStore({ path: ':memory:' });
    t.after(() => store.close());
    await store.start();
    const base = Date.UTC(2026, 0, 1);
    store.bulkLoadForBench(refreshJobs(10, base));
    const month = { appId: 1, from: base - 30 * 86_400_000, to: base + 86_400_000, offset: 100_000, limit: 10_000 };
    const cases: Array<[string, Parameters<SqliteTaskStore['explainListRefreshRecords']>[0], RegExp]> = [
      ['30 days, deep page', month, /^SEARCH r USING COVERING INDEX refresh_records_app_time/],
      ['30 days, one type', { ...month, types: ['purge_prefix'] }, /^SEARCH r USING COVERING INDEX refresh_records_app_time/],
      ['host, deep page', { ...month, host: 'h.example' }, /^SEARCH r USING COVERING INDEX refresh_records_app_host/],
      ['exact url', { ...month, target: 'https://h.example/f1.js' }, /^SEARCH t USING INDEX tasks_target/],
      ['task id', { ...month, jobId: String(base).padEnd(16, '0') }, /^SEARCH r USING PRIMARY KEY \(job_id=\?\)/],
    ];
    for (const [name, query, expected] of cases) {
      const plan = store.explainListRefreshRecords(query);
      assert.ok(plan.some((d) => expected.test(d)), `${name}: ${plan.join(' | ')}`);
      // No table scan; the walk of up to offset + limit entries sorts nothing (the index holds the order).
      // `bucket` is the generated list of the exact-target index's buckets to probe (migration 8), not a table.
      assert.deepEqual(plan.filter((d) => /^SCAN [a-z]+( |$)/.test(d) && !/^SCAN ([km]|bucket)$/.test(d)), [], `${name}: ${plan.join(' | ')}`);
      // Sorting is left to the two paths whose matches are few (one job's hosts; one URL's refreshes).
      if (!['exact url', 'task id'].includes(name)) assert.ok(!plan.some((d) => /TEMP B-TREE FOR (ORDER BY|DISTINCT)/.test(d)), `${name}: ${plan.join(' | ')}`);
    }
  });

  it('regression: a deep GetCdnRefreshLog / listTasks page runs off the event loop, which keeps turning meanwhile', async (t) => {
    const dir = tempDir(t);
    const base = Date.UTC(2026, 0, 1);
    const seed = new SqliteTaskStore({ path: join(dir, 'tasks.db'), readers: 0 });
    await seed.start();
    seed.bulkLoadForBench(refreshJobs(20_000, base));
    await seed.close();
    /** Event-loop turns (setImmediate round trips) while `read` is in flight. */
    const turnsDuring = async (read: () => Promise<unknown>): Promise<number> => {
      let turns = 0;
      let done = false;
      const spin = (): void => {
        if (done) return;
        turns++;
        setImmediate(spin);
      };
      setImmediate(spin);
      await read();
      done = true;
      return turns;
    };
    const deep = { appId: 1, from: base, to: base + 86_400_000, offset: 15_000, limit: 1000 };
    for (const readers of [0, 1]) {
      const store = new SqliteTaskStore({ path: join(dir, 'tasks.db'), readers });
      t.after(() => store.close());
      await store.start();
      const records = () => store.listRefreshRecords({ ...deep, maxTasks: 2000 });
      const tasks = () => store.listTasks({ ...deep, hosts: ['h.example', 'i.example'] });
      assert.equal((await records()).records.length, 1000); // also starts the worker
      const turns = [await turnsDuring(records), await turnsDuring(tasks)];
      if (readers === 0) assert.deepEqual(turns, [0, 0], 'in-process, a read holds the loop until it returns (what this test tells apart)');
      else assert.ok(turns.every((n) => n > 0), `the loop turned while the worker read: ${turns}`);
    }
  });

  it('regression: one tenant\'s queued reads cannot hold every read worker or the queue; another tenant\'s read is next at the latest', async (t) => {
    const path = join(tempDir(t), 'tasks.db');
    const store = new SqliteTaskStore({ path, readers: 2 });
    t.after(() => store.close());
    await store.start();
    const base = Date.UTC(2026, 0, 1);
    store.bulkLoadForBench(refreshJobs(20_000, base));
    store.bulkLoadForBench(refreshJobs(20_000, base).map((j) => ({ ...j, appId: 2, jobId: `b${j.jobId}` })));
    const done: string[] = [];
    const deep = (appId: number, name: string) =>
      store.listTasks({ appId, hosts: ['h.example', 'i.example'], offset: 19_000, limit: 500 }).then(() => void done.push(name));
    const heavy = [1, 2, 3, 4].map((i) => deep(1, `a${i}`));
    // App 2's read is a cheap one (one job): when it ends tells where it was queued, not how fast it ran.
    const other = store.listTasks({ appId: 2, jobId: `b${refreshJobs(1, base)[0]!.jobId}`, offset: 0, limit: 10 }).then(() => void done.push('b'));
    await Promise.all([...heavy, other]);
    // App 1 holds one of the two workers at a time and apps take turns: app 2's read runs beside a1
    // (on the second worker, once started) or right after it, so it ends before a3 (FIFO over both
    // workers ends it after a3 at the earliest: a1 a2 b a3 a4, or a1 a2 a3 a4 b).
    assert.ok(done.indexOf('b') < done.indexOf('a3'), done.join(' '));
  });

  it('closing the store lets reads in flight finish, then refuses new ones', async (t) => {
    const path = join(tempDir(t), 'tasks.db');
    const store = new SqliteTaskStore({ path, readers: 2 });
    await store.start();
    store.bulkLoadForBench(refreshJobs(2_000, Date.UTC(2026, 0, 1)));
    const a0 = store.listTasks({ appId: 1, offset: 1500, limit: 100 });
    const b0 = store.listRefreshRecords({ appId: 1, offset: 10, limit: 10 });
    await store.close();
    const [a, b] = [await a0, await b0];
    assert.equal(a.total, 2000);
    assert.equal(b.records.length, 10);
    await assert.rejects(store.listTasks({ appId: 1, offset: 0, limit: 1 }), /not started|closed/);
  });

  it('migration 2 gives the records of existing refresh jobs ids that are not row ids, and none to other jobs', async (t) => {
    const db = new DatabaseSync(':memory:');
    t.after(() => db.close());
    migrate(db, MIGRATIONS.filter((m) => m.version === 1));
    const job = db.prepare(
      `INSERT INTO jobs (job_id, app_id, zone_id, type, method, created_at, secret_id, client_ip, source, task_count) VALUES (?, 1, 'z', ?, 'invalidate', 5, 's', '::1', 'v2', ?)`,
    );
    const task = db.prepare(
      `INSERT INTO tasks (job_id, app_id, zone_id, type, method, target, target_hash, hosts, status, created_at, updated_at) VALUES (?, 1, 'z', ?, 'invalidate', ?, 0, ?, 'success', 5, 5)`,
    );
    const host = db.prepare(`INSERT INTO task_hosts (task_id, host, app_id, created_at, status, type, zone_id) VALUES (?, ?, 1, 5, 'success', ?, 'z')`);
    const add = (jobId: string, type: TaskType, tasks: Array<[string, string[]]>) => {
      job.run(jobId, type, tasks.length);
      for (const [target, hosts] of tasks) {
        const id = Number(task.run(jobId, type, target, JSON.stringify(hosts)).lastInsertRowid);
        for (const h of hosts) host.run(id, h, type);
      }
    };
    add('1767225600000123', 'purge_url', [['https://b.example/1', ['b.example']], ['https://a.example/2', ['a.example']], ['https://b.example/3', ['b.example']]]);
    add('dirjob', 'purge_prefix', [['https://a.example/d/', ['a.example']]]);
    add('alljob', 'purge_all', [['example', ['a.example', 'b.example']]]);
    migrate(db);
    const rows = db.prepare('SELECT job_id, host, ord, record_id, job_tasks FROM refresh_records ORDER BY job_id, ord').all() as Array<{
      job_id: string; host: string; ord: number; record_id: number; job_tasks: number;
    }>;
    assert.deepEqual(rows.map((r) => [r.job_id, r.host, r.ord, r.job_tasks]), [
      ['1767225600000123', 'b.example', 0, 3],
      ['1767225600000123', 'a.example', 1, 3],
      ['dirjob', 'a.example', 0, 1],
    ]);
    assert.equal(rows[0]!.record_id, 1767225600000123);
    const taskIds = new Set((db.prepare('SELECT id FROM tasks').all() as Array<{ id: number }>).map((r) => r.id));
    for (const r of rows.slice(1)) assert.ok(r.record_id > 0 && r.record_id < 2 ** 48, String(r.record_id));
    assert.equal(new Set(rows.map((r) => r.record_id)).size, 3);
    assert.ok(rows.every((r) => !taskIds.has(r.record_id)), 'no record id is a task row id');
  });

  it('migration 6 keys the exact-target index by hour: tasks stored before it are still found, in their range only', async (t) => {
    const path = join(tempDir(t), 'tasks.db');
    const db = new DatabaseSync(path);
    migrate(db, MIGRATIONS.filter((m) => m.version <= 5));
    const url = 'https://a.example/old.js';
    const at = [Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 1, 5), Date.UTC(2026, 0, 3)];
    at.forEach((createdAt, i) => {
      db.prepare(`INSERT INTO jobs (job_id, app_id, zone_id, type, method, created_at, secret_id, client_ip, source, task_count) VALUES (?, 1, 'z', 'purge_url', 'invalidate', ?, 's', '::1', 'teo', 1)`).run(`j${i}`, createdAt);
      const id = Number(
        db.prepare(`INSERT INTO tasks (job_id, app_id, zone_id, type, method, target, target_hash, hosts, status, created_at, updated_at) VALUES (?, 1, 'z', 'purge_url', 'invalidate', ?, ?, '["a.example"]', 'success', ?, ?)`)
          .run(`j${i}`, url, legacyTargetHash(url), createdAt, createdAt).lastInsertRowid,
      );
      db.prepare(`INSERT INTO task_id_ranges (hour, min_id, max_id) VALUES (?, ?, ?)`).run(Math.floor(createdAt / 3_600_000), id, id);
    });
    db.close();
    const store = new SqliteTaskStore({ path, readers: 0 });
    await store.start();
    t.after(() => store.close());
    assert.deepEqual(await store.schemaVersion(), { applied: LATEST_VERSION, expected: LATEST_VERSION });
    const found = async (over: { from?: number; to?: number }) => (await store.listTasks({ appId: 1, offset: 0, limit: 10, target: url, ...over })).tasks.map((x) => x.jobId);
    assert.deepEqual(await found({}), ['j2', 'j1', 'j0']);
    assert.deepEqual(await found({ from: at[0]! + 1, to: at[2]! - 1 }), ['j1']);
    assert.match(store.explainListTasks({ appId: 1, offset: 0, limit: 10, target: url }).join('\n'), /USING INDEX tasks_target \(app_id=\? AND <expr>=\? AND target_hash=\?\)/);
  });
});

describe('openStore', () => {
  it('opens and starts the SQLite store', async (t) => {
    const store = await openStore({ driver: 'sqlite', path: join(tempDir(t), 'x', 'tasks.db') });
    t.after(() => store.close());
    assert.equal(await store.lastSeq(), 0);
  });
});
