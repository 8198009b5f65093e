// DriverTarget with a scripted driver: in order, nothing counted applied before the cache executed it,
// retries after failures, replays dropped, a drop superseding what it covers, purges batched.
import assert from 'node:assert/strict';
import test from 'node:test';
import { DriverTarget } from '../../src/drivers/driver-target.ts';
import { DriverError, type DriverCommand, type DriverReport, type EdgeDriver } from '../../src/drivers/edge-driver.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';

const purge = (seq: number): DriverCommand => ({ seq, type: 'purge_url', method: 'delete', hosts: ['a.test'], target: `http://a.test/${seq}` });

/** A driver that records calls and fails the next `failures` of them. */
function scripted(opts: { batch?: boolean } = {}) {
  const calls: string[] = [];
  let failures = 0;
  let retryable = true;
  const gate = async (what: string) => {
    calls.push(what);
    if (failures > 0) {
      failures--;
      throw new DriverError('cache down', { retryable });
    }
  };
  const driver: EdgeDriver = {
    name: 'scripted',
    fencesItself: false,
    start: async () => {},
    apply: async (c) => (await gate(`apply ${c.seq}`), { executedAs: c.method }),
    ...(opts.batch ? { applyBatch: async (cs: readonly DriverCommand[]) => (await gate(`batch ${cs.map((c) => c.seq).join(',')}`), cs.map((c): DriverReport => ({ executedAs: c.method }))) } : {}),
    prefetch: async () => ({ ok: true }),
    dropAll: async () => (await gate('drop'), { matched: 7 }),
    close: async () => {},
  };
  return { driver, calls, fail: (n: number, r = true) => ((failures = n), (retryable = r)) };
}

const target = (driver: EdgeDriver, applied: number[] = []) =>
  new DriverTarget({ driver, clock: systemClock, logger: silentLogger, nodeId: 'n', retryMinMs: 1, retryMaxMs: 5, onApplied: (s) => applied.push(s) });

test('entries are executed in order and counted applied only after the cache executed them; replays are dropped', async () => {
  const s = scripted();
  const applied: number[] = [];
  const t = target(s.driver, applied);
  t.apply(purge(1));
  assert.equal(t.appliedSeq, 0, 'applied before the driver answered');
  t.apply(purge(2));
  t.apply(purge(1));
  t.advanceTo(2);
  t.advanceTo(3);
  await t.drained();
  assert.deepEqual(s.calls, ['apply 1', 'apply 2']);
  assert.equal(t.appliedSeq, 3);
  assert.deepEqual(applied, [1, 2, 3]);
  await t.close();
});

test('a failing cache is retried with the same entry until it applies; nothing after it runs first', async () => {
  const s = scripted();
  const t = target(s.driver);
  s.fail(3);
  t.apply(purge(1));
  t.apply(purge(2));
  await t.drained();
  assert.deepEqual(s.calls, ['apply 1', 'apply 1', 'apply 1', 'apply 1', 'apply 2']);
  assert.equal(t.appliedSeq, 2);
  s.fail(1, false);
  t.apply(purge(3));
  await t.drained();
  assert.equal(t.appliedSeq, 3);
  assert.equal(t.status().lastError, undefined);
  await t.close();
});

test('dropAll(seq) goes first and supersedes queued entries it covers', async () => {
  const s = scripted();
  s.fail(1);
  const t = target(s.driver);
  t.apply(purge(1));
  t.apply(purge(2));
  t.dropAll(5);
  t.apply(purge(4));
  t.apply(purge(6));
  await t.drained();
  // apply 1 was already under way (it failed once and was put back, then dropped as covered).
  assert.deepEqual(s.calls.slice(-2), ['drop', 'apply 6']);
  assert.equal(t.appliedSeq, 6);
  await t.close();
});

test('a driver with applyBatch gets runs of purges; other steps break the run', async () => {
  const s = scripted({ batch: true });
  const t = target(s.driver);
  s.fail(1);
  for (const seq of [1, 2, 3]) t.apply(purge(seq));
  t.advanceTo(4);
  t.apply(purge(5));
  t.apply(purge(6));
  await t.drained();
  // The first purge ran alone (nothing else was queued yet) and failed; meanwhile the rest queued up.
  assert.deepEqual(s.calls, ['apply 1', 'batch 1,2,3', 'batch 5,6']);
  assert.equal(t.appliedSeq, 6);
  await t.close();
});

test('what the cache executed is handed over once per entry that has a task id; a drop reports the queued entries it covered as drop_all', async () => {
  const s = scripted();
  const gate = Promise.withResolvers<void>();
  const t = new DriverTarget({ driver: { ...s.driver, dropAll: async () => (await gate.promise, { matched: 7 }) }, clock: systemClock, logger: silentLogger, nodeId: 'n', retryMinMs: 1, retryMaxMs: 5 });
  const withTask = (seq: number): DriverCommand => ({ ...purge(seq), taskId: 100 + seq });
  t.apply(withTask(1));
  t.apply(purge(2)); // no task id: executed, but nothing to report under
  await t.drained();
  assert.deepEqual(t.takeReports().map((r) => [r.seq, r.taskId, r.executedAs]), [[1, 101, 'delete']]);
  assert.deepEqual(t.takeReports(), [], 'each entry once');

  t.dropAll(3); // starts at once, and waits on the gate
  t.apply(withTask(4));
  t.dropAll(5); // supersedes the queued entry 4: it is never executed on its own
  gate.resolve();
  await t.drained();
  assert.equal(t.appliedSeq, 5);
  const reports = t.takeReports();
  assert.deepEqual(reports.map(({ seq, taskId, executedAs, matched }) => ({ seq, taskId, executedAs, matched })), [{ seq: 4, taskId: 104, executedAs: 'drop_all', matched: 7 }]);
  assert.match(reports[0]!.note ?? '', /whole cache was emptied/);
  await t.close();
});
