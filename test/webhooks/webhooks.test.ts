// Completion webhooks (issue 10) against a real control plane, a real built-in edge and a receiver on a
// free port: each event, the signature checked by the verifier docs/webhooks.md prints, retries with
// backoff, giving up, the event filter, a hanging receiver that must not slow the API, and PostgreSQL.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, test, type TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ControlPlane } from '../../src/server/control-plane.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { PostgresTaskStore } from '../../src/store/postgres/postgres-task-store.ts';
import type { TaskStore, WebhookDelivery } from '../../src/store/task-store.ts';
import { backoffDelay } from '../../src/webhooks/webhook-dispatcher.ts';
import { assertOk, config, rawCall, TEO } from '../api3/fixtures.ts';
import { until } from '../e2e/helpers.ts';
import { ACME, GLOBEX, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { runNodeAsEdge } from '../helpers/edge-node.ts';
import { freshTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { hang, startReceiver, type Receiver } from './receiver.ts';
import { ConsoleClient } from '../console/console-client.ts';
import { scrape } from '../helpers/prometheus.ts';

const TOKEN = 'node-token-0000000000000000';
const SECRET = 'whsec-0123456789abcdef';
const nginxDriver = { type: 'nginx' as const, url: 'http://127.0.0.1:9', purgeUrl: 'http://127.0.0.1:9', cacheDir: '/nonexistent/edgepurge' };

/** The verifier as docs/webhooks.md prints it (its first js block), so the documented code is what is tested. */
function documentedVerifier(): (raw: Buffer | string, header: string | undefined, secret: string, toleranceSec?: number) => boolean {
  const doc = readFileSync(new URL('../../docs/webhooks.md', import.meta.url), 'utf8');
  const code = /```js\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(code?.includes('function verifyEdgePurgeSignature'), 'docs/webhooks.md prints the verifier');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- running the documented snippet is the point
  return new Function('require', `${code}\nreturn verifyEdgePurgeSignature;`)(createRequire(import.meta.url)) as ReturnType<typeof documentedVerifier>;
}

/**
 * edge-a (built-in, ACME's www, run for real), nginx-a (nginx, ACME's img host: no agent runs and nginx
 * is never fenced, so its tasks time out). The origin is closed: prefetches fail.
 */
function hookConfig(webhooks: ConfigInput['accounts'] extends (infer A)[] | undefined ? A extends { webhooks?: infer W } ? W : never : never, delivery: object = {}): ConfigInput {
  return config((a) => (a.appId === ACME.appId ? { webhooks } : {}), {
    // Long enough that a loaded machine still applies edge-a's purges in time; nginx-a's time out.
    fanout: { leaseMs: 2000, taskTimeoutMs: 5000 },
    webhookDelivery: { timeoutMs: 2000, backoff: { baseMs: 100, maxMs: 400 }, pollMs: 50, ...delivery },
    nodes: [
      { id: 'edge-a', listen: '127.0.0.1:1', token: TOKEN, hosts: [ACME.host] },
      { id: 'nginx-a', token: TOKEN, hosts: [ACME.host2], driver: nginxDriver },
    ],
  });
}

async function purge(s: TestServer, url: string, who: { secretId: string; secretKey: string } = ACME, zoneId: string = ACME.zoneId): Promise<string> {
  const r = assertOk(await rawCall(s, who, { action: 'CreatePurgeTask', version: TEO, body: { ZoneId: zoneId, Type: 'purge_url', Targets: [url] } }));
  return String(r.JobId);
}

async function prefetch(s: TestServer, url: string): Promise<string> {
  const r = assertOk(await rawCall(s, ACME, { action: 'CreatePrefetchTask', version: TEO, body: { ZoneId: ACME.zoneId, Targets: [url] } }));
  return String(r.JobId);
}

const deliveries = (store: TaskStore, jobId: string): Promise<WebhookDelivery[]> => store.webhookDeliveries!({ jobId, limit: 50 });

async function setup(t: TestContext, receiver: Receiver, delivery: object = {}, events?: string[]) {
  const input = hookConfig([{ url: receiver.url, secret: SECRET, ...(events ? { events } : {}) }] as never, delivery);
  const s = await startControlPlane(t, input, { heartbeatMs: 50 });
  await runNodeAsEdge(t, input, 'edge-a', s.url);
  // Before its first ack edge-a holds no lease and counts as fenced: purges would settle without it.
  await until('edge-a acked', async () => ((await s.store.nodeProgress()).some((p) => p.nodeId === 'edge-a') ? true : undefined));
  return s;
}

describe('completion webhooks (SQLite)', () => {
  test('job.succeeded, job.failed and job.timeout each arrive once, signed; the documented verifier accepts them and refuses forgeries', async (t) => {
    const receiver = await startReceiver(t);
    const s = await setup(t, receiver);
    const ok = await purge(s, `http://${ACME.host}/ok.js`);
    const failed = await prefetch(s, `http://${ACME.host}/gone.js`);
    const timedOut = await purge(s, `http://${ACME.host2}/slow.js`);
    await until('three deliveries', () => receiver.received.length >= 3 || undefined, 15_000);
    const byJob = new Map(receiver.received.map((r) => [r.json.job.JobId, r]));
    assert.equal(byJob.get(ok)?.json.event, 'job.succeeded');
    assert.equal(byJob.get(failed)?.json.event, 'job.failed');
    assert.equal(byJob.get(timedOut)?.json.event, 'job.timeout');
    const verify = documentedVerifier();
    for (const r of receiver.received) {
      assert.equal(r.path, '/hook');
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal(r.headers['edgepurge-event'], r.json.event);
      assert.equal(r.headers['edgepurge-event-id'], r.json.id);
      assert.match(r.json.id, /^evt_[0-9a-f]{24}$/);
      const sig = r.headers['edgepurge-signature'] as string;
      assert.match(sig, /^t=\d+,v1=[0-9a-f]{64}$/);
      assert.ok(verify(r.raw, sig, SECRET), 'the documented verifier accepts a real delivery');
      assert.equal(verify(r.raw, sig, 'another-secret-0000'), false, 'wrong secret');
      assert.equal(verify(Buffer.concat([r.raw, Buffer.from(' ')]), sig, SECRET), false, 'a changed body');
      const t0 = Number(/t=(\d+)/.exec(sig)![1]);
      assert.equal(verify(r.raw, sig.replace(/t=\d+/, `t=${t0 + 1}`), SECRET), false, 'a changed timestamp');
      assert.equal(verify(r.raw, sig, SECRET, -1), false, 'an old timestamp is refused');
      assert.equal(verify(r.raw, undefined, SECRET), false, 'no header');
    }
    // The body: the job, its tasks with per-node progress, and a per-node summary.
    const success = byJob.get(ok)!.json;
    assert.equal(success.appId, ACME.appId);
    assert.equal(success.tasks[0]!.Status, 'success');
    assert.deepEqual(success.summary.tasks, { success: 1 });
    assert.equal(success.summary.nodes.find((n) => n.NodeId === 'edge-a')?.applied, 1);
    assert.deepEqual(byJob.get(timedOut)!.json.summary.tasks, { timeout: 1 });
    // The delivery log says delivered, one attempt each; nothing pending.
    for (const jobId of [ok, failed, timedOut]) {
      const log = await until(`${jobId} recorded`, async () => {
        const l = await deliveries(s.store, jobId);
        return l[0]?.status === 'delivered' ? l : undefined;
      });
      assert.deepEqual(log.map((d) => [d.status, d.attempts, d.lastStatus, d.url]), [['delivered', 1, 204, receiver.url]]);
    }
    assert.equal(await s.store.webhookOutboxDepth(), 0);
    // Only the subscribed account's jobs raise events.
    const other = await purge(s, `http://${GLOBEX.host}/x.js`, GLOBEX, GLOBEX.zoneId);
    await until('globex job settles', async () => (await s.store.jobTasks(GLOBEX.appId, other)).every((x) => x.status !== 'processing') || undefined);
    assert.deepEqual(await s.store.webhookDeliveries({ appId: GLOBEX.appId, limit: 10 }), []);
    assert.equal(receiver.received.length, 3, 'exactly one delivery per event');
  });

  test('answers of 500 are retried with backoff, then delivered; the event id stays the same', async (t) => {
    const receiver = await startReceiver(t);
    let n = 0;
    receiver.answer = (_r, res) => res.writeHead(++n <= 2 ? 500 : 200).end('nope');
    const s = await setup(t, receiver);
    const jobId = await purge(s, `http://${ACME.host}/retry.js`);
    const log = await until('delivered after two 500s', async () => {
      const l = await deliveries(s.store, jobId);
      return l[0]?.status === 'delivered' ? l : undefined;
    }, 15_000);
    assert.equal(log[0]!.attempts, 3);
    assert.equal(receiver.received.length, 3);
    assert.equal(new Set(receiver.received.map((r) => r.json.id)).size, 1, 'one event id across retries');
    // Backoff: base 100 ms then 200 ms, each at least half of it (equal jitter).
    const gaps = receiver.received.slice(1).map((r, i) => r.at - receiver.received[i]!.at);
    assert.ok(gaps[0]! >= 50, `first retry after ${gaps[0]} ms`);
    assert.ok(gaps[1]! >= 100, `second retry after ${gaps[1]} ms`);
  });

  test('a receiver that always fails: the delivery is marked failed after maxAttempts; a refused connection counts too', async (t) => {
    const receiver = await startReceiver(t);
    receiver.answer = (_r, res) => res.writeHead(503).end();
    const s = await setup(t, receiver, { maxAttempts: 3 });
    const jobId = await purge(s, `http://${ACME.host}/never.js`);
    const log = await until('given up', async () => {
      const l = await deliveries(s.store, jobId);
      return l[0]?.status === 'failed' ? l : undefined;
    }, 15_000);
    assert.deepEqual([log[0]!.attempts, log[0]!.lastStatus, log[0]!.lastError], [3, 503, 'HTTP 503']);
    assert.equal(receiver.received.length, 3);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(receiver.received.length, 3, 'no attempt after giving up');

    // A dead receiver (connection refused), bounded by time rather than attempts.
    await receiver.close();
    const s2 = await setup(t, receiver, { maxAttempts: 1000, retryForMs: 700 });
    const job2 = await purge(s2, `http://${ACME.host}/dead.js`);
    const log2 = await until('given up on a dead receiver', async () => {
      const l = await deliveries(s2.store, job2);
      return l[0]?.status === 'failed' ? l : undefined;
    }, 15_000);
    assert.ok(log2[0]!.attempts >= 2, `${log2[0]!.attempts} attempts`);
    assert.equal(log2[0]!.lastStatus, null);
    assert.match(log2[0]!.lastError ?? '', /ECONNREFUSED/);
    assert.ok(log2[0]!.lastAttemptAt! - log2[0]!.createdAt <= 700 + 400, 'no attempt scheduled past retryForMs');
  });

  test('event filter: a webhook subscribed to job.timeout only gets timeouts', async (t) => {
    const receiver = await startReceiver(t);
    const s = await setup(t, receiver, {}, ['job.timeout']);
    const ok = await purge(s, `http://${ACME.host}/filtered.js`);
    const slow = await purge(s, `http://${ACME.host2}/filtered.js`);
    await until('the timeout delivered', () => receiver.received.length >= 1 || undefined, 15_000);
    await until('the success settled', async () => (await s.store.jobTasks(ACME.appId, ok))[0]?.status === 'success' || undefined);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(receiver.received.map((r) => [r.json.job.JobId, r.json.event]), [[slow, 'job.timeout']]);
    assert.deepEqual(await deliveries(s.store, ok), []);
  });

  test('a job settled at creation (no edge node serves its host) is delivered too, once', async (t) => {
    const receiver = await startReceiver(t);
    const s = await setup(t, receiver);
    const jobId = await purge(s, `http://${ACME.host3}/nobody.js`, ACME, ACME.zoneId2);
    assert.deepEqual((await s.store.jobTasks(ACME.appId, jobId)).map((x) => x.status), ['success'], 'settled when created');
    // Committed with the job: the outbox row is there as soon as CreatePurgeTask answered.
    assert.equal((await deliveries(s.store, jobId)).length, 1);
    await until('the delivery', () => receiver.received.length >= 1 || undefined, 15_000);
    const r = receiver.received[0]!;
    assert.deepEqual([r.json.job.JobId, r.json.event, r.json.summary.tasks], [jobId, 'job.succeeded', { success: 1 }]);
    assert.ok(documentedVerifier()(r.raw, r.headers['edgepurge-signature'] as string, SECRET));
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(receiver.received.length, 1, 'exactly one delivery');
  });

  test('a receiver that never answers does not slow CreatePurgeTask; its deliveries wait in the outbox', async (t) => {
    const receiver = await startReceiver(t);
    receiver.answer = hang;
    const s = await setup(t, receiver, { concurrency: 2, timeoutMs: 60_000 });
    const jobs: string[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      jobs.push(await purge(s, `http://${ACME.host}/hang-${i}.js`));
      // A functional bound, not a benchmark: a call stuck behind a delivery would take the 60 s timeout.
      assert.ok(performance.now() - t0 < 5_000, `CreatePurgeTask ${i} answered in ${Math.round(performance.now() - t0)} ms`);
    }
    await until('all settled and enqueued', async () => ((await s.store.webhookOutboxDepth()) >= 20 ? true : undefined), 15_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(receiver.received.length, 2, 'at most `concurrency` deliveries in flight');
    // Closing the control plane is not held by the hanging deliveries; the rows stay pending.
    const t0 = performance.now();
    await s.close();
    assert.ok(performance.now() - t0 < 10_000);
  });

  test('the delivery log: admin API scoped to the account, the console job page, and the metrics', async (t) => {
    const receiver = await startReceiver(t);
    let n = 0;
    receiver.answer = (_r, res) => res.writeHead(++n === 1 ? 500 : 200).end();
    const s = await setup(t, receiver);
    const jobId = await purge(s, `http://${ACME.host}/<log>.js`);
    await until('delivered', async () => ((await deliveries(s.store, jobId))[0]?.status === 'delivered' ? true : undefined), 15_000);
    const basic = (who: { secretId: string; secretKey: string }) => ({ Authorization: `Basic ${Buffer.from(`${who.secretId}:${who.secretKey}`).toString('base64')}` });
    const get = (q: string, who: { secretId: string; secretKey: string } = ACME) => fetch(`${s.url}/admin/v1/webhooks/deliveries${q}`, { headers: basic(who) });
    const res = await get(`?job=${jobId}`);
    assert.equal(res.status, 200);
    const { Deliveries } = (await res.json()) as { Deliveries: Array<Record<string, unknown>> };
    assert.equal(Deliveries.length, 1);
    assert.deepEqual(
      [Deliveries[0]!.JobId, Deliveries[0]!.Url, Deliveries[0]!.Event, Deliveries[0]!.Status, Deliveries[0]!.Attempts, Deliveries[0]!.LastStatus, Deliveries[0]!.NextAttemptTime],
      [jobId, receiver.url, 'job.succeeded', 'delivered', 2, 200, null],
    );
    assert.equal(Deliveries[0]!.EventId, receiver.received[0]!.json.id);
    assert.equal(((await (await get('')).json()) as { Deliveries: unknown[] }).Deliveries.length, 1, 'without job: the account\'s log');
    // Tenants are walls: another account sees none of it.
    assert.deepEqual(await (await get(`?job=${jobId}`, GLOBEX)).json(), { Deliveries: [] });
    assert.equal((await fetch(`${s.url}/admin/v1/webhooks/deliveries`)).status, 401);
    for (const bad of ['?limit=0', '?limit=1001', '?limit=x', '?job=NOT-A-JOB']) {
      const r = await get(bad);
      assert.equal(r.status, 400, bad);
      assert.match(((await r.json()) as { error: string }).error, /`(job|limit)`/);
    }

    // The console's job page lists the delivery, escaped.
    const web = new ConsoleClient(s);
    assert.equal((await web.signIn(ACME)).status, 303);
    const page = await (await web.get(`/console/jobs/${jobId}`)).text();
    assert.match(page, /<h2 id="webhooks-h">Webhook deliveries<\/h2>/);
    assert.ok(page.includes(receiver.url), 'the endpoint');
    assert.match(page, /data-delivery="delivered"/);
    assert.ok(page.includes(Deliveries[0]!.EventId as string));

    // Metrics: one retry, one delivered, nothing pending.
    const m = await scrape(s.url);
    assert.equal(m.value('edgepurge_webhook_deliveries_total', { result: 'retry' }), 1);
    assert.equal(m.value('edgepurge_webhook_deliveries_total', { result: 'delivered' }), 1);
    assert.equal(m.value('edgepurge_webhook_deliveries_total', { result: 'failed' }), 0);
    assert.equal(m.value('edgepurge_webhook_outbox_depth'), 0);
  });

  test('backoff doubles from base up to max, with jitter between half and all of it', () => {
    const b = { baseMs: 1000, maxMs: 8000 };
    assert.deepEqual([1, 2, 3, 4, 5, 9].map((n) => backoffDelay(n, b, 1)), [1000, 2000, 4000, 8000, 8000, 8000]);
    assert.deepEqual([1, 2, 3].map((n) => backoffDelay(n, b, 0)), [500, 1000, 2000]);
  });
});

describe('webhooks configuration', () => {
  test('every problem in one message: secret and secretFile, duplicate URL, unknown event, bad URL', () => {
    const input = hookConfig([
      { url: 'http://127.0.0.1:9/a', secret: SECRET, secretFile: '/x' },
      { url: 'http://127.0.0.1:9/a', secret: SECRET },
      { url: 'ftp://127.0.0.1/b', secret: SECRET },
      { url: 'http://127.0.0.1:9/c', secret: SECRET, events: ['job.done'] },
      { url: 'http://127.0.0.1:9/d', secretFile: '/nonexistent/secret' },
      { url: 'http://127.0.0.1:9/e', secret: 'short' },
    ] as never);
    assert.throws(() => parseConfig(input), (e: Error) => {
      for (const m of [/webhooks\.0: needs exactly one of "secret" and "secretFile"/, /webhooks\.1\.url: duplicate webhook url/, /webhooks\.2\.url/, /webhooks\.3\.events\.0/, /webhooks\.4\.secretFile: cannot read it/, /webhooks\.5\.secret/]) {
        assert.match(e.message, m);
      }
      return true;
    });
    const ok = parseConfig(hookConfig([{ url: 'https://hooks.example.com/x', secret: SECRET }] as never));
    assert.deepEqual(ok.accounts[0]!.webhooks, [{ url: 'https://hooks.example.com/x', secret: SECRET, events: ['job.succeeded', 'job.failed', 'job.timeout'] }]);
    assert.equal(ok.webhookDelivery.concurrency, 8);
  });
});

const pgSkip = postgresSkip('the PostgreSQL webhook tests');
describe('completion webhooks (PostgreSQL)', { skip: pgSkip }, () => {
  test('a settled job is delivered from the PostgreSQL outbox, once', async (t) => {
    const url = await freshTestDatabase();
    const receiver = await startReceiver(t);
    const input = hookConfig([{ url: receiver.url, secret: SECRET }] as never);
    const cfg = parseConfig({ ...input, store: { driver: 'postgres', url } });
    const store = new PostgresTaskStore({ url, pool: { max: 4 } });
    await store.start();
    t.after(() => store.close());
    const cp = new ControlPlane({ config: cfg, store, clock: systemClock, logger: silentLogger, heartbeatMs: 50 });
    const { port } = await cp.start('127.0.0.1:0');
    t.after(() => cp.close());
    const s = { url: `http://127.0.0.1:${port}`, endpoint: `127.0.0.1:${port}` } as TestServer;
    await runNodeAsEdge(t, input, 'edge-a', s.url);
    const ok = await purge(s, `http://${ACME.host}/pg.js`);
    const slow = await purge(s, `http://${ACME.host2}/pg.js`);
    const atOnce = await purge(s, `http://${ACME.host3}/pg.js`, ACME, ACME.zoneId2); // settled at creation
    await until('three deliveries', () => receiver.received.length >= 3 || undefined, 15_000);
    assert.deepEqual(
      new Map(receiver.received.map((r) => [r.json.job.JobId, r.json.event])),
      new Map([[ok, 'job.succeeded'], [slow, 'job.timeout'], [atOnce, 'job.succeeded']]),
    );
    assert.ok(documentedVerifier()(receiver.received[0]!.raw, receiver.received[0]!.headers['edgepurge-signature'] as string, SECRET));
    await until('recorded', async () => ((await store.webhookOutboxDepth()) === 0 ? true : undefined));
    assert.equal(receiver.received.length, 3);
  });
});
