// Prefetch results are shared by replicas (issue 9): a node's result is committed with its ack on whichever
// replica takes it, and the leader settles the prefetch with every stored result, not only those it took.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ACME, baseConfig } from '../helpers/control-plane.ts';
import { freshTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { teoClient } from '../helpers/sdk.ts';
import type { WireEntry } from '../../src/fanout/wire.ts';
import { RawNode, until } from '../fanout/raw-node.ts';
import { startReplica } from './helpers.ts';

const skip = postgresSkip('the replica prefetch result tests');
const url = skip ? '' : await freshTestDatabase();
const node = (id: string, i: number) => ({ id, listen: `127.0.0.1:${i}`, token: `token-${id}-0123456789`, hosts: [ACME.host] });
const [A, B, C] = [node('edge-a', 1), node('edge-b', 2), node('edge-c', 3)];
// edge-c never connects: only the leader counts it fenced, so only the leader can settle the prefetch.
const CONFIG: ConfigInput = { ...baseConfig(), nodes: [A, B, C], fanout: { leaseMs: 60_000, taskTimeoutMs: 60_000 } };

/**
 * A leader and a replica that does not lead on a fresh schema; edge-a streams from the leader, edge-b from
 * the other, each having acked once (so the hubs count them).
 */
async function twoReplicas(t: TestContext, schema: string) {
  const leader = await startReplica(t, url, schema, CONFIG, { heartbeatMs: 50 });
  await until('the first replica leads', () => leader.controlPlane.duties.leader);
  const other = await startReplica(t, url, schema, CONFIG, { heartbeatMs: 50 });
  assert.equal(other.controlPlane.hub.leading, false);
  const onLeader = new RawNode(leader.url, A.id, A.token);
  const onOther = new RawNode(other.url, B.id, B.token);
  for (const n of [onLeader, onOther]) {
    await n.stream(t);
    assert.equal((await n.ack({ seq: n.seenSeq() })).status, 200);
  }
  return { leader, other, onLeader, onOther };
}

describe('prefetch results across replicas', { skip }, () => {
  it('a result taken by a replica that does not lead counts at the leader (the prefetch ends success)', async (t) => {
    const { leader, other, onLeader, onOther } = await twoReplicas(t, `prefetch_${process.pid}`);
    const sdk = teoClient(other.endpoint, ACME.secretId, ACME.secretKey);
    const { JobId } = await sdk.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/warm.jpg`] });
    await until('streamed by both replicas', () => onLeader.entries().length === 1 && onOther.entries().length === 1);
    const e = onLeader.entries()[0]!;
    const status = async () => (await leader.store.jobTasks(ACME.appId, JobId as string))[0]!.status;
    // The leader's own node first: it still waits for edge-b.
    const first = await onLeader.ack({ seq: e.seq, results: [{ taskId: e.taskId, ok: true }] });
    assert.equal(first.json.ignored, undefined, JSON.stringify(first.json));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await status(), 'processing', 'edge-b has not fetched it yet');
    // edge-b's result, taken by the replica that does not lead (which cannot settle it: edge-c is silent).
    const second = await onOther.ack({ seq: e.seq, results: [{ taskId: e.taskId, ok: true }] });
    assert.equal(second.json.ignored, undefined, JSON.stringify(second.json));
    // Before issue 9 each replica kept its own node's result in memory: the task waited for its deadline.
    await until('the leader settles it with both stored results', async () => (await status()) === 'success', 5000);
    const views = await leader.controlPlane.hub.jobViews(await leader.store.jobTasks(ACME.appId, JobId as string), []);
    assert.deepEqual([...views.values()][0]!.map((v) => [v.nodeId, v.state]), [[A.id, 'applied'], [B.id, 'applied'], [C.id, 'fenced']], 'per-node progress from the stored results, whichever replica took them');
  });

  it('a result sent after failing over counts on the new replica when its seq names an entry streamed to the node before', async (t) => {
    const { leader, other, onLeader: aOnLeader, onOther: bOnOther } = await twoReplicas(t, `prefetch_fo_${process.pid}`);
    const sdk = teoClient(leader.endpoint, ACME.secretId, ACME.secretKey);
    const { JobId } = await sdk.CreatePrefetchTask({ ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/warm.jpg`, `http://${ACME.host}/other.jpg`] });
    await until('streamed by both replicas', () => aOnLeader.entries().length === 2 && bOnOther.entries().length === 2);
    const [e, f] = aOnLeader.entries() as [WireEntry, WireEntry];
    const status = async () => (await leader.store.jobTasks(ACME.appId, JobId as string)).map((x) => x.status);
    for (const x of [e, f]) assert.equal((await bOnOther.ack({ seq: x.seq, results: [{ taskId: x.taskId, seq: x.seq, ok: true }] })).json.ignored, undefined);
    // edge-a started both prefetches (acked past them) on the leader, then fails over to the other replica
    // before their results, resuming after what it applied.
    assert.equal((await aOnLeader.ack({ seq: f.seq })).status, 200);
    aOnLeader.close();
    const aOnOther = new RawNode(other.url, A.id, A.token);
    await aOnOther.stream(t, f.seq);
    // Results the other replica cannot tie to an entry streamed to edge-a are ignored, as before.
    const unproven = await aOnOther.ack({
      seq: f.seq,
      results: [
        { taskId: e.taskId, ok: true }, // no seq (an older agent)
        { taskId: e.taskId, seq: f.seq, ok: true }, // another entry's seq
        { taskId: e.taskId, seq: f.seq + 1, ok: true }, // beyond what the node was streamed
      ],
    });
    assert.equal(unproven.status, 200);
    assert.deepEqual(unproven.json.ignored, [e.taskId, e.taskId, e.taskId].map((taskId) => ({ taskId, reason: 'unexpected' })));
    assert.deepEqual(await status(), ['processing', 'processing']);
    // With their own seqs they count (before, both were ignored and the prefetches timed out naming edge-a).
    const proven = await aOnOther.ack({ seq: f.seq, results: [{ taskId: e.taskId, seq: e.seq, ok: true }, { taskId: f.taskId, seq: f.seq, ok: false, failType: 'originPullFailed', failMessage: '502 from origin' }] });
    assert.equal(proven.json.ignored, undefined, JSON.stringify(proven.json));
    await until('the leader settles both with the stored results', async () => (await status()).join() === 'success,failed', 5000);
    const again = await aOnOther.ack({ seq: f.seq, results: [{ taskId: e.taskId, seq: e.seq, ok: true }] });
    assert.deepEqual(again.json.ignored, [{ taskId: e.taskId, reason: 'duplicate' }]);
  });
});
