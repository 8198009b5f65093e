// The live admin views: GET /admin/v1/jobs/JOBID/events (server-sent events until the job settles) and
// GET /admin/v1/nodes (the fleet, behind the tenant wall), against a real control plane and real edge
// agents connecting over the purge-log stream.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ACME, GLOBEX, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { assertOk, config, rawCall, TEO } from '../api3/fixtures.ts';
import { until } from '../e2e/helpers.ts';
import { runNodeAsEdge } from '../helpers/edge-node.ts';

const TOKEN = 'node-token-0000000000000000';
const nginxDriver = { type: 'nginx' as const, url: 'http://127.0.0.1:9', purgeUrl: 'http://127.0.0.1:9', cacheDir: '/nonexistent/edgepurge' };

/**
 * Listen addresses are placeholders (runNodeAsEdge picks a free port). edge-a (built-in, ACME's www),
 * nginx-a (nginx, ACME's www; no agent runs, and nginx is never fenced,
 * so its tasks wait), globex-edge (built-in, Globex only) and shared (nginx, every host).
 */
function fleetConfig(taskTimeoutMs: number): ConfigInput {
  return config(undefined, {
    fanout: { leaseMs: 2000, taskTimeoutMs },
    nodes: [
      { id: 'edge-a', listen: '127.0.0.1:1', token: TOKEN, hosts: [ACME.host] },
      { id: 'nginx-a', token: TOKEN, hosts: [ACME.host], driver: nginxDriver },
      { id: 'globex-edge', listen: '127.0.0.1:2', token: TOKEN, hosts: [GLOBEX.host] },
      { id: 'shared', token: TOKEN, driver: nginxDriver },
    ],
  });
}

const basic = (who: { secretId: string; secretKey: string }) => ({ Authorization: `Basic ${Buffer.from(`${who.secretId}:${who.secretKey}`).toString('base64')}` });

async function purge(s: TestServer, who: { secretId: string; secretKey: string }, zoneId: string, url: string): Promise<string> {
  const r = assertOk(await rawCall(s, who, { action: 'CreatePurgeTask', version: TEO, body: { ZoneId: zoneId, Type: 'purge_url', Targets: [url] } }));
  return String(r.JobId);
}

interface SseEvent {
  readonly event: string;
  readonly data: { Tasks: Array<{ Status: string; Nodes: Array<{ NodeId: string; State: string }> }> };
}

/** Reads an event stream as it arrives; `next()` resolves with the next event, undefined once it ended. */
function events(res: Response) {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  return {
    async next(): Promise<SseEvent | undefined> {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end !== -1) {
          const block = buffer.slice(0, end).split('\n');
          buffer = buffer.slice(end + 2);
          const data = block.find((l) => l.startsWith('data: '));
          if (!data) continue;
          return { event: block.find((l) => l.startsWith('event: '))!.slice(7), data: JSON.parse(data.slice(6)) as SseEvent['data'] };
        }
        const { done, value } = await reader.read();
        if (done) return undefined;
        buffer += value;
      }
    },
  };
}

describe('GET /admin/v1/jobs/JOBID/events', () => {
  test('the job at once, then `settled` once its nodes applied it, and the stream ends', async (t) => {
    const input = fleetConfig(120_000);
    const s = await startControlPlane(t, input, { heartbeatMs: 100 });
    const jobId = await purge(s, ACME, ACME.zoneId, `http://${ACME.host}/live.js`);
    const res = await fetch(`${s.url}/admin/v1/jobs/${jobId}/events`, { headers: basic(ACME) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const stream = events(res);
    const first = await stream.next();
    assert.equal(first?.event, 'job');
    assert.equal(first.data.Tasks[0]!.Status, 'processing');
    const states = Object.fromEntries(first.data.Tasks[0]!.Nodes.map((n) => [n.NodeId, n.State]));
    // Built-in edge-a never acked: it holds no lease, so it counts as fenced; nginx nodes never are.
    assert.deepEqual(states, { 'edge-a': 'fenced', 'nginx-a': 'pending', shared: 'pending' });

    // The nginx nodes' agents connect and ack: the job settles, and the stream says so and ends.
    await runNodeAsEdge(t, input, 'nginx-a', s.url);
    await runNodeAsEdge(t, input, 'shared', s.url);
    let last: SseEvent | undefined;
    for (let e = await stream.next(); e; e = await stream.next()) last = e;
    assert.equal(last?.event, 'settled');
    assert.equal(last.data.Tasks[0]!.Status, 'success');
    assert.deepEqual(Object.fromEntries(last.data.Tasks[0]!.Nodes.map((n) => [n.NodeId, n.State])), { 'edge-a': 'fenced', 'nginx-a': 'applied', shared: 'applied' });
  });

  test('a settled job: one `settled` event; another account, no key, bad path: refused before streaming', async (t) => {
    const s = await startControlPlane(t, config());
    const jobId = await purge(s, ACME, ACME.zoneId, `http://${ACME.host}/done.js`);
    await until('the job settles', async () => (await s.store.jobTasks(ACME.appId, jobId)).every((x) => x.status === 'success'));
    const stream = events(await fetch(`${s.url}/admin/v1/jobs/${jobId}/events`, { headers: basic(ACME) }));
    assert.equal((await stream.next())?.event, 'settled');
    assert.equal(await stream.next(), undefined);
    assert.equal((await fetch(`${s.url}/admin/v1/jobs/${jobId}/events`, { headers: basic(GLOBEX) })).status, 404);
    assert.equal((await fetch(`${s.url}/admin/v1/jobs/${jobId}/events`)).status, 401);
    assert.equal((await fetch(`${s.url}/admin/v1/jobs/${jobId}/events/more`, { headers: basic(ACME) })).status, 404);
  });

  test('closing the control plane ends open event streams at once', async (t) => {
    const s = await startControlPlane(t, fleetConfig(120_000));
    const jobId = await purge(s, ACME, ACME.zoneId, `http://${ACME.host}/open.js`);
    const stream = events(await fetch(`${s.url}/admin/v1/jobs/${jobId}/events`, { headers: basic(ACME) }));
    assert.equal((await stream.next())?.event, 'job');
    const started = performance.now();
    await s.close();
    assert.equal(await stream.next(), undefined);
    // The shutdown force-closes lingering connections after 5 s: the stream must not have waited for that.
    assert.ok(performance.now() - started < 4000, `close took ${Math.round(performance.now() - started)} ms`);
  });
});

describe('GET /admin/v1/nodes', () => {
  interface Fleet {
    LastSeq: number;
    Nodes: Array<{ NodeId: string; Driver: string; Hosts: string[]; Connected: boolean; AckedSeq: number; LagEntries: number; Lease: string; LastError: { JobId: string; Message: string } | null }>;
  }
  const fleet = async (s: TestServer, who: { secretId: string; secretKey: string }): Promise<Fleet> => {
    const res = await fetch(`${s.url}/admin/v1/nodes`, { headers: basic(who) });
    assert.equal(res.status, 200);
    return (await res.json()) as Fleet;
  };
  const byId = (f: Fleet) => Object.fromEntries(f.Nodes.map((n) => [n.NodeId, n]));

  test('each account sees the nodes serving its hosts, only its own hosts and only its own last errors', async (t) => {
    const input = fleetConfig(1000);
    const s = await startControlPlane(t, input, { heartbeatMs: 100 });
    await runNodeAsEdge(t, input, 'edge-a', s.url);
    const jobId = await purge(s, ACME, ACME.zoneId, `http://${ACME.host}/late.js`);
    // nginx-a and shared have no agent: the task times out on them and each keeps it as its last error.
    await until('the task times out', async () => (await s.store.jobTasks(ACME.appId, jobId))[0]?.status === 'timeout');

    const acme = await until('edge-a acked the entry', async () => {
      const f = await fleet(s, ACME);
      return byId(f)['edge-a']?.AckedSeq === f.LastSeq ? f : undefined;
    });
    const a = byId(acme);
    assert.deepEqual(Object.keys(a).sort(), ['edge-a', 'nginx-a', 'shared']);
    assert.deepEqual(a['shared']!.Hosts, [ACME.host, ACME.host2, ACME.host3], 'a node serving every host lists only this account\'s');
    assert.deepEqual([a['edge-a']!.Driver, a['edge-a']!.Connected, a['edge-a']!.Lease, a['edge-a']!.LagEntries], ['builtin', true, 'held', 0]);
    assert.deepEqual([a['nginx-a']!.Driver, a['nginx-a']!.Connected, a['nginx-a']!.Lease, a['nginx-a']!.LagEntries], ['nginx', false, 'unfenced', acme.LastSeq]);
    assert.equal(a['edge-a']!.LastError, null);
    for (const id of ['nginx-a', 'shared']) {
      assert.equal(a[id]!.LastError?.JobId, jobId);
      assert.match(a[id]!.LastError!.Message, /late\.js: not applied within 1 s/);
    }

    const g = byId(await fleet(s, GLOBEX));
    assert.deepEqual(Object.keys(g).sort(), ['globex-edge', 'shared']);
    assert.deepEqual(g['shared']!.Hosts, [GLOBEX.host]);
    assert.equal(g['shared']!.LastError, null, "another account's failure is not shown");
    assert.equal(g['globex-edge']!.Lease, 'never');

    assert.equal((await fetch(`${s.url}/admin/v1/nodes`)).status, 401);
    assert.equal((await fetch(`${s.url}/admin/v1/nodes`, { method: 'POST', headers: basic(ACME) })).status, 404);
  });
});
