// GetCdnRefreshLog and GetPushLogs semantics on a manual clock (TENCENT-API §1.7, §1.8, seed 000):
// datetimes in the configured zone, date forms and bounds, taskId with dates, the 30 days kept,
// one record per job and host, derived status, paging.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.ts';
import type { TaskStatus } from '../../src/purge/types.ts';
import { ManualClock } from '../../src/shared/clock.ts';
import { ACME, baseConfig, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { assertRefused, flat, raw, type V2Body } from './helpers.ts';

const DAY = 86_400_000;
/** 2026-01-10 08:00:00 at +08:00. */
const T0 = Date.UTC(2026, 0, 10, 0, 0, 0);
const url = (path: string, host: string = ACME.host) => `https://${host}/${path}`;

interface Harness {
  readonly server: TestServer;
  readonly clock: ManualClock;
  call(fields: Record<string, string>): Promise<V2Body>;
  ok(fields: Record<string, string>): Promise<Record<string, any>>;
}

async function harness(t: Parameters<typeof startControlPlane>[0], config: ConfigInput = baseConfig()): Promise<Harness> {
  const clock = new ManualClock(T0);
  const server = await startControlPlane(t, config, { clock });
  const call = (fields: Record<string, string>) => raw(server, ACME, fields, { nowMs: clock.now() });
  return {
    server,
    clock,
    call,
    ok: async (fields) => {
      const body = await call(fields);
      assert.equal(body.code, 0, JSON.stringify(body));
      return body.data ?? {};
    },
  };
}

/** An edge node serving every host: tasks stay `processing` until the test sets their status. */
function withEdgeNode(): ConfigInput {
  return { ...baseConfig(), nodes: [{ id: 'edge-1', listen: '127.0.0.1:18081', token: 'edge-token-0000000000' }] };
}

describe('GetCdnRefreshLog', () => {
  test('datetimes and date bounds are in the configured zone (default +08:00)', async (t) => {
    const h = await harness(t);
    const { task_id } = await h.ok({ Action: 'RefreshCdnUrl', ...flat('urls', [url('a.js')]) });
    const log = await h.ok({ Action: 'GetCdnRefreshLog', taskId: task_id });
    assert.equal(log.logs[0].datetime, '2026-01-10 08:00:00');

    const range = async (startDate: string, endDate: string) => (await h.ok({ Action: 'GetCdnRefreshLog', startDate, endDate })).total;
    assert.equal(await range('2026-01-10 08:00:00', '2026-01-10 08:00:00'), 1, 'both bounds inclusive, to the second');
    assert.equal(await range('2026-01-10 00:00:00', '2026-01-10 07:59:59'), 0);
    assert.equal(await range('2026-01-10 08:00:01', '2026-01-10 09:00:00'), 0);
  });

  test('another zone shifts both the answers and the bounds', async (t) => {
    const config = baseConfig();
    config.server = { ...config.server, timezone: '-05:00' };
    const h = await harness(t, config);
    const { task_id } = await h.ok({ Action: 'RefreshCdnDir', ...flat('dirs', [url('d/')]) });
    assert.equal((await h.ok({ Action: 'GetCdnRefreshLog', taskId: task_id })).logs[0].datetime, '2026-01-09 19:00:00');
    assert.equal((await h.ok({ Action: 'GetCdnRefreshLog', startDate: '2026-01-09', endDate: '2026-01-09' })).total, 1);
    assert.equal((await h.ok({ Action: 'GetCdnRefreshLog', startDate: '2026-01-10', endDate: '2026-01-10' })).total, 0);
  });

  test('an end bound covers its whole second', async (t) => {
    const h = await harness(t);
    h.clock.set(T0 + 999);
    await h.ok({ Action: 'RefreshCdnUrl', ...flat('urls', [url('ms.js')]) });
    assert.equal((await h.ok({ Action: 'GetCdnRefreshLog', startDate: '2026-01-10 08:00:00', endDate: '2026-01-10 08:00:00' })).total, 1);
  });

  test('day-only dates (Tencent\'s own tools send 2016-08-15; the oldest doc 20160815) cover whole days', async (t) => {
    const h = await harness(t);
    await h.ok({ Action: 'RefreshCdnUrl', ...flat('urls', [url('day.js')]) });
    h.clock.set(T0 + 16 * 3_600_000 - 1); // 2026-01-10 23:59:59.999 at +08:00
    await h.ok({ Action: 'RefreshCdnUrl', ...flat('urls', [url('late.js')]) });
    const total = async (startDate: string, endDate: string) => (await h.ok({ Action: 'GetCdnRefreshLog', startDate, endDate })).total;
    assert.equal(await total('2026-01-10', '2026-01-10'), 2);
    assert.equal(await total('20260110', '20260110'), 2);
    assert.equal(await total('2026-01-09', '2026-01-09'), 0);
    assert.equal(await total('2026-01-11', '2026-01-11'), 0);
  });

  test('one date alone is an open range; neither date nor taskId is refused', async (t) => {
    const h = await harness(t);
    await h.ok({ Action: 'RefreshCdnUrl', ...flat('urls', [url('o.js')]) });
    assert.equal((await h.ok({ Action: 'GetCdnRefreshLog', startDate: '2026-01-10 00:00:00' })).total, 1);
    assert.equal((await h.ok({ Action: 'GetCdnRefreshLog', endDate: '2026-01-10 08:00:00' })).total, 1);
    assert.equal((await h.ok({ Action: 'GetCdnRefreshLog', endDate: '2026-01-10 07:00:00' })).total, 0);
    assertRefused(await h.call({ Action: 'GetCdnRefreshLog' }), 4000, 9003);
  });

  test('taskId with dates: outside them is "The date is invalid" (9150), inside them the record', async (t) => {
    const h = await harness(t);
    const { task_id } = await h.ok({ Action: 'RefreshCdnUrl', ...flat('urls', [url('in.js')]) });
    const outside = await h.call({ Action: 'GetCdnRefreshLog', taskId: task_id, startDate: '2026-01-09 00:00:00', endDate: '2026-01-09 23:59:59' });
    assertRefused(outside, 4000, 9150, /The date is invalid/);
    const inside = await h.ok({ Action: 'GetCdnRefreshLog', taskId: task_id, startDate: '2026-01-10 00:00:00', endDate: '2026-01-10 23:59:59' });
    assert.equal(inside.total, 1);
    // An unknown taskId is no record, with or without dates (§1.7 documents no error for it).
    assert.deepEqual(await h.ok({ Action: 'GetCdnRefreshLog', taskId: 'nosuchtask00' }), { logs: [], total: 0 });
    assert.deepEqual(await h.ok({ Action: 'GetCdnRefreshLog', taskId: 'nosuchtask00', startDate: '2026-01-09 00:00:00', endDate: '2026-01-09 23:59:59' }), { logs: [], total: 0 });
  });

  test('30 days of history: older records are gone, an older startDate is clamped', async (t) => {
    const h = await harness(t);
    const old = await h.ok({ Action: 'RefreshCdnUrl', ...flat('urls', [url('old.js')]) });
    h.clock.advance(2 * DAY);
    const recent = await h.ok({ Action: 'RefreshCdnUrl', ...flat('urls', [url('recent.js')]) });
    h.clock.advance(29 * DAY); // old is 31 days old, recent 29
    const all = await h.ok({ Action: 'GetCdnRefreshLog', startDate: '2025-12-01 00:00:00', endDate: '2026-03-01 00:00:00' });
    assert.deepEqual(all.logs.map((l: { url_list: string[] }) => l.url_list[0]), [url('recent.js')]);
    assert.equal(all.total, 1);
    assert.deepEqual(await h.ok({ Action: 'GetCdnRefreshLog', taskId: old.task_id }), { logs: [], total: 0 });
    assert.equal((await h.ok({ Action: 'GetCdnRefreshLog', taskId: recent.task_id })).total, 1);
  });

  test('one record per job and host; host and url filters; id is the task_id for the first host, never a row id', async (t) => {
    const h = await harness(t);
    const urls = [url('a.js'), url('b.js', ACME.host2), url('c.js')];
    const { task_id, count } = await h.ok({ Action: 'RefreshCdnUrl', ...flat('urls', urls) });
    assert.equal(count, 3);
    const tasks = await h.server.store.jobTasks(ACME.appId, task_id);
    const log = await h.ok({ Action: 'GetCdnRefreshLog', taskId: task_id });
    assert.equal(log.total, 2);
    const byHost = Object.fromEntries(log.logs.map((l: { host: string; id: number; url_list: string[] }) => [l.host, [l.id, l.url_list]]));
    assert.deepEqual(Object.keys(byHost).sort(), [ACME.host, ACME.host2].sort());
    // The first host's record carries the task_id an SDK user already holds (as a legacy Int); the
    // other host's record gets a number of its own. Neither is a row id: those would tell one tenant
    // how many purges every tenant submits.
    assert.deepEqual(byHost[ACME.host], [Number(task_id), [urls[0], urls[2]]]);
    const [otherId, otherUrls] = byHost[ACME.host2] as [number, string[]];
    assert.deepEqual(otherUrls, [urls[1]]);
    assert.ok(Number.isSafeInteger(otherId) && otherId > 0 && otherId !== Number(task_id));
    for (const id of [Number(task_id), otherId]) assert.ok(!tasks.some((x) => x.id === id), `record id ${id} is not a task row id`);
    const again = await h.ok({ Action: 'GetCdnRefreshLog', taskId: task_id });
    assert.deepEqual(again.logs.map((l: { id: number }) => l.id), log.logs.map((l: { id: number }) => l.id), 'ids are stable');

    const byHostFilter = await h.ok({ Action: 'GetCdnRefreshLog', taskId: task_id, host: ACME.host2.toUpperCase() });
    assert.deepEqual(byHostFilter.logs.map((l: { host: string }) => l.host), [ACME.host2]);
    const byUrl = await h.ok({ Action: 'GetCdnRefreshLog', startDate: '2026-01-10 00:00:00', endDate: '2026-01-10 23:59:59', url: urls[2]! });
    assert.equal(byUrl.total, 1);
    assert.deepEqual(byUrl.logs[0].url_list, [urls[0], urls[2]], 'the whole record that holds the URL');
    const none = await h.ok({ Action: 'GetCdnRefreshLog', taskId: task_id, url: url('zzz.js') });
    assert.deepEqual(none, { logs: [], total: 0 });
  });

  test('records are newest first; offset and limit page over records, total counts them all', async (t) => {
    const h = await harness(t);
    for (let i = 0; i < 5; i++) {
      await h.ok({ Action: 'RefreshCdnUrl', ...flat('urls', [url(`p${i}.js`)]) });
      h.clock.advance(1000);
    }
    const page = await h.ok({ Action: 'GetCdnRefreshLog', startDate: '2026-01-10 00:00:00', endDate: '2026-01-10 23:59:59', offset: '1', limit: '2' });
    assert.equal(page.total, 5);
    assert.deepEqual(page.logs.map((l: { url_list: string[] }) => l.url_list[0]), [url('p3.js'), url('p2.js')]);
    const all = await h.ok({ Action: 'GetCdnRefreshLog', startDate: '2026-01-10 00:00:00', endDate: '2026-01-10 23:59:59' });
    assert.deepEqual(all.logs.map((l: { datetime: string }) => l.datetime), ['08:00:04', '08:00:03', '08:00:02', '08:00:01', '08:00:00'].map((s) => `2026-01-10 ${s}`));
  });

  test('status is derived from the record\'s tasks: 1 all done, 0 any in progress, -1 failed', async (t) => {
    const h = await harness(t, withEdgeNode());
    // Final statuses never change, so each outcome gets a job of its own.
    const job = async (name: string) => {
      const { task_id } = await h.ok({ Action: 'RefreshCdnUrl', ...flat('urls', [url(`${name}1.js`), url(`${name}2.js`)]) });
      const [a, b] = await h.server.store.jobTasks(ACME.appId, task_id);
      return {
        status: async () => (await h.ok({ Action: 'GetCdnRefreshLog', taskId: task_id })).logs[0].status,
        set: (x: TaskStatus, y: TaskStatus) => h.server.store.updateTasks([{ taskId: a!.id, status: x }, { taskId: b!.id, status: y }], h.clock.now()),
      };
    };
    const one = await job('s');
    assert.equal(await one.status(), 0);
    await one.set('success', 'processing');
    assert.equal(await one.status(), 0);
    await one.set('success', 'failed');
    assert.equal(await one.status(), -1);
    const two = await job('t');
    await two.set('timeout', 'success');
    assert.equal(await two.status(), -1);
    const three = await job('u');
    await three.set('success', 'success');
    assert.equal(await three.status(), 1);
  });

  test('prefetches are not refreshes', async (t) => {
    const h = await harness(t);
    const push = await h.ok({ Action: 'CdnUrlPusher', ...flat('urls', [url('pf.js')]) });
    assert.deepEqual(await h.ok({ Action: 'GetCdnRefreshLog', taskId: push.task_id }), { logs: [], total: 0 });
    assert.equal((await h.ok({ Action: 'GetCdnRefreshLog', startDate: '2026-01-10', endDate: '2026-01-10' })).total, 0);
  });
});

describe('GetPushLogs', () => {
  test('one log per URL with status, progress and result; status, hosts and keyword filters; paging', async (t) => {
    const h = await harness(t, withEdgeNode());
    const urls = [url('v/One.mp4'), url('v/two.mp4', ACME.host2), url('v/three.mp4')];
    const { task_id, count } = await h.ok({ Action: 'CdnUrlPusher', ...flat('urls', urls) });
    assert.equal(count, 3);
    const [one, two] = await h.server.store.jobTasks(ACME.appId, task_id);
    await h.server.store.updateTasks(
      [
        { taskId: one!.id, status: 'success' },
        { taskId: two!.id, status: 'invalid', failType: 'origin', failMessage: 'origin answered 404' },
      ],
      h.clock.now(),
    );

    const all = await h.ok({ Action: 'GetPushLogs', taskId: task_id });
    assert.equal(all.total, 3);
    const byUrl = Object.fromEntries(all.logs.map((l: Record<string, unknown>) => [l.url, [l.status, l.progress, l.result, l.host, l.datetime, l.task_id]]));
    assert.deepEqual(byUrl, {
      [urls[0]!]: ['done', 100, 'success', ACME.host, '2026-01-10 08:00:00', task_id],
      [urls[1]!]: ['fail', 100, 'origin answered 404', ACME.host2, '2026-01-10 08:00:00', task_id],
      [urls[2]!]: ['process', 0, '', ACME.host, '2026-01-10 08:00:00', task_id],
    });

    const pick = async (fields: Record<string, string>) =>
      ((await h.ok({ Action: 'GetPushLogs', ...fields })).logs as Array<{ url: string }>).map((l) => l.url).sort();
    assert.deepEqual(await pick(flat('status', ['init'])), [urls[2]]);
    assert.deepEqual(await pick(flat('status', ['done', 'fail'])), [urls[0], urls[1]].sort());
    assert.deepEqual(await pick(flat('hosts', [ACME.host2])), [urls[1]]);
    assert.deepEqual(await pick({ keyword: 'ONE' }), [urls[0]]);
    assert.deepEqual(await pick({ url: urls[2]! }), [urls[2]]);
    const page = await h.ok({ Action: 'GetPushLogs', offset: '2', limit: '2' });
    assert.equal(page.total, 3);
    assert.equal(page.logs.length, 1);
  });

  test('taskId: unknown or older than 30 days is 21001; outside the dates is 9150', async (t) => {
    const h = await harness(t);
    const { task_id } = await h.ok({ Action: 'CdnUrlPusher', ...flat('urls', [url('p.js')]) });
    assertRefused(await h.call({ Action: 'GetPushLogs', taskId: 'nosuchtask00' }), 5000, 21001);
    assertRefused(await h.call({ Action: 'GetPushLogs', taskId: task_id, startDate: '2026-01-11 00:00:00', endDate: '2026-01-12 00:00:00' }), 4000, 9150);
    assert.equal((await h.ok({ Action: 'GetPushLogs', taskId: task_id, startDate: '2026-01-10', endDate: '2026-01-10' })).total, 1);
    h.clock.advance(31 * DAY);
    assertRefused(await h.call({ Action: 'GetPushLogs', taskId: task_id }), 5000, 21001);
    assert.equal((await h.ok({ Action: 'GetPushLogs' })).total, 0, 'the default range is the 30 days kept');
  });
});
