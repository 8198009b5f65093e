// The host rows' backlog (schema v11, issue 11): task_hosts and refresh_records are written 512 tasks at a
// time, or by the first read that needs them. Whatever the jobs, batches, refusals, settlements, prunes,
// reads in between and backlog bound, a host filter finds exactly the stored tasks with that host (in
// their current status), and the legacy refresh log holds one record per refresh job and host, the
// first one's id the job id, each id stable from read to read.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { TaskStatus, TaskType } from '../../src/purge/types.ts';
import { HOST_ROWS_BACKLOG_MAX } from '../../src/store/sqlite/sqlite-rows.ts';
import { SqliteTaskStore } from '../../src/store/sqlite/sqlite-task-store.ts';
import type { NewJob, QuotaCharge } from '../../src/store/task-store.ts';

const BASE = Date.UTC(2026, 0, 1);
const STEP = 20 * 60_000;
const HOSTS = ['a.example', 'b.example', 'c.example'];

const taskHosts = fc.uniqueArray(fc.constantFrom(...HOSTS), { minLength: 1, maxLength: 3 });
const job = fc.record({
  type: fc.constantFrom<TaskType>('purge_url', 'purge_prefix', 'purge_host'),
  tasks: fc.array(taskHosts, { minLength: 1, maxLength: 8 }),
  duplicate: fc.boolean(),
  // A 16-digit job id below 2^53 is its first record's id (written in SQL for a one-task, one-host
  // job); other ids get random record ids (written through JS).
  idShape: fc.constantFrom('numeric', 'numeric', 'text', 'unsafe'),
});
const idOf = (shape: string, i: number): string =>
  shape === 'text' ? `job-${i}` : shape === 'unsafe' ? String(9007199254740993 + 2 * i) : String(1767225600000000 + i);
const step = fc.oneof(
  { weight: 3, arbitrary: fc.record({ batch: fc.array(job, { minLength: 1, maxLength: 4 }) }) },
  // A read between batches writes whatever waits; a settlement changes statuses of tasks written or waiting.
  { weight: 1, arbitrary: fc.record({ read: fc.constantFrom(...HOSTS) }) },
  { weight: 1, arbitrary: fc.record({ settle: fc.array(fc.tuple(fc.nat(), fc.constantFrom<TaskStatus>('success', 'failed')), { minLength: 1, maxLength: 4 }) }) },
);
const scenario = fc.record({
  steps: fc.array(step, { minLength: 1, maxLength: 10 }),
  backlog: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 30 })),
  pruneBefore: fc.option(fc.nat(20)),
});

interface Stored {
  readonly id: number;
  readonly jobId: string;
  readonly hosts: readonly string[];
  readonly createdAt: number;
  status: TaskStatus;
}

describe('SQLite host rows behind a bounded backlog (schema v11)', () => {
  it('a host filter and the refresh log see every stored task, however far the host rows lag (property)', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ steps, backlog, pruneBefore }) => {
        const store = new SqliteTaskStore({ path: ':memory:', hostRowsBacklog: backlog });
        await store.start();
        try {
          const stored: Stored[] = [];
          const jobs = new Map<string, { type: TaskType; createdAt: number }>();
          const recordIds = new Map<string, number>();
          let n = 0;
          const ids: string[] = [];
          const checkRecords = async (host: string, kept: (s: Stored) => boolean) => {
            const { records, total } = await store.listRefreshRecords({ appId: 1, host, offset: 0, limit: 10_000 });
            const want = [...new Set(stored.filter((s) => kept(s) && s.hosts.includes(host) && jobs.get(s.jobId)!.type !== 'purge_host').map((s) => s.jobId))].sort();
            assert.deepEqual(records.map((r) => r.job.jobId).sort(), want, `records of ${host}`);
            assert.equal(total, want.length);
            for (const r of records) {
              const key = `${r.job.jobId} ${host}`;
              // Stable from read to read, whenever the record was written.
              if (recordIds.has(key)) assert.equal(r.id, recordIds.get(key), key);
              recordIds.set(key, r.id);
              const first = stored.find((s) => s.jobId === r.job.jobId)!.hosts[0];
              const ownId = /^1767/.test(r.job.jobId);
              if (first === host && ownId) assert.equal(r.id, Number(r.job.jobId), 'a job\'s first record has the job id');
              else assert.ok(Number.isSafeInteger(r.id) && r.id > 0 && r.id < 2 ** 48, `${key}: a random record id, ${r.id}`);
              assert.deepEqual(r.tasks.map((t) => t.id).sort(), stored.filter((s) => s.jobId === r.job.jobId && s.hosts.includes(host)).map((s) => s.id).sort());
            }
          };
          const checkHost = async (host: string, kept: (s: Stored) => boolean) => {
            for (const statuses of [undefined, ['failed'] as TaskStatus[]]) {
              const got = await store.listTasks({ appId: 1, hosts: [host], offset: 0, limit: 10_000, ...(statuses && { statuses }) });
              const want = stored.filter((s) => kept(s) && s.hosts.includes(host) && (!statuses || statuses.includes(s.status)));
              assert.deepEqual(got.tasks.map((t) => t.id).sort((a, b) => a - b), want.map((s) => s.id), `${host} ${statuses ?? ''}`);
              assert.equal(got.total, want.length);
            }
            await checkRecords(host, kept);
          };
          for (const s of steps) {
            if ('batch' in s) {
              // One turn of the event loop: the batch's jobs share a transaction (group commit).
              await Promise.all(
                s.batch.map((j) => {
                  const i = n++;
                  const jobId = j.duplicate && ids.length > 0 ? ids[0]! : idOf(j.idShape, i);
                  ids.push(jobId);
                  const createdAt = BASE + i * STEP;
                  const newJob: NewJob = {
                    jobId, appId: 1, zoneId: 'z', type: j.type, method: 'invalidate', createdAt, secretId: 's', clientIp: '::1', source: 'teo',
                    tasks: j.tasks.map((hosts, k) => ({ target: `https://${hosts[0]}/${i}/${k}`, hosts, status: 'processing' as const, fanOut: true })),
                  };
                  const charge: QuotaCharge = { quotaType: j.type, day: '2026-01-01', amount: j.tasks.length, daily: 1e9 };
                  return store.createJob(newJob, charge).then(
                    ({ tasks }) => {
                      jobs.set(jobId, { type: j.type, createdAt });
                      stored.push(...tasks.map((t) => ({ id: t.id, jobId, hosts: t.hosts, createdAt, status: t.status })));
                    },
                    () => undefined,
                  );
                }),
              );
              stored.sort((a, b) => a.id - b.id);
            } else if ('read' in s) {
              await checkHost(s.read, () => true);
            } else if (stored.length > 0) {
              const updates = new Map(s.settle.map(([k, status]) => [stored[k % stored.length]!.id, status]));
              await store.updateTasks([...updates].map(([taskId, status]) => ({ taskId, status })), BASE);
              // Only a task still processing settles.
              for (const [id, status] of updates) {
                const task = stored.find((x) => x.id === id)!;
                if (task.status === 'processing') task.status = status;
              }
            }
          }
          let kept = (_: Stored) => true;
          if (pruneBefore !== null) {
            const cut = BASE + pruneBefore * STEP;
            await store.prune(cut);
            kept = (s) => s.createdAt >= cut;
          }
          for (const host of HOSTS) await checkHost(host, kept);
        } finally {
          await store.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  it('a commit leaves up to 512 tasks without host rows, a host read writes them first, and the 512th task writes them all', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'edgepurge-host-rows-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'tasks.db');
    const store = new SqliteTaskStore({ path, readers: 1 });
    t.after(() => store.close());
    await store.start();
    const side = new DatabaseSync(path, { readOnly: true });
    t.after(() => side.close());
    const count = (table: string) => Number((side.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n);
    const through = () => Number((side.prepare("SELECT value FROM store_meta WHERE key = 'hosts_through'").get() as { value: number }).value);
    let n = 0;
    const create = (tasks: number) => {
      const jobId = String(1767225600000000 + n++);
      return store.createJob(
        {
          jobId, appId: 1, zoneId: 'z', type: 'purge_url', method: 'invalidate', createdAt: BASE, secretId: 's', clientIp: '::1', source: 'teo',
          tasks: Array.from({ length: tasks }, (_, k) => ({ target: `https://a.example/${jobId}/${k}`, hosts: ['a.example'], status: 'processing' as const, fanOut: true })),
        },
        { quotaType: 'purge_url', day: '2026-01-01', amount: tasks, daily: 1e9 },
      );
    };
    await create(1);
    await create(2);
    assert.deepEqual([count('task_hosts'), count('refresh_records'), through()], [0, 0, 0], 'both jobs wait');
    // A read without a host filter leaves them waiting; one with a host filter writes them first.
    assert.equal((await store.listTasks({ appId: 1, offset: 0, limit: 10 })).total, 3);
    assert.equal(count('task_hosts'), 0);
    assert.equal((await store.listTasks({ appId: 1, hosts: ['a.example'], offset: 0, limit: 10 })).total, 3);
    assert.deepEqual([count('task_hosts'), count('refresh_records'), through()], [3, 2, 3]);
    // Up to 511 waiting tasks, none written; the commit that makes them 512 writes them all.
    await create(HOST_ROWS_BACKLOG_MAX - 1);
    assert.deepEqual([count('task_hosts'), through()], [3, 3]);
    await create(1);
    assert.deepEqual([count('task_hosts'), count('refresh_records'), through()], [3 + HOST_ROWS_BACKLOG_MAX, 4, 3 + HOST_ROWS_BACKLOG_MAX]);
    // The legacy refresh log writes what waits too.
    await create(1);
    assert.equal((await store.listRefreshRecords({ appId: 1, offset: 0, limit: 10 })).total, 5);
    assert.equal(count('refresh_records'), 5);
  });

  it('a job whose own id is already another record\'s id gets a random record id (the clash path)', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'edgepurge-host-rows-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'tasks.db');
    const store = new SqliteTaskStore({ path, readers: 0, hostRowsBacklog: 0 });
    t.after(() => store.close());
    await store.start();
    const create = (jobId: string) =>
      store.createJob(
        {
          jobId, appId: 1, zoneId: 'z', type: 'purge_url', method: 'invalidate', createdAt: BASE, secretId: 's', clientIp: '::1', source: 'teo',
          tasks: [{ target: `https://a.example/${jobId}`, hosts: ['a.example'], status: 'processing' as const, fanOut: true }],
        },
        { quotaType: 'purge_url', day: '2026-01-01', amount: 1, daily: 1e9 },
      );
    const taken = 1767225600000042;
    await create('job-a');
    // job-a's record (a random id) takes the id the next job would have for its own.
    const side = new DatabaseSync(path);
    side.prepare("UPDATE refresh_records SET record_id = ? WHERE job_id = 'job-a'").run(taken);
    side.close();
    await create(String(taken));
    await create(String(taken + 1));
    const { records } = await store.listRefreshRecords({ appId: 1, offset: 0, limit: 10 });
    const idOfJob = new Map(records.map((r) => [r.job.jobId, r.id]));
    assert.equal(idOfJob.get('job-a'), taken);
    const drawn = idOfJob.get(String(taken))!;
    assert.ok(Number.isSafeInteger(drawn) && drawn > 0 && drawn < 2 ** 48, `a random id below 2^48, got ${drawn}`);
    assert.equal(idOfJob.get(String(taken + 1)), taken + 1);
  });
});
