// Nodes with several control-plane replicas (one PostgreSQL store): a node streams from one, moves to
// another when its link dies or goes silent, resumes after its applied seq there (no cache reset), keeps
// its lease rules across the switch, and never serves a purged copy. Each replica sits behind a Relay,
// the node's network link to it, which the test cuts.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { startEdgeNode } from '../../src/cli/edge.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { EdgeAgent, type EdgeTarget, type PrefetchOutcome } from '../../src/fanout/edge-agent.ts';
import type { WireEntry } from '../../src/fanout/wire.ts';
import { agentRegistry, edgeRegistry } from '../../src/observability/node-metrics.ts';
import { ControlPlane } from '../../src/server/control-plane.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { PostgresTaskStore } from '../../src/store/postgres/postgres-task-store.ts';
import { ACME, baseConfig } from '../helpers/control-plane.ts';
import { freshTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { teoClient, type SdkClient } from '../helpers/sdk.ts';
import { edgeGet, Origin, Relay, until } from '../e2e/helpers.ts';

const skip = postgresSkip('the control-plane failover tests');
const url = skip ? '' : await freshTestDatabase();
let schemas = 0;

const NODE = { id: 'edge-1', token: 'token-edge-1-0123456789abcdef' };

interface Replica {
  readonly cp: ControlPlane;
  readonly port: number;
  /** The node's link to this replica. */
  readonly link: Relay;
  readonly teo: SdkClient;
}

/** `n` control planes on one fresh PostgreSQL schema, each behind a Relay; the node entry lists the relays. */
async function replicas(t: TestContext, input: ConfigInput, n: number): Promise<Replica[]> {
  const schema = `failover${++schemas}_${process.pid}`;
  const out: Replica[] = [];
  for (let i = 0; i < n; i++) {
    const config = parseConfig({ ...input, store: { driver: 'postgres', url, schema } });
    const store = new PostgresTaskStore({ url, schema, pool: { max: 4 } });
    await store.start();
    const cp = new ControlPlane({ config, store, clock: systemClock, logger: silentLogger, heartbeatMs: 200 });
    const { port } = await cp.start();
    const link = await new Relay(port).start();
    t.after(async () => {
      await link.close();
      await cp.close();
      await store.close();
    });
    out.push({ cp, port, link, teo: teoClient(`127.0.0.1:${port}`, ACME.secretId, ACME.secretKey) });
  }
  return out;
}

const linkUrl = (r: Replica) => `http://127.0.0.1:${r.link.port}`;

async function purgeAndWait(r: Replica, path: string): Promise<void> {
  const { JobId } = await r.teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: [`http://${ACME.host}${path}`] });
  await until(`task ${JobId} success`, async () => {
    const { Tasks } = await r.teo.DescribePurgeTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [JobId] }] });
    assert.notEqual(Tasks[0].Status, 'failed');
    assert.notEqual(Tasks[0].Status, 'timeout');
    return Tasks[0].Status === 'success';
  });
}

describe('nodes fail over between control-plane replicas', { skip }, () => {
  it('a built-in edge whose replica dies moves to another, resumes after its applied seq and serves no purged copy', async (t) => {
    const origin = await new Origin().start();
    t.after(() => origin.close());
    const input: ConfigInput = { ...baseConfig(origin.url), fanout: { leaseMs: 2000 }, nodes: [{ ...NODE, listen: '127.0.0.1:9' }] };
    const rs = await replicas(t, input, 2);
    const config = parseConfig({
      ...input,
      server: { listen: '127.0.0.1:3' },
      nodes: [{ ...NODE, listen: '127.0.0.1:0', controlPlane: rs.map(linkUrl) }],
    });
    const edge = await startEdgeNode(config, NODE.id, silentLogger);
    t.after(() => edge.close());
    await until('edge streaming with a lease', () => edge.agent.connected && edge.proxy.leaseFresh());

    // Two objects cached; one purge through the replica streamed from so the node has a place in the log.
    for (const p of ['/a.html', '/b.html']) {
      assert.equal((await edgeGet(edge.port, ACME.host, p)).xcache, 'MISS');
      assert.equal((await edgeGet(edge.port, ACME.host, p)).xcache, 'HIT');
    }
    const first = rs.find((r) => linkUrl(r) === edge.agent.controlPlane)!;
    const other = rs.find((r) => r !== first)!;
    await purgeAndWait(first, '/c.html');
    const seqBefore = edge.proxy.appliedSeq;
    assert.ok(seqBefore > 0);
    assert.equal(edge.agent.failovers, 0);

    // The replica's link dies (sockets reset, connections refused from now on).
    await first.link.close();
    await until('edge streaming from the other replica', () => edge.agent.connected && edge.agent.controlPlane === linkUrl(other), 5000);
    assert.equal(edge.agent.failovers, 1);

    // Resumed, not reset: what it cached before the switch is still a hit.
    assert.equal((await edgeGet(edge.port, ACME.host, '/b.html')).xcache, 'HIT');
    origin.bump(ACME.host, '/a.html');
    await purgeAndWait(other, '/a.html');
    assert.ok(edge.proxy.appliedSeq > seqBefore);
    const after = await edgeGet(edge.port, ACME.host, '/a.html');
    assert.equal(after.xcache, 'MISS');
    assert.equal(after.body, origin.body(ACME.host, '/a.html'));
    assert.equal((await edgeGet(edge.port, ACME.host, '/b.html')).xcache, 'HIT');

    const text = await edgeRegistry(NODE.id, () => ({ ...edge.proxy.stats(), connected: edge.agent.connected, failovers: edge.agent.failovers })).metrics();
    assert.match(text, /^edgepurge_edge_failovers_total\{node="edge-1"\} 1$/m);
  });

  it('a node with no replica reachable serves no hits once its lease runs out, and catches up on the first replica back', async (t) => {
    const origin = await new Origin().start();
    t.after(() => origin.close());
    const input: ConfigInput = { ...baseConfig(origin.url), fanout: { leaseMs: 1000 }, nodes: [{ ...NODE, listen: '127.0.0.1:9' }] };
    const rs = await replicas(t, input, 2);
    const config = parseConfig({ ...input, server: { listen: '127.0.0.1:3' }, nodes: [{ ...NODE, listen: '127.0.0.1:0', controlPlane: rs.map(linkUrl) }] });
    const edge = await startEdgeNode(config, NODE.id, silentLogger);
    t.after(() => edge.close());
    await until('edge streaming with a lease', () => edge.agent.connected && edge.proxy.leaseFresh());
    await edgeGet(edge.port, ACME.host, '/a.html');
    assert.equal((await edgeGet(edge.port, ACME.host, '/a.html')).xcache, 'HIT');

    // Every link silent: no bytes, no resets. The stream stalls, no replica answers, the lease lapses.
    for (const r of rs) r.link.pause();
    await until('lease lapsed', () => !edge.proxy.leaseFresh(), 5000);
    assert.notEqual((await edgeGet(edge.port, ACME.host, '/a.html')).xcache, 'HIT', 'no hit without a lease');
    // A purge accepted meanwhile: the node is fenced, so the task may settle without it.
    origin.bump(ACME.host, '/a.html');
    const { JobId } = await rs[0]!.teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: [`http://${ACME.host}/a.html`] });
    assert.ok(JobId);
    for (const r of rs) r.link.resume();
    await until('edge streaming again with a lease', () => edge.agent.connected && edge.proxy.leaseFresh(), 15_000);
    const after = await edgeGet(edge.port, ACME.host, '/a.html');
    assert.equal(after.body, origin.body(ACME.host, '/a.html'), 'the purged copy is never served');
  });

  it('an agent whose stream goes silent switches replicas after stallMs and acks there', async (t) => {
    const input: ConfigInput = { ...baseConfig(), nodes: [{ ...NODE, listen: '127.0.0.1:9' }] };
    const rs = await replicas(t, input, 3);
    const target = new RecordingTarget();
    const agent = new EdgeAgent({ controlPlane: rs.map(linkUrl), nodeId: NODE.id, token: NODE.token, target, clock: systemClock, logger: silentLogger, stallMs: 600 });
    agent.start();
    t.after(() => agent.close());
    await until('agent connected', () => agent.connected);
    const first = rs.find((r) => linkUrl(r) === agent.controlPlane)!;
    await purgeAndWait(first, '/one.html');
    const seq = target.appliedSeq;

    first.link.pause();
    const switchedAt = Date.now();
    await until('agent on another replica', () => agent.connected && agent.controlPlane !== linkUrl(first), 5000);
    const took = Date.now() - switchedAt;
    assert.ok(took >= 400, `switched only once the stream was silent for stallMs (${took} ms)`);
    assert.equal(agent.failovers, 1);
    const second = rs.find((r) => linkUrl(r) === agent.controlPlane)!;
    await purgeAndWait(second, '/two.html');
    // Purges accepted by the silent replica reach the node too: one log.
    await purgeAndWait(rs.find((r) => r !== first && r !== second)!, '/three.html');
    assert.deepEqual(target.applied.map((e) => e.target), [`http://${ACME.host}/one.html`, `http://${ACME.host}/two.html`, `http://${ACME.host}/three.html`]);
    assert.ok(target.applied.every((e, i) => i === 0 || e.seq > target.applied[i - 1]!.seq));
    assert.equal(target.drops.length, 0, 'resumed after seq ' + seq + ', never reset');
    const text = await agentRegistry(NODE.id, () => ({
      connected: agent.connected, failovers: agent.failovers, appliedSeq: target.appliedSeq, leaseUntil: 0, appliedByType: {}, queued: 0, errors: { retryable: 0, refused: 0 }, retries: 0,
    })).metrics();
    assert.match(text, /^edgepurge_agent_failovers_total\{node="edge-1"\} 1$/m);
  });

  it('a prefetch result the agent sends after failing over counts on the new replica (it carries its entry\'s seq)', async (t) => {
    // Long lease and deadline: only the result can settle the prefetch within the test.
    const input: ConfigInput = { ...baseConfig(), nodes: [{ ...NODE, listen: '127.0.0.1:9' }], fanout: { leaseMs: 60_000, taskTimeoutMs: 60_000 } };
    const rs = await replicas(t, input, 2);
    const target = new RecordingTarget();
    let release: (() => void) | undefined;
    target.prefetch = () => new Promise<PrefetchOutcome>((resolve) => (release = () => resolve({ ok: true })));
    const agent = new EdgeAgent({ controlPlane: rs.map(linkUrl), nodeId: NODE.id, token: NODE.token, target, clock: systemClock, logger: silentLogger, stallMs: 600 });
    agent.start();
    t.after(() => agent.close());
    await until('agent connected', () => agent.connected);
    const first = rs.find((r) => linkUrl(r) === agent.controlPlane)!;
    const { JobId } = await first.teo.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/warm.jpg`] });
    await until('the prefetch started', () => release !== undefined);
    await agent.waitForAck(target.appliedSeq);
    first.link.pause();
    await until('agent on the other replica', () => agent.connected && agent.controlPlane !== linkUrl(first), 5000);
    release!();
    const second = rs.find((r) => r !== first)!;
    await until('the prefetch settles with the result the other replica took', async () => {
      const { Tasks } = await second.teo.DescribePrefetchTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [JobId] }] });
      return Tasks[0].Status === 'success';
    }, 5000);
  });
});

/** A cache that records what it applied (the agent's side of a driver, without a real cache). */
class RecordingTarget implements EdgeTarget {
  readonly driver = 'recording';
  appliedSeq = 0;
  readonly applied: WireEntry[] = [];
  readonly drops: number[] = [];
  apply(e: WireEntry): void {
    assert.ok(e.seq > this.appliedSeq);
    this.applied.push(e);
    this.appliedSeq = e.seq;
  }
  advanceTo(seq: number): void {
    this.appliedSeq = Math.max(this.appliedSeq, seq);
  }
  prefetch: (e: WireEntry) => Promise<PrefetchOutcome> = async () => ({ ok: true });
  dropAll(seq: number): void {
    if (seq > 0 && this.appliedSeq > 0) this.drops.push(seq);
    this.appliedSeq = seq;
  }
  renewLease(): void {}
}
