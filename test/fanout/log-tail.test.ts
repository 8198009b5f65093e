// The shared log tail (src/fanout/log-tail.ts): one store read serves every stream, nothing committed
// before a notify() is missed, the window stays bounded and a stream behind it is told to read the store.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { LogTail } from '../../src/fanout/log-tail.ts';
import { SqliteTaskStore } from '../../src/store/sqlite/sqlite-task-store.ts';
import type { TaskStore } from '../../src/store/task-store.ts';
import { ACME } from '../helpers/control-plane.ts';

const T0 = Date.UTC(2026, 0, 1);

async function setup(t: TestContext) {
  const store = new SqliteTaskStore({ path: ':memory:' });
  await store.start();
  t.after(() => store.close());
  const calls = { readLog: 0, lastSeq: 0 };
  // The store as the tail sees it, counting its reads.
  const counted: Pick<TaskStore, 'readLog' | 'lastSeq'> = {
    readLog: (after, limit) => (calls.readLog++, store.readLog(after, limit)),
    lastSeq: () => (calls.lastSeq++, store.lastSeq()),
  };
  let jobs = 0;
  /** Commits one job of `n` purge tasks (n log entries). */
  const append = async (n: number) => {
    await store.createJob(
      {
        jobId: `job${++jobs}`, appId: ACME.appId, zoneId: ACME.zoneId, type: 'purge_url', method: 'invalidate', createdAt: T0, secretId: ACME.secretId,
        clientIp: '127.0.0.1', source: 'teo',
        tasks: Array.from({ length: n }, (_, i) => ({ target: `http://${ACME.host}/${jobs}/${i}`, hosts: [ACME.host], status: 'processing' as const, fanOut: true })),
      },
      { quotaType: 'purge_url', day: '2026-01-01', amount: n, daily: 1_000_000 },
    );
  };
  return { store, counted, calls, append };
}

test('one store read serves every stream waiting on the same notify', async (t) => {
  const { counted, calls, append } = await setup(t);
  const tail = new LogTail(counted);
  await tail.after(0, tail.generation); // the first read places the window at the log's end (0)
  await append(3);
  tail.notify();
  const before = { ...calls };
  const got = await Promise.all(Array.from({ length: 200 }, () => tail.after(0, tail.generation)));
  assert.deepEqual({ readLog: calls.readLog - before.readLog, lastSeq: calls.lastSeq - before.lastSeq }, { readLog: 1, lastSeq: 1 });
  for (const g of got) {
    assert.deepEqual(g?.entries.map((e) => e.entry.seq), [1, 2, 3]);
    assert.equal(g?.end, 3);
  }
  // The stream line is the wire's entry line, encoded once and shared.
  assert.equal(got[0]!.entries[0]!.line, got[199]!.entries[0]!.line);
  assert.deepEqual(JSON.parse(got[0]!.entries[0]!.line), { t: 'entry', e: { seq: 1, taskId: got[0]!.entries[0]!.entry.taskId, type: 'purge_url', method: 'invalidate', hosts: [ACME.host], target: `http://${ACME.host}/1/0` } });
  assert.ok(got[0]!.entries[0]!.line.endsWith('\n'));
  // Only what is after each cursor.
  assert.deepEqual((await tail.after(2, tail.generation))?.entries.map((e) => e.entry.seq), [3]);
  assert.deepEqual((await tail.after(3, tail.generation))?.entries, []);
  assert.equal(calls.readLog - before.readLog, 1, 'no new notify, no new read');
});

test('an entry committed before notify() is seen by every after() given that generation, even while an older read runs', async (t) => {
  const { counted, append } = await setup(t);
  const tail = new LogTail(counted);
  await tail.after(0, tail.generation);
  await append(1);
  tail.notify();
  const first = tail.after(0, tail.generation); // starts a read
  await append(1); // committed while that read may be under way
  tail.notify();
  const second = tail.after(0, tail.generation); // must not be answered by the older read alone
  assert.deepEqual((await first)?.entries.map((e) => e.entry.seq).slice(0, 1), [1]);
  assert.deepEqual((await second)?.entries.map((e) => e.entry.seq), [1, 2]);
});

test('the window is bounded; a cursor behind it is told to read the store; pages past 1,000 entries', async (t) => {
  const { counted, append } = await setup(t);
  const tail = new LogTail(counted, 1500);
  await tail.after(0, tail.generation);
  await append(2500);
  tail.notify();
  const all = await tail.after(1000, tail.generation);
  assert.equal(tail.size, 1500);
  assert.equal(all?.end, 2500);
  assert.deepEqual([all?.entries[0]?.entry.seq, all?.entries.at(-1)?.entry.seq, all?.entries.length], [1001, 2500, 1500]);
  assert.equal(await tail.after(999, tail.generation), undefined, 'behind the window: the caller reads the store');
  // A stream that started before the tail's first read (a resume point in the past) reads the store too.
  const fresh = new LogTail(counted);
  assert.equal(await fresh.after(10, fresh.generation), undefined);
  assert.deepEqual(await fresh.after(2500, fresh.generation), { entries: [], end: 2500 });
});

test('entries handed to notify() are served without a store read; a gap before them is read; a seq the window holds wakes no one', async (t) => {
  const { store, counted, calls, append } = await setup(t);
  const tail = new LogTail(counted);
  await tail.after(0, tail.generation);
  await append(2);
  const before = { ...calls };
  // What a committing replica (or its NOTIFY) hands over: the commit's entries, ending at its last seq.
  assert.equal(tail.notify(2, await store.readLog(0, 10)), true);
  const got = await tail.after(0, tail.generation);
  assert.deepEqual(got?.entries.map((e) => e.entry.seq), [1, 2]);
  assert.equal(got?.end, 2);
  assert.deepEqual({ readLog: calls.readLog - before.readLog, lastSeq: calls.lastSeq - before.lastSeq }, { readLog: 0, lastSeq: 0 });
  // Already in the window (a late or repeated notice): no new generation, nothing read.
  const generation = tail.generation;
  assert.equal(tail.notify(2), false);
  assert.equal(tail.generation, generation);
  // Entries 3–4 were never handed over (their notice was lost); 5 is: 3–4 are read, 5 is taken as given.
  await append(2);
  await append(1);
  assert.equal(tail.notify(5, await store.readLog(4, 10)), true);
  const more = await tail.after(2, tail.generation);
  assert.deepEqual(more?.entries.map((e) => e.entry.seq), [3, 4, 5]);
  assert.equal(more?.end, 5);
  assert.equal(calls.lastSeq - before.lastSeq, 0, 'a notice with a seq needs no lastSeq()');
  assert.ok(calls.readLog - before.readLog >= 1);
  // Each entry once, in order, even if the read overlapped what was handed over.
  assert.deepEqual((await tail.after(0, tail.generation))?.entries.map((e) => e.entry.seq), [1, 2, 3, 4, 5]);
});

test('an entry committed between the read of the last seq and of the log is in the window once', async (t) => {
  const { store, append } = await setup(t);
  let between: (() => Promise<void>) | undefined;
  // lastSeq() answers, then another entry commits before readLog() runs.
  const racing: Pick<TaskStore, 'readLog' | 'lastSeq'> = {
    lastSeq: async () => {
      const last = await store.lastSeq();
      await between?.();
      between = undefined;
      return last;
    },
    readLog: (after, limit) => store.readLog(after, limit),
  };
  const tail = new LogTail(racing);
  await tail.after(0, tail.generation);
  await append(1);
  between = () => append(1);
  tail.notify();
  assert.deepEqual((await tail.after(0, tail.generation))?.entries.map((e) => e.entry.seq), [1, 2]);
  tail.notify();
  const all = await tail.after(0, tail.generation);
  assert.deepEqual(all?.entries.map((e) => e.entry.seq), [1, 2], 'entry 2 is not repeated');
  assert.equal(all?.end, 2);
});

test('entries handed over while no stream reads stay bounded by the capacity; what was dropped is read', async (t) => {
  const { store, counted, append } = await setup(t);
  const tail = new LogTail(counted, 100);
  await tail.after(0, tail.generation);
  await append(300);
  const log = await store.readLog(0, 1000);
  for (let i = 0; i < 300; i += 10) tail.notify(i + 10, log.slice(i, i + 10));
  assert.ok(tail.size <= 100, `${tail.size} entries held`);
  const got = await tail.after(200, tail.generation);
  assert.deepEqual(got?.entries.map((e) => e.entry.seq), Array.from({ length: 100 }, (_, i) => 201 + i));
  assert.equal(tail.size, 100);
});
