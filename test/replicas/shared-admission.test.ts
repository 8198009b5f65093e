// Replicas on one PostgreSQL share what admits a request (issue 9): a legacy v2 request replayed to another
// replica is refused, the per-account rate limit holds across replicas, and only the leader ends tasks on
// assumptions (fenced nodes, deadlines) while the others settle only what every node applied.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/shared/clock.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ACME, baseConfig, type TestServer } from '../helpers/control-plane.ts';
import { freshTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { until } from '../e2e/helpers.ts';
import { teoClient } from '../helpers/sdk.ts';
import { assertRefused, flat, signV2 } from '../v2/helpers.ts';
import { sendVia, startReplica, type Replica } from './helpers.ts';
import { ConsoleClient, pageError } from '../console/console-client.ts';

const skip = postgresSkip('the replica admission tests');
const url = skip ? '' : await freshTestDatabase();
let schemas = 0;
const freshSchema = () => `adm${++schemas}_${process.pid}`;
const WIDE = { startDate: '2000-01-01 00:00:00', endDate: '2099-12-31 23:59:59' };

function rateLimited(rateLimit: { perSecond: number; burst: number }): ConfigInput {
  const base = baseConfig();
  return { ...base, accounts: base.accounts!.map((a) => (a.appId === ACME.appId ? { ...a, rateLimit } : a)) };
}

/** signV2 needs only the address the client signs for (the load balancer's). */
const lb = (r: Replica) => ({ endpoint: r.endpoint }) as unknown as TestServer;

describe('replicas share admission', { skip }, () => {
  it('a legacy v2 request replayed to a second replica is refused (AuthFailure.ReplayAttack, 4500), and the job exists once', async (t) => {
    const schema = freshSchema();
    const [a, b] = [await startReplica(t, url, schema, baseConfig()), await startReplica(t, url, schema, baseConfig())];
    const signed = signV2(lb(a), ACME, { Action: 'RefreshCdnUrl', ...flat('urls', [`https://${ACME.host}/replayed.js`]) });
    assert.equal((await sendVia(a.port, a.endpoint, signed)).code, 0);
    assertRefused(await sendVia(b.port, a.endpoint, signed), 4500);
    assertRefused(await sendVia(a.port, a.endpoint, signed), 4500);
    const { tasks } = await b.store.listTasks({ appId: ACME.appId, offset: 0, limit: 10 });
    assert.equal(tasks.filter((x) => x.target.endsWith('/replayed.js')).length, 1);
  });

  it('ten copies sent at once to two replicas create one job', async (t) => {
    const schema = freshSchema();
    const [a, b] = [await startReplica(t, url, schema, baseConfig()), await startReplica(t, url, schema, baseConfig())];
    const signed = signV2(lb(a), ACME, { Action: 'RefreshCdnUrl', ...flat('urls', [`https://${ACME.host}/raced.js`]) });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => sendVia((i % 2 ? b : a).port, a.endpoint, signed)));
    assert.deepEqual(answers.map((x) => x.code).sort(), [0, ...Array(9).fill(4500)]);
  });

  it('the rate limit holds across replicas: burst 6 admits 6 calls in all, whichever replica takes them', async (t) => {
    const schema = freshSchema();
    const clock = new ManualClock(Date.now());
    const config = rateLimited({ perSecond: 0.001, burst: 6 });
    const replicas = [await startReplica(t, url, schema, config, { clock }), await startReplica(t, url, schema, config, { clock }), await startReplica(t, url, schema, config, { clock })];
    const fields = { Action: 'GetCdnRefreshLog', ...WIDE };
    const answers = await Promise.all(
      Array.from({ length: 15 }, (_, i) => {
        const r = replicas[i % 3]!;
        return sendVia(r.port, r.endpoint, signV2(lb(r), ACME, fields, { nowMs: clock.now() }));
      }),
    );
    assert.equal(answers.filter((x) => x.code === 0).length, 6, JSON.stringify(answers.map((x) => x.code)));
    for (const x of answers.filter((y) => y.code !== 0)) assertRefused(x, 4400);
  });

  it("the web console's rate limit holds across replicas too", async (t) => {
    const schema = freshSchema();
    const config = rateLimited({ perSecond: 0.001, burst: 3 });
    const replicas = [await startReplica(t, url, schema, config), await startReplica(t, url, schema, config)];
    const clients = replicas.map((r) => new ConsoleClient(r as unknown as TestServer));
    for (const c of clients) assert.equal((await c.signIn(ACME)).status, 303);
    const answers: Response[] = [];
    for (let i = 0; i < 6; i++) answers.push(await clients[i % 2]!.submit({ type: 'purge_url', zone: ACME.zoneId, targets: `https://${ACME.host}/c${i}.js` }));
    assert.equal(answers.filter((r) => r.status === 303).length, 3, answers.map((r) => r.status).join(','));
    for (const r of answers.filter((x) => x.status !== 303)) assert.equal(pageError(await r.text())?.code, 'RequestLimitExceeded');
  });

  it('only the leader settles a task on an assumption (a silent node counted fenced)', async (t) => {
    const schema = freshSchema();
    const config: ConfigInput = { ...baseConfig(), nodes: [{ id: 'edge-x', listen: '127.0.0.1:1', token: 'edge-x-token-0123456789' }], fanout: { leaseMs: 1000, taskTimeoutMs: 60_000 } };
    const a = await startReplica(t, url, schema, config, { heartbeatMs: 100 });
    await until('a leads', () => a.controlPlane.duties.leader);
    const b = await startReplica(t, url, schema, config, { heartbeatMs: 100 });
    assert.equal(b.controlPlane.duties.leader, false);
    assert.equal(b.controlPlane.hub.leading, false);
    const leaderGauge = async (r: Replica) => /^edgepurge_replica_leader (\d)$/m.exec(await (await fetch(`${r.url}/metrics`)).text())?.[1];
    assert.deepEqual([await leaderGauge(a), await leaderGauge(b)], ['1', '0'], 'edgepurge_replica_leader tells which replica leads');
    // Leadership away from everyone: stop a's duties without handing them over (b keeps campaigning, but a's
    // session still holds the lock while a runs).
    a.controlPlane.hub.lead(false);
    const sdk = teoClient(b.endpoint, ACME.secretId, ACME.secretKey);
    const { JobId } = await sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`https://${ACME.host}/late.js`] });
    await new Promise((r) => setTimeout(r, 2500));
    const status = async () => (await b.store.jobTasks(ACME.appId, JobId as string))[0]!.status;
    assert.equal(await status(), 'processing', 'no replica that does not lead may time it out (or count the silent node fenced)');
    a.controlPlane.hub.lead(true);
    // The node never acked, so it holds no lease and serves no hits (DESIGN 4): the leader may count it done.
    await until('the leader settles it', async () => (await status()) === 'success');
  });
});
