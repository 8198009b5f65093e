// The TaskStore conformance suite: every backend runs it (STYLE 13); one test per promise of the contract.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { TaskRecord, TaskStatus, TaskType } from '../../src/purge/types.ts';
import { DuplicateJobIdError, QuotaExceededError } from '../../src/store/task-store.ts';
import type { NewJob, NewTask, NodeReport, NodeReportInput, PrefetchResultInput, QuotaCharge, TaskQuery, TaskStore } from '../../src/store/task-store.ts';

/** Makes a fresh, empty, not yet started store; the suite starts and closes it. */
export type MakeStore = (t: TestContext) => TaskStore | Promise<TaskStore>;

const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const APP = 1250000001;
const OTHER_APP = 1250000002;
const ZONE = 'zone-aaaa1111';

let jobCounter = 0;
const nextJobId = (): string => `job${String(++jobCounter).padStart(9, '0')}`;

function task(target: string, over: Partial<NewTask> = {}): NewTask {
  let host = '';
  try {
    host = new URL(target).host;
  } catch {
    host = 'www.example.com';
  }
  return { target, hosts: [host], status: 'processing', fanOut: true, ...over };
}

function job(tasks: readonly NewTask[], over: Partial<Omit<NewJob, 'tasks'>> = {}): NewJob {
  return {
    jobId: nextJobId(),
    appId: APP,
    zoneId: ZONE,
    type: 'purge_url',
    method: 'invalidate',
    createdAt: T0,
    secretId: 'AKIDtest',
    clientIp: '198.51.100.7',
    source: 'teo',
    tasks,
    ...over,
  };
}

const charge = (over: Partial<QuotaCharge> = {}): QuotaCharge => ({
  quotaType: 'purge_url',
  day: '2026-01-01',
  amount: 1,
  daily: 1_000_000,
  ...over,
});

const q = (over: Partial<TaskQuery> = {}): TaskQuery => ({ appId: APP, offset: 0, limit: 100, ...over });

const targets = (tasks: readonly TaskRecord[]): string[] => tasks.map((t) => t.target);

/** `skip`: a reason to skip the whole suite (its backend's server is absent outside CI). */
export function describeTaskStoreConformance(name: string, makeStore: MakeStore, options: { skip?: string | false } = {}): void {
  describe(`TaskStore conformance: ${name}`, { skip: options.skip ?? false }, () => {
    /** A started store, closed after the test. */
    async function open(t: TestContext): Promise<TaskStore> {
      const store = await makeStore(t);
      t.after(() => store.close());
      await store.start();
      return store;
    }

    /** Creates a job charged at its own size. */
    async function create(store: TaskStore, j: NewJob): Promise<TaskRecord[]> {
      const { tasks } = await store.createJob(j, charge({ quotaType: j.type, amount: j.tasks.length }));
      return tasks;
    }

    describe('lifecycle', () => {
      it('start and close are idempotent', async (t) => {
        const store = await makeStore(t);
        await store.start();
        await store.start();
        assert.equal(await store.lastSeq(), 0);
        await store.close();
        await store.close();
      });

      it('an empty store has lastSeq 0 and firstSeq 1', async (t) => {
        const store = await open(t);
        assert.equal(await store.lastSeq(), 0);
        assert.equal(await store.firstSeq(), 1);
        assert.deepEqual(await store.readLog(0, 10), []);
        assert.deepEqual(await store.nodeProgress(), []);
      });
    });

    describe('createJob', () => {
      it('returns the tasks in order with ids, hosts, statuses and times', async (t) => {
        const store = await open(t);
        const j = job(
          [
            task('https://a.example.com/1.jpg'),
            task('https://b.example.com/2.jpg', { status: 'success', fanOut: false }),
            task('https://a.example.com/3.jpg', { hosts: ['a.example.com', 'a.example.com', 'c.example.com'] }),
          ],
          { createdAt: T0 + 5 },
        );
        const tasks = await create(store, j);
        assert.equal(tasks.length, 3);
        assert.deepEqual(targets(tasks), j.tasks.map((x) => x.target));
        assert.ok(tasks[0]!.id < tasks[1]!.id && tasks[1]!.id < tasks[2]!.id, 'ids increase in submission order');
        for (const r of tasks) {
          assert.equal(r.jobId, j.jobId);
          assert.equal(r.appId, APP);
          assert.equal(r.zoneId, ZONE);
          assert.equal(r.type, 'purge_url');
          assert.equal(r.method, 'invalidate');
          assert.equal(r.createdAt, T0 + 5);
          assert.equal(r.updatedAt, T0 + 5);
          assert.equal(r.failType, null);
          assert.equal(r.failMessage, null);
        }
        assert.equal(tasks[1]!.status, 'success');
        assert.deepEqual(tasks[2]!.hosts, ['a.example.com', 'c.example.com'], 'hosts are de-duplicated, order kept');
        const job1 = await store.getJob(APP, j.jobId);
        assert.deepEqual(job1, {
          jobId: j.jobId,
          appId: APP,
          zoneId: ZONE,
          type: 'purge_url',
          method: 'invalidate',
          createdAt: T0 + 5,
          secretId: 'AKIDtest',
          clientIp: '198.51.100.7',
          source: 'teo',
          taskCount: 3,
        });
        assert.deepEqual(await store.jobTasks(APP, j.jobId), tasks, 'what createJob returns is what is stored');
      });

      it('gives a seq only to fanned-out tasks, in task order, gap-free across jobs', async (t) => {
        const store = await open(t);
        const a = await create(store, job([task('https://a.example.com/1'), task('https://a.example.com/2')]));
        const b = await create(
          store,
          job([
            task('https://a.example.com/3', { fanOut: false, status: 'success' }),
            task('https://a.example.com/4'),
            task('https://a.example.com/5'),
          ]),
        );
        const c = await create(store, job([task('https://a.example.com/6', { fanOut: false, status: 'success' })]));
        const d = await create(store, job([task('https://a.example.com/7')]));
        assert.deepEqual(a.map((x) => x.seq), [1, 2]);
        assert.deepEqual(b.map((x) => x.seq), [null, 3, 4]);
        assert.deepEqual(c.map((x) => x.seq), [null]);
        assert.deepEqual(d.map((x) => x.seq), [5]);
        assert.equal(await store.lastSeq(), 5);
        assert.equal(await store.firstSeq(), 1);
        const log = await store.readLog(0, 100);
        assert.deepEqual(log.map((e) => e.seq), [1, 2, 3, 4, 5]);
      });

      it('refuses a charge over the daily quota with the current usage, and writes nothing', async (t) => {
        const store = await open(t);
        await store.createJob(job([task('https://a.example.com/1'), task('https://a.example.com/2')]), charge({ amount: 2, daily: 3 }));
        const seqBefore = await store.lastSeq();
        const refused = job([task('https://a.example.com/3'), task('https://a.example.com/4')]);
        await assert.rejects(store.createJob(refused, charge({ amount: 2, daily: 3 })), (e: unknown) => {
          assert.ok(e instanceof QuotaExceededError);
          assert.equal(e.used, 2);
          return true;
        });
        assert.equal(await store.getJob(APP, refused.jobId), null);
        assert.deepEqual(await store.jobTasks(APP, refused.jobId), []);
        assert.equal(await store.lastSeq(), seqBefore);
        assert.equal((await store.quotaUsage(APP, '2026-01-01')).get('purge_url'), 2);
        assert.equal((await store.listTasks(q())).total, 2);
        assert.equal((await store.listTasks(q({ targetContains: 'example.com/3' }))).total, 0);
        // Exactly reaching the limit is allowed.
        await store.createJob(job([task('https://a.example.com/5')]), charge({ amount: 1, daily: 3 }));
        assert.equal((await store.quotaUsage(APP, '2026-01-01')).get('purge_url'), 3);
      });

      it('charges quota per app, type and day', async (t) => {
        const store = await open(t);
        await store.createJob(job([task('https://a.example.com/1')]), charge({ amount: 1, daily: 1 }));
        // Other day, other type, other app: their own counters.
        await store.createJob(job([task('https://a.example.com/2')]), charge({ amount: 1, daily: 1, day: '2026-01-02' }));
        await store.createJob(
          job([task('https://a.example.com/3/')], { type: 'purge_prefix' }),
          charge({ quotaType: 'purge_prefix', amount: 1, daily: 1 }),
        );
        await store.createJob(job([task('https://a.example.com/4')], { appId: OTHER_APP }), charge({ amount: 1, daily: 1 }));
        await assert.rejects(
          store.createJob(job([task('https://a.example.com/5')]), charge({ amount: 1, daily: 1 })),
          QuotaExceededError,
        );
        const usage = await store.quotaUsage(APP, '2026-01-01');
        assert.equal(usage.get('purge_url'), 1);
        assert.equal(usage.get('purge_prefix'), 1);
        assert.equal(usage.get('prefetch_url'), undefined);
        assert.equal((await store.quotaUsage(APP, '2026-01-02')).get('purge_url'), 1);
        assert.equal((await store.quotaUsage(OTHER_APP, '2026-01-01')).get('purge_url'), 1);
        assert.equal((await store.quotaUsage(APP, '2025-12-31')).size, 0);
      });

      it('refuses a duplicate job id and writes nothing (no quota, no seq, no tasks)', async (t) => {
        const store = await open(t);
        const first = job([task('https://a.example.com/1')]);
        await create(store, first);
        const dup = job([task('https://a.example.com/2'), task('https://a.example.com/3')], {
          jobId: first.jobId,
          appId: OTHER_APP,
        });
        await assert.rejects(store.createJob(dup, charge({ amount: 2 })), DuplicateJobIdError);
        assert.equal(await store.lastSeq(), 1);
        assert.equal((await store.quotaUsage(OTHER_APP, '2026-01-01')).size, 0);
        assert.equal(await store.getJob(OTHER_APP, first.jobId), null);
        assert.deepEqual(targets(await store.jobTasks(APP, first.jobId)), ['https://a.example.com/1']);
        assert.equal((await store.listTasks(q({ appId: OTHER_APP }))).total, 0);
        // The store still works afterwards and the next job continues the log.
        const next = await create(store, job([task('https://a.example.com/4')]));
        assert.equal(next[0]!.seq, 2);
      });

      it('keeps the log target and headers for the purge log, and the shown target for queries', async (t) => {
        const store = await open(t);
        const [all] = await create(
          store,
          job([{ target: 'example.com', hosts: ['a.example.com', 'b.example.com'], status: 'processing', fanOut: true, logTarget: '' }], {
            type: 'purge_all',
          }),
        );
        const [pre] = await create(
          store,
          job([task('https://a.example.com/big.mp4', { headers: { 'X-Prefetch': '1', Range: 'bytes=0-' } })], {
            type: 'prefetch_url',
            createdAt: T0 + 1,
          }),
        );
        assert.equal(all!.target, 'example.com');
        const log = await store.readLog(0, 10);
        assert.equal(log.length, 2);
        assert.deepEqual(log[0], {
          seq: 1,
          taskId: all!.id,
          jobId: all!.jobId,
          appId: APP,
          type: 'purge_all',
          method: 'invalidate',
          hosts: ['a.example.com', 'b.example.com'],
          target: '',
          createdAt: T0,
        });
        assert.equal(log[0]!.headers, undefined);
        assert.equal(log[1]!.taskId, pre!.id);
        assert.equal(log[1]!.target, 'https://a.example.com/big.mp4');
        assert.deepEqual(log[1]!.headers, { 'X-Prefetch': '1', Range: 'bytes=0-' });
        assert.equal(log[1]!.type, 'prefetch_url');
      });
    });

    describe('getJob and jobTasks', () => {
      it('are scoped by app (tenants are walls) and return null / [] for unknown ids', async (t) => {
        const store = await open(t);
        const j = job([task('https://a.example.com/1'), task('https://a.example.com/2')]);
        await create(store, j);
        assert.equal(await store.getJob(OTHER_APP, j.jobId), null);
        assert.deepEqual(await store.jobTasks(OTHER_APP, j.jobId), []);
        assert.equal(await store.getJob(APP, 'nosuchjob000'), null);
        assert.deepEqual(await store.jobTasks(APP, 'nosuchjob000'), []);
        assert.deepEqual(targets(await store.jobTasks(APP, j.jobId)), ['https://a.example.com/1', 'https://a.example.com/2']);
      });
    });

    describe('listTasks', () => {
      /** A small history: 3 hosts, 2 zones, 2 apps, several types and statuses, one hour apart. */
      async function seed(store: TaskStore): Promise<{ ids: Map<string, number>; jobIds: string[] }> {
        const ids = new Map<string, number>();
        const jobIds: string[] = [];
        const rows: Array<[number, TaskType, string, TaskStatus, string[]?, string?]> = [
          [0, 'purge_url', 'https://www.alpha.com/img/Logo.PNG', 'success'],
          [1, 'purge_url', 'https://www.alpha.com/css/site.css', 'processing'],
          [2, 'purge_prefix', 'https://www.alpha.com/img/', 'failed'],
          [3, 'purge_url', 'https://cdn.beta.net/app/main.js?v=100%_x', 'timeout'],
          [4, 'purge_host', 'cdn.beta.net', 'success'],
          [5, 'purge_all', 'alpha.com', 'processing', ['www.alpha.com', 'cdn.beta.net']],
          [6, 'purge_cache_tag', 'tag-news', 'success', ['www.alpha.com']],
          [7, 'prefetch_url', 'https://img.gamma.org/photos/2026/cat.jpg', 'invalid'],
          [8, 'purge_url', 'https://img.gamma.org/photos/2026/dog.jpg', 'success', undefined, 'zone-bbbb2222'],
        ];
        for (const [h, type, target, status, hosts, zone] of rows) {
          const j = job([task(target, { status, ...(hosts ? { hosts } : {}), ...(type === 'purge_host' ? { hosts: [target] } : {}) })], {
            type,
            createdAt: T0 + h * HOUR,
            ...(zone ? { zoneId: zone } : {}),
          });
          const [r] = await create(store, j);
          ids.set(target, r!.id);
          jobIds.push(j.jobId);
        }
        // Another tenant with look-alike data: must never show up.
        await create(store, job([task('https://www.alpha.com/img/Logo.PNG'), task('https://www.alpha.com/secret')], { appId: OTHER_APP }));
        return { ids, jobIds };
      }

      it('returns everything of the app newest first, with the total', async (t) => {
        const store = await open(t);
        await seed(store);
        const r = await store.listTasks(q());
        assert.equal(r.total, 9);
        assert.deepEqual(r.tasks.map((x) => x.createdAt), [8, 7, 6, 5, 4, 3, 2, 1, 0].map((h) => T0 + h * HOUR));
        assert.ok(r.tasks.every((x) => x.appId === APP));
      });

      it('orders tasks of the same instant by id, newest first, and pages over that order', async (t) => {
        const store = await open(t);
        const made = await create(store, job(Array.from({ length: 7 }, (_, i) => task(`https://www.alpha.com/p/${i}`))));
        const all = await store.listTasks(q());
        assert.deepEqual(all.tasks.map((x) => x.id), made.map((x) => x.id).reverse());
        const seen: number[] = [];
        for (let offset = 0; offset < 7; offset += 3) {
          const page = await store.listTasks(q({ offset, limit: 3 }));
          assert.equal(page.total, 7);
          seen.push(...page.tasks.map((x) => x.id));
        }
        assert.deepEqual(seen, all.tasks.map((x) => x.id));
        const beyond = await store.listTasks(q({ offset: 50, limit: 3 }));
        assert.deepEqual(beyond, { total: 7, tasks: [] });
        const none = await store.listTasks(q({ limit: 0 }));
        assert.deepEqual(none, { total: 7, tasks: [] });
      });

      it('filters by inclusive time bounds', async (t) => {
        const store = await open(t);
        await seed(store);
        const r = await store.listTasks(q({ from: T0 + 2 * HOUR, to: T0 + 4 * HOUR }));
        assert.equal(r.total, 3);
        assert.deepEqual(r.tasks.map((x) => x.createdAt), [T0 + 4 * HOUR, T0 + 3 * HOUR, T0 + 2 * HOUR]);
        assert.equal((await store.listTasks(q({ from: T0 + 8 * HOUR }))).total, 1);
        assert.equal((await store.listTasks(q({ to: T0 }))).total, 1);
        assert.equal((await store.listTasks(q({ from: T0 + 5 * HOUR, to: T0 + HOUR }))).total, 0);
      });

      it('filters by statuses, types and zone', async (t) => {
        const store = await open(t);
        await seed(store);
        const st = await store.listTasks(q({ statuses: ['processing', 'failed'] }));
        assert.deepEqual(targets(st.tasks), ['alpha.com', 'https://www.alpha.com/img/', 'https://www.alpha.com/css/site.css']);
        const ty = await store.listTasks(q({ types: ['purge_prefix', 'purge_host'] }));
        assert.deepEqual(targets(ty.tasks), ['cdn.beta.net', 'https://www.alpha.com/img/']);
        const zone = await store.listTasks(q({ zoneId: 'zone-bbbb2222' }));
        assert.deepEqual(targets(zone.tasks), ['https://img.gamma.org/photos/2026/dog.jpg']);
        assert.equal((await store.listTasks(q({ zoneId: ZONE }))).total, 8);
        const combo = await store.listTasks(q({ statuses: ['success'], types: ['purge_url'], zoneId: ZONE }));
        assert.deepEqual(targets(combo.tasks), ['https://www.alpha.com/img/Logo.PNG']);
      });

      it('treats an empty list filter as matching nothing', async (t) => {
        const store = await open(t);
        await seed(store);
        assert.deepEqual(await store.listTasks(q({ statuses: [] })), { total: 0, tasks: [] });
        assert.deepEqual(await store.listTasks(q({ hosts: [] })), { total: 0, tasks: [] });
        assert.deepEqual(await store.listTasks(q({ types: [] })), { total: 0, tasks: [] });
      });

      it('filters by hosts: any of them, a task touching several counted once', async (t) => {
        const store = await open(t);
        await seed(store);
        const beta = await store.listTasks(q({ hosts: ['cdn.beta.net'] }));
        assert.deepEqual(targets(beta.tasks), ['alpha.com', 'cdn.beta.net', 'https://cdn.beta.net/app/main.js?v=100%_x']);
        assert.equal(beta.total, 3);
        const two = await store.listTasks(q({ hosts: ['cdn.beta.net', 'www.alpha.com'] }));
        assert.equal(two.total, 7, 'purge_all touches both hosts and is counted once');
        assert.equal(new Set(two.tasks.map((x) => x.id)).size, 7);
        assert.deepEqual(two.tasks.map((x) => x.createdAt), [6, 5, 4, 3, 2, 1, 0].map((h) => T0 + h * HOUR));
        const paged = await store.listTasks(q({ hosts: ['cdn.beta.net', 'www.alpha.com'], offset: 2, limit: 2 }));
        assert.deepEqual(paged.tasks.map((x) => x.id), two.tasks.slice(2, 4).map((x) => x.id));
        const combined = await store.listTasks(
          q({ hosts: ['www.alpha.com'], statuses: ['success', 'processing'], types: ['purge_url', 'purge_all'], from: T0 + HOUR, to: T0 + 6 * HOUR }),
        );
        assert.deepEqual(targets(combined.tasks), ['alpha.com', 'https://www.alpha.com/css/site.css']);
        assert.equal((await store.listTasks(q({ hosts: ['unknown.example'] }))).total, 0);
        assert.equal((await store.listTasks(q({ appId: OTHER_APP, hosts: ['cdn.beta.net'] }))).total, 0);
      });

      it('filters by job id and by exact target', async (t) => {
        const store = await open(t);
        const { jobIds } = await seed(store);
        const byJob = await store.listTasks(q({ jobId: jobIds[3]! }));
        assert.deepEqual(targets(byJob.tasks), ['https://cdn.beta.net/app/main.js?v=100%_x']);
        assert.equal((await store.listTasks(q({ jobId: jobIds[3]!, statuses: ['success'] }))).total, 0);
        assert.equal((await store.listTasks(q({ appId: OTHER_APP, jobId: jobIds[3]! }))).total, 0);
        const exact = await store.listTasks(q({ target: 'https://www.alpha.com/img/Logo.PNG' }));
        assert.equal(exact.total, 1, 'exact target, this tenant only');
        assert.equal((await store.listTasks(q({ target: 'https://www.alpha.com/img/logo.png' }))).total, 0, 'exact is exact');
        assert.equal((await store.listTasks(q({ target: 'https://www.alpha.com/img' }))).total, 0, 'no prefix match');
        assert.deepEqual(targets((await store.listTasks(q({ target: 'cdn.beta.net' }))).tasks), ['cdn.beta.net']);
        // Shorter than the trigram index can serve.
        const many = await store.listTasks(q({ target: 'ab' }));
        assert.equal(many.total, 0);
      });

      it('finds substrings of targets (fuzzy), case-insensitively, combined with other filters', async (t) => {
        const store = await open(t);
        await seed(store);
        assert.deepEqual(targets((await store.listTasks(q({ targetContains: 'photos/2026' }))).tasks), [
          'https://img.gamma.org/photos/2026/dog.jpg',
          'https://img.gamma.org/photos/2026/cat.jpg',
        ]);
        assert.deepEqual(targets((await store.listTasks(q({ targetContains: 'logo.png' }))).tasks), [
          'https://www.alpha.com/img/Logo.PNG',
        ]);
        assert.deepEqual(targets((await store.listTasks(q({ targetContains: 'IMG/LOGO' }))).tasks), [
          'https://www.alpha.com/img/Logo.PNG',
        ]);
        // LIKE / GLOB / FTS syntax is taken literally.
        assert.equal((await store.listTasks(q({ targetContains: '100%_x' }))).total, 1);
        assert.equal((await store.listTasks(q({ targetContains: '%' }))).total, 1);
        assert.equal((await store.listTasks(q({ targetContains: '_' }))).total, 1);
        assert.equal((await store.listTasks(q({ targetContains: '"' }))).total, 0);
        assert.equal((await store.listTasks(q({ targetContains: '" OR "a' }))).total, 0);
        assert.equal((await store.listTasks(q({ targetContains: 'alpha.com/*' }))).total, 0);
        // Tag and host targets too; whole target; short needles.
        assert.deepEqual(targets((await store.listTasks(q({ targetContains: 'news' }))).tasks), ['tag-news']);
        assert.equal((await store.listTasks(q({ targetContains: 'https://www.alpha.com/img/Logo.PNG' }))).total, 1);
        assert.equal((await store.listTasks(q({ targetContains: 'js' }))).total, 1);
        assert.equal((await store.listTasks(q({ targetContains: 'a' }))).total, 9);
        assert.equal((await store.listTasks(q({ targetContains: 'jpg', from: T0 + 8 * HOUR, to: T0 + 9 * HOUR }))).total, 1);
        assert.equal((await store.listTasks(q({ targetContains: 'nothing-like-this' }))).total, 0);
        // Combined with the other filters.
        const combo = await store.listTasks(
          q({ targetContains: 'alpha.com', hosts: ['www.alpha.com'], statuses: ['success', 'processing'], from: T0, to: T0 + 5 * HOUR }),
        );
        assert.deepEqual(targets(combo.tasks), ['alpha.com', 'https://www.alpha.com/css/site.css', 'https://www.alpha.com/img/Logo.PNG']);
        const paged = await store.listTasks(q({ targetContains: 'alpha.com', offset: 1, limit: 2 }));
        assert.equal(paged.total, 4);
        assert.deepEqual(targets(paged.tasks), ['https://www.alpha.com/img/', 'https://www.alpha.com/css/site.css']);
        assert.equal((await store.listTasks(q({ targetContains: 'alpha.com', types: ['purge_all'] }))).total, 1);
        assert.equal((await store.listTasks(q({ targetContains: 'secret' }))).total, 0, 'never another tenant');
        assert.equal((await store.listTasks(q({ appId: OTHER_APP, targetContains: 'logo' }))).total, 1);
      });

      it('finds tasks by text within a time range even when stamped out of commit order', async (t) => {
        const store = await open(t);
        // Committed first but stamped later, then the reverse (clock skew between replicas).
        await create(store, job([task('https://www.alpha.com/skew/late.css')], { createdAt: T0 + 10 * HOUR }));
        await create(store, job([task('https://www.alpha.com/skew/early.css')], { createdAt: T0 }));
        await create(store, job([task('https://www.alpha.com/skew/mid.css')], { createdAt: T0 + 5 * HOUR }));
        const early = await store.listTasks(q({ targetContains: 'skew/', from: T0, to: T0 + HOUR }));
        assert.deepEqual(targets(early.tasks), ['https://www.alpha.com/skew/early.css']);
        const exact = await store.listTasks(q({ target: 'https://www.alpha.com/skew/early.css', from: T0, to: T0 + HOUR }));
        assert.equal(exact.total, 1);
        const all = await store.listTasks(q({ targetContains: '.css', from: T0, to: T0 + 10 * HOUR }));
        assert.deepEqual(targets(all.tasks), [
          'https://www.alpha.com/skew/late.css',
          'https://www.alpha.com/skew/mid.css',
          'https://www.alpha.com/skew/early.css',
        ]);
        assert.equal((await store.listTasks(q({ targetContains: 'skew', from: T0 + 11 * HOUR }))).total, 0);
        assert.equal((await store.listTasks(q({ targetContains: 'skew', to: T0 - 1 }))).total, 0);
      });

      it('finds an exact target in every hour it was purged, within the time range asked', async (t) => {
        const store = await open(t);
        const url = 'https://www.alpha.com/hours/a.js';
        // Either side of hour boundaries, days apart, stamped out of commit order; another tenant's same URL.
        const at = [T0 + 2 * DAY, T0, T0 + HOUR - 1, T0 + HOUR, T0 + 3 * HOUR + 1];
        for (const createdAt of at) await create(store, job([task(url), task('https://www.alpha.com/hours/b.js')], { createdAt }));
        await create(store, job([task(url)], { appId: OTHER_APP, createdAt: T0 }));
        const times = async (over: Partial<TaskQuery>) => (await store.listTasks(q({ target: url, ...over }))).tasks.map((x) => x.createdAt);
        assert.deepEqual(await times({}), [...at].sort((a, b) => b - a));
        assert.deepEqual(await times({ from: T0, to: T0 + HOUR - 1 }), [T0 + HOUR - 1, T0]);
        assert.deepEqual(await times({ from: T0 + HOUR - 1, to: T0 + HOUR }), [T0 + HOUR, T0 + HOUR - 1]);
        assert.deepEqual(await times({ from: T0 + 1, to: T0 + 3 * HOUR + 1 }), [T0 + 3 * HOUR + 1, T0 + HOUR, T0 + HOUR - 1]);
        assert.deepEqual(await times({ from: T0 + 3 * HOUR + 2 }), [T0 + 2 * DAY]);
        assert.deepEqual(await times({ to: T0 - 1 }), []);
        assert.equal((await store.listTasks(q({ target: url, offset: 4, limit: 10 }))).total, 5);
        assert.deepEqual((await store.listTasks(q({ appId: OTHER_APP, target: url }))).tasks.map((x) => x.createdAt), [T0]);
      });

      it('finds non-ASCII substrings', async (t) => {
        const store = await open(t);
        await create(store, job([task('https://www.alpha.com/文件/图片.jpg'), task('https://www.alpha.com/ß/Ünïcode')]));
        assert.equal((await store.listTasks(q({ targetContains: '图片' }))).total, 1);
        assert.equal((await store.listTasks(q({ targetContains: '文件/图片' }))).total, 1);
        assert.equal((await store.listTasks(q({ targetContains: 'ß/Ünï' }))).total, 1);
      });
    });

    describe('listRefreshRecords', () => {
      /** Jobs one hour apart: j0 two hosts, j1 a prefix, j2 three URLs on one host, j3 a prefetch (no record). */
      async function seedJobs(store: TaskStore): Promise<string[]> {
        const ids: string[] = [];
        const specs: Array<[number, TaskType, string[]]> = [
          [0, 'purge_url', ['https://www.alpha.com/a', 'https://cdn.beta.net/b']],
          [1, 'purge_prefix', ['https://www.alpha.com/dir/']],
          [2, 'purge_url', ['https://cdn.beta.net/c', 'https://cdn.beta.net/d', 'https://cdn.beta.net/e']],
          [3, 'prefetch_url', ['https://www.alpha.com/a']],
        ];
        for (const [h, type, list] of specs) {
          const j = job(list.map((x) => task(x)), { type, createdAt: T0 + h * HOUR });
          await create(store, j);
          ids.push(j.jobId);
        }
        await create(store, job([task('https://www.alpha.com/a')], { appId: OTHER_APP }));
        return ids;
      }
      const keys = (r: { records: ReadonlyArray<{ job: { jobId: string }; host: string }> }): string[] =>
        r.records.map((x) => `${x.job.jobId}/${x.host}`);

      it('lists one record per refresh job and host, newest job first, its hosts in order, each with that host\'s tasks', async (t) => {
        const store = await open(t);
        const [j0, j1, j2] = await seedJobs(store);
        const r = await store.listRefreshRecords({ appId: APP, offset: 0, limit: 10 });
        assert.equal(r.total, 4, 'the prefetch job has no record');
        assert.deepEqual(keys(r), [`${j2}/cdn.beta.net`, `${j1}/www.alpha.com`, `${j0}/www.alpha.com`, `${j0}/cdn.beta.net`]);
        assert.deepEqual(targets(r.records[0]!.tasks), ['https://cdn.beta.net/c', 'https://cdn.beta.net/d', 'https://cdn.beta.net/e']);
        assert.equal(r.records[0]!.job.taskCount, 3);
        assert.equal(r.records[1]!.job.type, 'purge_prefix');
        assert.deepEqual(targets(r.records[2]!.tasks), ['https://www.alpha.com/a']);
        assert.deepEqual(targets(r.records[3]!.tasks), ['https://cdn.beta.net/b']);
        const page = await store.listRefreshRecords({ appId: APP, offset: 1, limit: 2 });
        assert.equal(page.total, 4);
        assert.deepEqual(keys(page), [`${j1}/www.alpha.com`, `${j0}/www.alpha.com`]);
        assert.deepEqual(await store.listRefreshRecords({ appId: APP, offset: 4, limit: 2 }), { total: 4, records: [] });
        assert.deepEqual(await store.listRefreshRecords({ appId: APP, offset: 0, limit: 0 }), { total: 4, records: [] });
      });

      it('filters by host, exact target, job id, time and types', async (t) => {
        const store = await open(t);
        const [j0, j1, j2, j3] = await seedJobs(store);
        const list = async (over: object): Promise<string[]> => keys(await store.listRefreshRecords({ appId: APP, offset: 0, limit: 10, ...over }));
        assert.deepEqual(await list({ host: 'cdn.beta.net' }), [`${j2}/cdn.beta.net`, `${j0}/cdn.beta.net`]);
        assert.equal((await store.listRefreshRecords({ appId: APP, offset: 0, limit: 10, host: 'cdn.beta.net' })).total, 2);
        assert.deepEqual(await list({ target: 'https://www.alpha.com/a' }), [`${j0}/www.alpha.com`], 'the prefetch of the same URL has no record');
        assert.equal((await store.listRefreshRecords({ appId: APP, offset: 0, limit: 10, target: 'https://www.alpha.com/a' })).total, 1);
        assert.deepEqual(await list({ target: 'https://www.alpha.com' }), []);
        assert.deepEqual(await list({ target: 'https://cdn.beta.net/b', host: 'www.alpha.com' }), []);
        assert.deepEqual(await list({ target: 'https://cdn.beta.net/d', types: ['purge_url'] }), [`${j2}/cdn.beta.net`]);
        assert.deepEqual(await list({ target: 'https://cdn.beta.net/d', types: ['purge_prefix'] }), []);
        assert.deepEqual(await list({ jobId: j0 }), [`${j0}/www.alpha.com`, `${j0}/cdn.beta.net`]);
        assert.deepEqual(await list({ jobId: j0, host: 'cdn.beta.net' }), [`${j0}/cdn.beta.net`]);
        assert.deepEqual(await list({ jobId: j3 }), []);
        assert.deepEqual(await list({ jobId: j1, appId: OTHER_APP }), []);
        assert.deepEqual(await list({ from: T0 + HOUR, to: T0 + 2 * HOUR }), [`${j2}/cdn.beta.net`, `${j1}/www.alpha.com`]);
        assert.deepEqual(await list({ types: ['purge_url'] }), [`${j2}/cdn.beta.net`, `${j0}/www.alpha.com`, `${j0}/cdn.beta.net`]);
        assert.deepEqual(await list({ types: ['purge_prefix', 'purge_url'] }), await list({}));
        assert.deepEqual(await list({ types: ['purge_url'], host: 'www.alpha.com' }), [`${j0}/www.alpha.com`]);
        assert.deepEqual(await list({ host: 'www.alpha.com', from: T0 + HOUR }), [`${j1}/www.alpha.com`]);
        assert.deepEqual(await list({ target: 'https://www.alpha.com/a', to: T0 - 1 }), []);
        assert.deepEqual(await list({ types: [] }), []);
        assert.deepEqual(await list({ from: T0 + HOUR, to: T0 }), []);
        assert.deepEqual(keys(await store.listRefreshRecords({ appId: OTHER_APP, offset: 0, limit: 10 })).length, 1);
      });

      it('gives every record a stable public id: the job id for its first host, never a row id', async (t) => {
        const store = await open(t);
        const numeric = job([task('https://www.alpha.com/1'), task('https://cdn.beta.net/2'), task('https://www.alpha.com/3')], { jobId: '1767225600000123' });
        const made = await create(store, numeric);
        const named = job([task('https://www.alpha.com/4')], { createdAt: T0 - HOUR });
        await create(store, named);
        const r = await store.listRefreshRecords({ appId: APP, offset: 0, limit: 10 });
        const [first, second, third] = r.records;
        assert.equal(first!.id, 1767225600000123, 'a job id shaped like newJobId\'s is its first record\'s id');
        for (const rec of [second!, third!]) {
          assert.ok(Number.isSafeInteger(rec.id) && rec.id > 0 && rec.id < 2 ** 48, `other records: a number below 2^48 (${rec.id})`);
        }
        assert.equal(new Set(r.records.map((x) => x.id)).size, 3, 'unique');
        assert.ok(!made.some((x) => x.id === second!.id), 'not a task row id');
        const again = await store.listRefreshRecords({ appId: APP, offset: 0, limit: 10 });
        assert.deepEqual(again.records.map((x) => x.id), r.records.map((x) => x.id), 'stable');
      });

      it('ends a page before maxTasks would be passed, always returning one record; a job counts once', async (t) => {
        const store = await open(t);
        const [j0, j1, j2] = await seedJobs(store);
        // j1 has 1 task, j2 has 3: from j1 on, j0's 2 would make 3.
        assert.deepEqual(keys(await store.listRefreshRecords({ appId: APP, offset: 1, limit: 10, maxTasks: 2 })), [`${j1}/www.alpha.com`]);
        const big = await store.listRefreshRecords({ appId: APP, offset: 0, limit: 10, maxTasks: 1 });
        assert.deepEqual(keys(big), [`${j2}/cdn.beta.net`], 'the first record comes back even over the cap');
        assert.equal(big.total, 4, 'the total is not capped');
        // j0's two records share its two tasks.
        assert.deepEqual(keys(await store.listRefreshRecords({ appId: APP, offset: 2, limit: 10, maxTasks: 2 })), [`${j0}/www.alpha.com`, `${j0}/cdn.beta.net`]);
      });
    });

    describe('purge log', () => {
      it('reads ascending after a seq, at most limit entries', async (t) => {
        const store = await open(t);
        for (let i = 0; i < 5; i++) {
          await create(store, job([task(`https://a.example.com/${i}/x`), task(`https://a.example.com/${i}/y`)], { createdAt: T0 + i }));
        }
        assert.equal(await store.lastSeq(), 10);
        assert.deepEqual((await store.readLog(3, 4)).map((e) => e.seq), [4, 5, 6, 7]);
        assert.deepEqual((await store.readLog(8, 100)).map((e) => e.seq), [9, 10]);
        assert.deepEqual(await store.readLog(10, 100), []);
        assert.deepEqual(await store.readLog(0, 0), []);
        const [e] = await store.readLog(4, 1);
        assert.equal(e!.target, 'https://a.example.com/2/x');
        assert.deepEqual(e!.hosts, ['a.example.com']);
      });
    });

    describe('node progress', () => {
      it('records acks per node and never moves backwards', async (t) => {
        const store = await open(t);
        await store.ackNode('edge-b', 5, T0 + 1);
        await store.ackNode('edge-a', 7, T0 + 2);
        await store.ackNode('edge-a', 3, T0 + 3);
        await store.ackNode('edge-b', 9, T0 + 4);
        const p = await store.nodeProgress();
        const byNode = new Map(p.map((x) => [x.nodeId, x]));
        assert.equal(p.length, 2);
        assert.equal(byNode.get('edge-a')!.ackedSeq, 7, 'a lower ack does not move it back');
        assert.equal(byNode.get('edge-a')!.seenAt, T0 + 3, 'but it counts as a sign of life');
        assert.equal(byNode.get('edge-b')!.ackedSeq, 9);
        assert.equal(byNode.get('edge-b')!.seenAt, T0 + 4);
      });
    });

    describe('node reports (with acks)', () => {
      const report = (t: TaskRecord, over: Partial<NodeReportInput> = {}): NodeReportInput => ({
        taskId: t.id, seq: t.seq!, driver: 'varnish', executedAs: 'delete', matched: 3, note: null, ...over,
      });
      /** What jobNodeReports returns for `r` acked by `nodeId` at `at`. */
      const stored = (nodeId: string, r: NodeReportInput, at = T0 + 5): NodeReport => ({ nodeId, ...r, appliedAt: at });

      it('records an ack and its reports together: one report per task and node, the first standing; an outcome per report', async (t) => {
        const store = await open(t);
        const [a, b] = (await create(store, job([task('https://a.example.com/1'), task('https://a.example.com/2')]))) as [TaskRecord, TaskRecord];
        const first = report(a, { executedAs: 'invalidate', matched: 2, note: 'soft' });
        const outcomes = await store.ackNode('edge-a', b.seq!, T0 + 5, [first, report(a, { executedAs: 'delete', matched: 9 }), report(b, { executedAs: 'drop_all', matched: null })]);
        assert.deepEqual(outcomes, ['recorded', 'duplicate', 'recorded']);
        assert.deepEqual(await store.ackNode('edge-b', b.seq!, T0 + 6, [report(a, { driver: null, matched: null })]), ['recorded'], 'another node reports on its own');
        assert.deepEqual(await store.ackNode('edge-a', b.seq!, T0 + 7, [report(a, { matched: 100 })]), ['duplicate'], 'a later ack changes nothing');
        assert.deepEqual(await store.ackNode('edge-a', b.seq!, T0 + 8), [], 'an ack without reports');
        assert.deepEqual(await store.jobNodeReports(APP, a.jobId), [
          stored('edge-a', first),
          stored('edge-b', report(a, { driver: null, matched: null }), T0 + 6),
          stored('edge-a', report(b, { executedAs: 'drop_all', matched: null })),
        ]);
        const progress = (await store.nodeProgress()).find((p) => p.nodeId === 'edge-a');
        assert.deepEqual(progress, { nodeId: 'edge-a', ackedSeq: b.seq, seenAt: T0 + 8 }, 'the ack itself is recorded as without reports');
      });

      it('records a report only onto the task holding that seq', async (t) => {
        const store = await open(t);
        const [a, b] = (await create(store, job([task('https://a.example.com/1'), task('https://a.example.com/2')]))) as [TaskRecord, TaskRecord];
        const [local] = (await create(store, job([task('https://a.example.com/3', { fanOut: false, status: 'success' })]))) as [TaskRecord];
        const outcomes = await store.ackNode('edge-a', b.seq!, T0, [report(a, { seq: b.seq! }), report(a, { taskId: 987654321 }), { ...report(a), taskId: local.id }]);
        assert.deepEqual(outcomes, ['unknown', 'unknown', 'unknown']);
        assert.deepEqual(await store.jobNodeReports(APP, a.jobId), []);
      });

      it('are read per job, scoped by app (tenants are walls)', async (t) => {
        const store = await open(t);
        const [mine] = (await create(store, job([task('https://a.example.com/1')]))) as [TaskRecord];
        const [theirs] = (await create(store, job([task('https://b.example.com/1')], { appId: OTHER_APP }))) as [TaskRecord];
        await store.ackNode('edge-a', theirs.seq!, T0, [report(mine), report(theirs)]);
        assert.deepEqual((await store.jobNodeReports(APP, mine.jobId)).map((r) => r.taskId), [mine.id]);
        assert.deepEqual(await store.jobNodeReports(APP, theirs.jobId), [], "another app's job shows nothing");
        assert.deepEqual(await store.jobNodeReports(APP, 'job-that-does-not-exist'), []);
      });

      it('are pruned with their tasks', async (t) => {
        const store = await open(t);
        const [old] = (await create(store, job([task('https://a.example.com/old')], { createdAt: T0 }))) as [TaskRecord];
        const [fresh] = (await create(store, job([task('https://a.example.com/new')], { createdAt: T0 + DAY }))) as [TaskRecord];
        await store.ackNode('edge-a', fresh.seq!, T0, [report(old), report(fresh)]);
        await store.prune(T0 + 1);
        assert.deepEqual(await store.jobNodeReports(APP, old.jobId), []);
        assert.equal((await store.jobNodeReports(APP, fresh.jobId)).length, 1);
        assert.deepEqual(await store.ackNode('edge-a', fresh.seq!, T0, [report(old)]), ['unknown'], 'a late report of a pruned task is not kept');
      });
    });

    describe('ackNodes (a batch of acks and the statuses they settle)', () => {
      const report = (t: TaskRecord, over: Partial<NodeReportInput> = {}): NodeReportInput => ({
        taskId: t.id, seq: t.seq!, driver: 'builtin', executedAs: 'invalidate', matched: null, note: null, ...over,
      });

      it('records every ack, their reports and the settled statuses together; outcomes per ack, in order', async (t) => {
        const store = await open(t);
        const [a, b, c] = (await create(store, job([task('https://a.example.com/1'), task('https://a.example.com/2'), task('https://a.example.com/3')]))) as [TaskRecord, TaskRecord, TaskRecord];
        await store.updateTasks([{ taskId: c.id, status: 'timeout', failType: 'taskFailed', failMessage: 'late' }], T0 + 1);
        const outcomes = await store.ackNodes(
          [
            { nodeId: 'edge-a', seq: b.seq!, at: T0 + 10, reports: [report(a), report(b)] },
            { nodeId: 'edge-b', seq: a.seq!, at: T0 + 11 },
            { nodeId: 'edge-a', seq: a.seq!, at: T0 + 12, reports: [report(a, { executedAs: 'delete' }), report(a, { taskId: 987654321 })] },
          ],
          [{ taskId: a.id, status: 'success' }, { taskId: c.id, status: 'success' }],
          T0 + 20,
        );
        assert.deepEqual(outcomes, [['recorded', 'recorded'], [], ['duplicate', 'unknown']]);
        const progress = new Map((await store.nodeProgress()).map((p) => [p.nodeId, p]));
        assert.deepEqual(progress.get('edge-a'), { nodeId: 'edge-a', ackedSeq: b.seq, seenAt: T0 + 12 }, 'a lower ack in the same batch moves nothing back');
        assert.deepEqual(progress.get('edge-b'), { nodeId: 'edge-b', ackedSeq: a.seq, seenAt: T0 + 11 });
        const tasks = new Map((await store.jobTasks(APP, a.jobId)).map((x) => [x.id, x]));
        assert.equal(tasks.get(a.id)!.status, 'success');
        assert.equal(tasks.get(a.id)!.updatedAt, T0 + 20);
        assert.equal(tasks.get(b.id)!.status, 'processing');
        assert.equal(tasks.get(c.id)!.status, 'timeout', 'a final status never changes');
        assert.deepEqual((await store.jobNodeReports(APP, a.jobId)).map((r) => [r.nodeId, r.taskId, r.executedAs, r.appliedAt]), [
          ['edge-a', a.id, 'invalidate', T0 + 10],
          ['edge-a', b.id, 'invalidate', T0 + 10],
        ]);
        assert.deepEqual(await store.ackNodes([], [], T0), [], 'an empty batch writes nothing');
      });

      it('writes nothing of a batch that fails (all or nothing)', async (t) => {
        const store = await open(t);
        const [a] = (await create(store, job([task('https://a.example.com/1')]))) as [TaskRecord];
        await assert.rejects(
          store.ackNodes(
            [
              { nodeId: 'edge-a', seq: a.seq!, at: T0 + 10 },
              // executed_as is NOT NULL: this report fails the batch after the first ack was written.
              { nodeId: 'edge-b', seq: a.seq!, at: T0 + 10, reports: [report(a, { executedAs: null as never })] },
            ],
            [{ taskId: a.id, status: 'success' }],
            T0 + 20,
          ),
        );
        assert.deepEqual(await store.nodeProgress(), []);
        assert.equal((await store.jobTasks(APP, a.jobId))[0]!.status, 'processing');
        assert.deepEqual(await store.jobNodeReports(APP, a.jobId), []);
      });
    });

    describe('prefetch results (with acks, issue 9)', () => {
      const ok = (t: TaskRecord): PrefetchResultInput => ({ taskId: t.id, ok: true, failType: null, failMessage: null });
      const failed = (t: TaskRecord, why: string): PrefetchResultInput => ({ taskId: t.id, ok: false, failType: 'originFailed', failMessage: why });
      const prefetch = async (store: TaskStore, targets: readonly string[], over: Partial<Omit<NewJob, 'tasks'>> = {}) =>
        create(store, job(targets.map((x) => task(x)), { type: 'prefetch_url', ...over }));

      it('records results in the ack batch: one per task and node, the first standing; outcomes after the reports', async (t) => {
        const store = await open(t);
        const [p1, p2] = (await prefetch(store, ['https://a.example.com/p1', 'https://a.example.com/p2'])) as [TaskRecord, TaskRecord];
        const [purge] = (await create(store, job([task('https://a.example.com/x')]))) as [TaskRecord];
        const outcomes = await store.ackNodes(
          [
            { nodeId: 'edge-a', seq: purge.seq!, at: T0 + 10, results: [ok(p1), failed(p2, 'edge-a: origin returned 503')],
              reports: [{ taskId: purge.id, seq: purge.seq!, driver: 'builtin', executedAs: 'invalidate', matched: null, note: null }] },
            { nodeId: 'edge-b', seq: purge.seq!, at: T0 + 11, results: [ok(p1), ok(purge), { ...ok(p1), taskId: 987654321 }] },
            { nodeId: 'edge-a', seq: purge.seq!, at: T0 + 12, results: [failed(p1, 'edge-a: late change of mind')] },
          ],
          [],
          T0 + 20,
        );
        assert.deepEqual(outcomes, [['recorded', 'recorded', 'recorded'], ['recorded', 'unknown', 'unknown'], ['duplicate']], 'a purge task takes no result');
        assert.deepEqual(await store.prefetchResults([p2.id, p1.id, purge.id]), [
          { nodeId: 'edge-a', taskId: p1.id, ok: true, failType: null, failMessage: null, at: T0 + 10 },
          { nodeId: 'edge-b', taskId: p1.id, ok: true, failType: null, failMessage: null, at: T0 + 11 },
          { nodeId: 'edge-a', taskId: p2.id, ok: false, failType: 'originFailed', failMessage: 'edge-a: origin returned 503', at: T0 + 10 },
        ]);
        assert.deepEqual(await store.prefetchResults([]), []);
      });

      it('writes no result of a batch that fails (all or nothing)', async (t) => {
        const store = await open(t);
        const [p1] = (await prefetch(store, ['https://a.example.com/p1'])) as [TaskRecord];
        await assert.rejects(
          store.ackNodes(
            [
              { nodeId: 'edge-a', seq: p1.seq!, at: T0 + 10, results: [ok(p1)] },
              { nodeId: 'edge-b', seq: p1.seq!, at: T0 + 10, reports: [{ taskId: p1.id, seq: p1.seq!, driver: null, executedAs: null as never, matched: null, note: null }] },
            ],
            [],
            T0 + 20,
          ),
        );
        assert.deepEqual(await store.prefetchResults([p1.id]), []);
      });

      it('are pruned with their tasks', async (t) => {
        const store = await open(t);
        const [old] = (await prefetch(store, ['https://a.example.com/old'], { createdAt: T0 }))  as [TaskRecord];
        const [fresh] = (await prefetch(store, ['https://a.example.com/new'], { createdAt: T0 + DAY })) as [TaskRecord];
        await store.ackNodes([{ nodeId: 'edge-a', seq: fresh.seq!, at: T0 + DAY, results: [ok(old), ok(fresh)] }], [], T0 + DAY);
        await store.prune(T0 + 1);
        assert.deepEqual((await store.prefetchResults([old.id, fresh.id])).map((r) => r.taskId), [fresh.id]);
        assert.deepEqual(await store.ackNodes([{ nodeId: 'edge-b', seq: fresh.seq!, at: T0 + DAY, results: [ok(old)] }], [], T0 + DAY), [['unknown']], 'a late result of a pruned task is not kept');
      });
    });

    describe('updateTasks and processingTasks', () => {
      it('sets statuses, failure details and updatedAt for a batch; queries see them', async (t) => {
        const store = await open(t);
        const made = await create(
          store,
          job([task('https://a.example.com/1'), task('https://a.example.com/2'), task('https://b.example.com/3'), task('https://b.example.com/4')]),
        );
        const [a, b, c, d] = made as [TaskRecord, TaskRecord, TaskRecord, TaskRecord];
        await store.updateTasks(
          [
            { taskId: a.id, status: 'success' },
            { taskId: b.id, status: 'failed', failType: 'taskFailed', failMessage: 'node edge-1 refused' },
            { taskId: c.id, status: 'timeout' },
            { taskId: 987654321, status: 'success' },
          ],
          T0 + 30_000,
        );
        const after = await store.jobTasks(APP, a.jobId);
        assert.deepEqual(after.map((x) => x.status), ['success', 'failed', 'timeout', 'processing']);
        assert.equal(after[1]!.failType, 'taskFailed');
        assert.equal(after[1]!.failMessage, 'node edge-1 refused');
        assert.equal(after[0]!.updatedAt, T0 + 30_000);
        assert.equal(after[3]!.updatedAt, T0, 'untouched tasks keep their updatedAt');
        assert.equal(after[0]!.createdAt, T0);
        // Every query path sees the new status.
        assert.deepEqual((await store.listTasks(q({ statuses: ['failed'] }))).tasks.map((x) => x.id), [b.id]);
        assert.deepEqual((await store.listTasks(q({ statuses: ['timeout'], hosts: ['b.example.com'] }))).tasks.map((x) => x.id), [c.id]);
        assert.deepEqual((await store.listTasks(q({ statuses: ['processing'], hosts: ['b.example.com', 'a.example.com'] }))).tasks.map((x) => x.id), [d.id]);
        assert.deepEqual((await store.listTasks(q({ statuses: ['success'], targetContains: 'example.com/1' }))).tasks.map((x) => x.id), [a.id]);
        // Final statuses never change: a late update of a settled task is ignored.
        await store.updateTasks([{ taskId: b.id, status: 'success', failType: null, failMessage: null }], T0 + 50_000);
        const kept = (await store.jobTasks(APP, a.jobId))[1]!;
        assert.equal(kept.status, 'failed');
        assert.equal(kept.failMessage, 'node edge-1 refused');
        assert.equal(kept.updatedAt, T0 + 30_000);
        await store.updateTasks([], T0 + 60_000);
      });

      it('lists processing fanned-out tasks in (afterSeq, maxSeq], ascending, at most limit', async (t) => {
        const store = await open(t);
        const one = await create(store, job([task('https://a.example.com/1'), task('https://a.example.com/2', { fanOut: false })]));
        const two = await create(store, job([task('https://a.example.com/3'), task('https://a.example.com/4'), task('https://a.example.com/5')]));
        // seqs: 1 (one[0]), 2..4 (two)
        await store.updateTasks([{ taskId: two[0]!.id, status: 'success' }], T0 + 1);
        assert.deepEqual((await store.processingTasks(3, 10)).map((x) => x.seq), [1, 3]);
        assert.deepEqual((await store.processingTasks(100, 10)).map((x) => x.seq), [1, 3, 4]);
        assert.deepEqual((await store.processingTasks(100, 2)).map((x) => x.seq), [1, 3]);
        assert.deepEqual((await store.processingTasks(100, 10, 1)).map((x) => x.seq), [3, 4], 'afterSeq < seq');
        assert.deepEqual((await store.processingTasks(100, 1, 3)).map((x) => x.seq), [4], 'pages on by afterSeq');
        assert.deepEqual(await store.processingTasks(3, 10, 3), []);
        assert.deepEqual(await store.processingTasks(0, 10), []);
        assert.deepEqual(await store.processingTasks(100, 0), []);
        assert.equal((await store.processingTasks(100, 10))[0]!.id, one[0]!.id);
      });
    });

    describe('webhook outbox', () => {
      /** The outbox of a store that must have it (both backends do). */
      const outbox = (store: TaskStore): Required<Pick<TaskStore, 'claimWebhookDeliveries' | 'recordWebhookAttempt' | 'webhookDeliveries' | 'webhookOutboxDepth'>> => {
        const { claimWebhookDeliveries, recordWebhookAttempt, webhookDeliveries, webhookOutboxDepth } = store;
        assert.ok(claimWebhookDeliveries && recordWebhookAttempt && webhookDeliveries && webhookOutboxDepth, 'the store has the webhook outbox');
        return {
          claimWebhookDeliveries: claimWebhookDeliveries.bind(store), recordWebhookAttempt: recordWebhookAttempt.bind(store),
          webhookDeliveries: webhookDeliveries.bind(store), webhookOutboxDepth: webhookOutboxDepth.bind(store),
        };
      };
      const URL_A = 'https://hooks.example.net/a';
      const URL_B = 'https://hooks.example.net/b';

      it('enqueues one row per routed URL when the last processing task of a job settles, in that call', async (t) => {
        const store = await open(t);
        const o = outbox(store);
        const [a, b] = (await create(store, job([task('https://a.example.com/1'), task('https://a.example.com/2')]))) as [TaskRecord, TaskRecord];
        const seen: Array<{ appId: number; jobId: string; event: string }> = [];
        const router = (j: { appId: number; jobId: string; event: string }) => (seen.push(j), [URL_A, URL_B]);
        await store.updateTasks([{ taskId: a.id, status: 'success' }], T0 + 1000, router);
        assert.deepEqual(seen, [], 'a job with a processing task left raises nothing');
        assert.equal(await o.webhookOutboxDepth(), 0);
        await store.updateTasks([{ taskId: b.id, status: 'success' }], T0 + 2000, router);
        assert.deepEqual(seen, [{ appId: APP, jobId: a.jobId, event: 'job.succeeded' }]);
        const log = await o.webhookDeliveries({ appId: APP, jobId: a.jobId, limit: 10 });
        assert.deepEqual(log.map((d) => [d.url, d.event, d.status, d.attempts, d.createdAt, d.nextAt]).sort(), [
          [URL_A, 'job.succeeded', 'pending', 0, T0 + 2000, T0 + 2000],
          [URL_B, 'job.succeeded', 'pending', 0, T0 + 2000, T0 + 2000],
        ]);
        assert.notEqual(log[0]!.eventId, log[1]!.eventId);
        assert.match(log[0]!.eventId, /^evt_[0-9a-f]{24}$/);
        assert.equal(await o.webhookOutboxDepth(), 2);
        // A late update of a settled task settles nothing and enqueues nothing more.
        await store.updateTasks([{ taskId: b.id, status: 'failed' }], T0 + 3000, router);
        assert.equal(seen.length, 1);
        assert.equal(await o.webhookOutboxDepth(), 2);
      });

      it('ackNodes enqueues with the acks that settle a job, in their one transaction (and nothing when it fails)', async (t) => {
        const store = await open(t);
        const o = outbox(store);
        const [a] = (await create(store, job([task('https://a.example.com/1')]))) as [TaskRecord];
        const router = () => [URL_A];
        const bad = { taskId: a.id, seq: a.seq!, driver: null, executedAs: null as never, matched: null, note: null };
        await assert.rejects(store.ackNodes([{ nodeId: 'edge-a', seq: a.seq!, at: T0, reports: [bad] }], [{ taskId: a.id, status: 'success' }], T0 + 1000, router));
        assert.equal(await o.webhookOutboxDepth(), 0, 'a failed batch enqueues nothing');
        await store.ackNodes([{ nodeId: 'edge-a', seq: a.seq!, at: T0 }], [{ taskId: a.id, status: 'success' }], T0 + 1000, router);
        assert.deepEqual((await o.webhookDeliveries({ jobId: a.jobId, limit: 10 })).map((d) => [d.url, d.event, d.createdAt]), [[URL_A, 'job.succeeded', T0 + 1000]]);
      });

      it('the event is failed when a task failed, else timeout when one timed out; no router, no rows', async (t) => {
        const store = await open(t);
        const o = outbox(store);
        const events = new Map<string, string>();
        const router = (j: { jobId: string; event: string }) => (events.set(j.jobId, j.event), [URL_A]);
        const f = await create(store, job([task('https://a.example.com/f1'), task('https://a.example.com/f2'), task('https://a.example.com/f3')]));
        await store.updateTasks([{ taskId: f[0]!.id, status: 'timeout' }, { taskId: f[1]!.id, status: 'failed' }, { taskId: f[2]!.id, status: 'success' }], T0 + 1, router);
        const tm = await create(store, job([task('https://a.example.com/t1'), task('https://a.example.com/t2')]));
        await store.updateTasks([{ taskId: tm[0]!.id, status: 'timeout' }, { taskId: tm[1]!.id, status: 'success' }], T0 + 1, router);
        assert.equal(events.get(f[0]!.jobId), 'job.failed');
        assert.equal(events.get(tm[0]!.jobId), 'job.timeout');
        const quiet = await create(store, job([task('https://a.example.com/q')]));
        await store.updateTasks([{ taskId: quiet[0]!.id, status: 'success' }], T0 + 1);
        const none = await create(store, job([task('https://a.example.com/n')]));
        await store.updateTasks([{ taskId: none[0]!.id, status: 'success' }], T0 + 1, () => []);
        assert.deepEqual((await o.webhookDeliveries({ limit: 10 })).map((d) => d.jobId).sort(), [f[0]!.jobId, tm[0]!.jobId].sort());
      });

      it('createJob enqueues, in its transaction, the job it settles at creation; not a job with a task to fan out, nor a refused one', async (t) => {
        const store = await open(t);
        const o = outbox(store);
        const seen: string[] = [];
        const router = (j: { jobId: string; event: string }) => (seen.push(`${j.jobId} ${j.event}`), [URL_A, URL_B]);
        const settledTask = (url: string) => task(url, { fanOut: false, status: 'success' });
        const settled = job([settledTask('https://a.example.com/s1'), settledTask('https://a.example.com/s2')], { createdAt: T0 + 7 });
        const mixed = job([settledTask('https://a.example.com/m1'), task('https://a.example.com/m2')]);
        const quiet = job([settledTask('https://a.example.com/q1')]);
        // One group-commit batch: both stores admit these in one transaction.
        await Promise.all([
          store.createJob(settled, charge({ amount: 2 }), router),
          store.createJob(mixed, charge({ amount: 2 }), router),
          store.createJob(quiet, charge({ amount: 1 })),
        ]);
        assert.deepEqual(seen, [`${settled.jobId} job.succeeded`], 'only the settled job is routed');
        const log = await o.webhookDeliveries({ jobId: settled.jobId, limit: 10 });
        assert.deepEqual(log.map((d) => [d.url, d.event, d.status, d.createdAt, d.nextAt]).sort(), [
          [URL_A, 'job.succeeded', 'pending', T0 + 7, T0 + 7],
          [URL_B, 'job.succeeded', 'pending', T0 + 7, T0 + 7],
        ]);
        assert.equal(await o.webhookOutboxDepth(), 2);
        // A job refused (quota) writes no outbox row either.
        const refused = job([settledTask('https://a.example.com/r1')]);
        await assert.rejects(store.createJob(refused, charge({ amount: 1, daily: 1 }), router), QuotaExceededError);
        assert.deepEqual(await o.webhookDeliveries({ jobId: refused.jobId, limit: 10 }), []);
        // The mixed job raises its event when its processing task settles, as before.
        const [, pending] = await store.jobTasks(APP, mixed.jobId);
        await store.updateTasks([{ taskId: pending!.id, status: 'success' }], T0 + 9, router);
        assert.equal((await o.webhookDeliveries({ jobId: mixed.jobId, limit: 10 })).length, 2);
      });

      it('claims due rows once until the hold lapses; attempts retry, deliver or fail; the log is scoped and newest first', async (t) => {
        const store = await open(t);
        const o = outbox(store);
        const one = await create(store, job([task('https://a.example.com/1')]));
        const two = await create(store, job([task('https://a.example.com/2')], { appId: OTHER_APP }));
        await store.updateTasks([{ taskId: one[0]!.id, status: 'success' }], T0 + 100, () => [URL_A]);
        await store.updateTasks([{ taskId: two[0]!.id, status: 'success' }], T0 + 200, () => [URL_A]);
        assert.deepEqual(await o.claimWebhookDeliveries(T0 + 50, 10, 1000), [], 'not due yet');
        const claimed = await o.claimWebhookDeliveries(T0 + 300, 10, 1000);
        assert.deepEqual(claimed.map((d) => d.jobId), [one[0]!.jobId, two[0]!.jobId], 'oldest due first');
        assert.deepEqual(await o.claimWebhookDeliveries(T0 + 400, 10, 1000), [], 'held rows are not claimed twice');
        assert.equal((await o.claimWebhookDeliveries(T0 + 1300, 1, 1000)).length, 1, 'a lapsed hold (a crashed claimer) frees them; limit holds');
        const [d1, d2] = claimed as [typeof claimed[0], typeof claimed[0]];
        await o.recordWebhookAttempt({ eventId: d1.eventId, at: T0 + 500, ok: false, httpStatus: 500, error: 'HTTP 500', retryAt: T0 + 5000 });
        let r1 = (await o.webhookDeliveries({ jobId: d1.jobId, limit: 1 }))[0]!;
        assert.deepEqual([r1.status, r1.attempts, r1.lastStatus, r1.lastError, r1.nextAt, r1.lastAttemptAt], ['pending', 1, 500, 'HTTP 500', T0 + 5000, T0 + 500]);
        // d2's hold lapsed again at T0 + 2300: it comes back with every claim from then on.
        assert.deepEqual((await o.claimWebhookDeliveries(T0 + 4999, 10, 1)).map((d) => d.eventId), [d2.eventId], 'd1 not before retryAt');
        assert.deepEqual((await o.claimWebhookDeliveries(T0 + 5000, 10, 1)).map((d) => d.eventId).sort(), [d1.eventId, d2.eventId].sort(), 'a recorded attempt releases the hold');
        await o.recordWebhookAttempt({ eventId: d1.eventId, at: T0 + 5100, ok: true, httpStatus: 204, error: null, retryAt: null });
        r1 = (await o.webhookDeliveries({ jobId: d1.jobId, limit: 1 }))[0]!;
        assert.deepEqual([r1.status, r1.attempts, r1.deliveredAt, r1.lastError], ['delivered', 2, T0 + 5100, null]);
        await o.recordWebhookAttempt({ eventId: d2.eventId, at: T0 + 5200, ok: false, httpStatus: null, error: 'x'.repeat(5000), retryAt: null });
        const r2 = (await o.webhookDeliveries({ appId: OTHER_APP, limit: 10 }))[0]!;
        assert.equal(r2.status, 'failed');
        assert.ok(r2.lastError!.length <= 500, 'a receiver cannot make us store unbounded text');
        // Settled rows take no more attempts and are never claimed again.
        await o.recordWebhookAttempt({ eventId: d2.eventId, at: T0 + 5300, ok: true, httpStatus: 200, error: null, retryAt: null });
        assert.equal((await o.webhookDeliveries({ appId: OTHER_APP, limit: 10 }))[0]!.status, 'failed');
        assert.deepEqual(await o.claimWebhookDeliveries(T0 + 99_999, 10, 1000), []);
        assert.equal(await o.webhookOutboxDepth(), 0);
        assert.deepEqual((await o.webhookDeliveries({ appId: APP, limit: 10 })).map((d) => d.jobId), [one[0]!.jobId], 'scoped by app');
        assert.deepEqual((await o.webhookDeliveries({ limit: 10 })).map((d) => d.jobId), [two[0]!.jobId, one[0]!.jobId], 'newest first');
      });

      it('concurrent settles of one job enqueue exactly once', async (t) => {
        const store = await open(t);
        const o = outbox(store);
        const made = await create(store, job(Array.from({ length: 8 }, (_, i) => task(`https://a.example.com/c${i}`))));
        // Every task settled by two racing callers, one task each (replicas settling the same job).
        await Promise.all(made.flatMap((x) => [0, 1].map((k) => store.updateTasks([{ taskId: x.id, status: 'success' }], T0 + 10 + k, () => [URL_A]))));
        assert.equal((await o.webhookDeliveries({ jobId: made[0]!.jobId, limit: 10 })).length, 1);
      });

      it('prune deletes deliveries enqueued before the cutoff', async (t) => {
        const store = await open(t);
        const o = outbox(store);
        const made = await create(store, job([task('https://a.example.com/p')]));
        await store.updateTasks([{ taskId: made[0]!.id, status: 'success' }], T0 + 1000, () => [URL_A]);
        await store.prune(T0 + 2000);
        assert.deepEqual(await o.webhookDeliveries({ limit: 10 }), []);
      });
    });

    describe('prune', () => {
      it('deletes jobs, tasks and log entries created before the cutoff; firstSeq moves up', async (t) => {
        const store = await open(t);
        const old = job([task('https://a.example.com/old/1'), task('https://a.example.com/old/2')], { createdAt: T0 });
        const mid = job([task('https://a.example.com/mid/1', { fanOut: false, status: 'success' })], { createdAt: T0 + DAY });
        const fresh = job([task('https://a.example.com/new/1'), task('https://a.example.com/new/2')], { createdAt: T0 + 2 * DAY });
        await create(store, old);
        await create(store, mid);
        await create(store, fresh);
        assert.equal(await store.firstSeq(), 1);
        assert.equal(await store.prune(T0 + DAY), 2, 'only createdAt < before');
        assert.equal(await store.getJob(APP, old.jobId), null);
        assert.deepEqual(await store.jobTasks(APP, old.jobId), []);
        assert.notEqual(await store.getJob(APP, mid.jobId), null);
        assert.equal(await store.firstSeq(), 3);
        assert.equal(await store.lastSeq(), 4);
        assert.deepEqual((await store.readLog(0, 10)).map((e) => e.seq), [3, 4]);
        assert.equal((await store.listTasks(q({ targetContains: '/old/' }))).total, 0);
        assert.equal((await store.listTasks(q({ hosts: ['a.example.com'] }))).total, 3);
        assert.equal((await store.listRefreshRecords({ appId: APP, offset: 0, limit: 10 })).total, 2);
        assert.equal(await store.prune(T0 + DAY), 0, 'idempotent');
      });

      it('pruning the whole log keeps lastSeq; new entries continue it and ids are not reused', async (t) => {
        const store = await open(t);
        const made = await create(store, job([task('https://a.example.com/1'), task('https://a.example.com/2')], { createdAt: T0 }));
        assert.equal(await store.prune(T0 + 1), 2);
        assert.equal(await store.lastSeq(), 2);
        assert.equal(await store.firstSeq(), 3);
        assert.deepEqual(await store.readLog(0, 10), []);
        const next = await create(store, job([task('https://a.example.com/3')], { createdAt: T0 + 2 }));
        assert.equal(next[0]!.seq, 3);
        assert.ok(next[0]!.id > made[1]!.id, 'task ids are never reused');
        assert.equal(await store.firstSeq(), 3);
      });

      it('removes large histories in several batches and reports every task', async (t) => {
        const store = await open(t);
        for (let i = 0; i < 12; i++) {
          const tasks = Array.from({ length: 400 }, (_, k) => task(`https://a.example.com/${i}/${k}.png`));
          await create(store, job(tasks, { createdAt: T0 + i * MIN }));
        }
        await create(store, job([task('https://a.example.com/keep')], { createdAt: T0 + DAY }));
        assert.equal(await store.prune(T0 + HOUR), 4800);
        assert.equal((await store.listTasks(q())).total, 1);
        assert.equal(await store.firstSeq(), 4801);
        assert.equal((await store.listTasks(q({ targetContains: '.png' }))).total, 0);
      });

      it('regression: a surviving entry below a pruned one does not hide the gap (firstSeq is past it)', async (t) => {
        const store = await open(t);
        // Committed in this order, but stamped out of order (two replicas, clock skew).
        await create(store, job([task('https://a.example.com/late-stamp')], { createdAt: T0 + 10 }));
        await create(store, job([task('https://a.example.com/early-stamp')], { createdAt: T0 }));
        await create(store, job([task('https://a.example.com/fresh')], { createdAt: T0 + 20 }));
        assert.equal(await store.prune(T0 + 5), 1);
        // seq 2 is gone, so a node that still needs 2 must see it fell behind: firstSeq > 2.
        assert.equal(await store.firstSeq(), 3);
        assert.deepEqual((await store.readLog(2, 10)).map((e) => e.seq), [3]);
      });

      it('also forgets quota days that are over everywhere', async (t) => {
        const store = await open(t);
        await store.createJob(job([task('https://a.example.com/1')], { createdAt: T0 }), charge({ day: '2026-01-01' }));
        await store.createJob(job([task('https://a.example.com/2')], { createdAt: T0 + 5 * DAY }), charge({ day: '2026-01-06' }));
        await store.prune(T0 + 3 * DAY);
        assert.equal((await store.quotaUsage(APP, '2026-01-01')).size, 0);
        assert.equal((await store.quotaUsage(APP, '2026-01-06')).get('purge_url'), 1);
      });
    });
  });
}
