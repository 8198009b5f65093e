// A node's execution reports count on whichever replica takes its ack (issue 9): after a failover the new
// replica checks a report against the log itself (the entry concerns the node's hosts, is a purge, and this
// ack newly covers it), not against which process streamed it (hardening issue 1 still holds).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ACME, baseConfig } from '../helpers/control-plane.ts';
import { freshTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { teoClient } from '../helpers/sdk.ts';
import { RawNode, until } from '../fanout/raw-node.ts';
import { startReplica } from './helpers.ts';

const skip = postgresSkip('the replica report tests');
const url = skip ? '' : await freshTestDatabase();
const NODE = { id: 'edge-b', listen: '127.0.0.1:2', token: 'token-edge-b-0123456789', hosts: [ACME.host2] };
// edge-a serves only the other host: its entries are in the log, never for edge-b.
const OTHER = { id: 'edge-a', listen: '127.0.0.1:1', token: 'token-edge-a-0123456789', hosts: [ACME.host] };
const CONFIG: ConfigInput = { ...baseConfig(), nodes: [NODE, OTHER], fanout: { leaseMs: 60_000, taskTimeoutMs: 60_000 } };

describe('node reports across replicas', { skip }, () => {
  it('a report sent to the replica a node failed over to is recorded; one on another host or an older entry is not', async (t) => {
    const schema = `rep_${process.pid}`;
    const a = await startReplica(t, url, schema, CONFIG, { heartbeatMs: 50 });
    const b = await startReplica(t, url, schema, CONFIG, { heartbeatMs: 50 });
    const onA = new RawNode(a.url, NODE.id, NODE.token);
    await onA.stream(t);
    const acked = onA.seenSeq();
    const first = await onA.ack({ seq: acked });
    assert.equal(first.status, 200, JSON.stringify(first.json));
    const sdk = teoClient(a.endpoint, ACME.secretId, ACME.secretKey);
    const job = async (host: string, path: string) => (await a.store.jobTasks(ACME.appId, (await sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${host}/${path}`] })).JobId as string))[0]!;
    const mine = await job(ACME.host2, 'mine.jpg');
    const other = await job(ACME.host, 'other.jpg');
    await until('streamed by a', () => onA.entries().some((e) => e.taskId === mine.id));
    // The node applied it, then a went away before the ack: it resumes on b after what it applied (b never
    // streams the entry, so only the log can vouch for the report).
    const onB = new RawNode(b.url, NODE.id, NODE.token);
    await onB.stream(t, mine.seq!);
    assert.ok(!onB.entries().some((e) => e.taskId === mine.id));
    const report = (task: { id: number; seq: number | null }) => ({ seq: task.seq!, taskId: task.id, executedAs: 'delete', matched: 1 });
    const r = await onB.ack({ seq: onB.seenSeq(), driver: 'varnish', reports: [report(mine), report(other), { ...report(mine), taskId: other.id }] });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.ignoredReports, [
      { seq: other.seq, taskId: other.id, reason: 'unexpected' },
      { seq: mine.seq, taskId: other.id, reason: 'unexpected' },
    ]);
    const reports = await b.store.jobNodeReports(ACME.appId, mine.jobId);
    assert.deepEqual(reports.map((x) => [x.nodeId, x.taskId, x.executedAs, x.matched]), [[NODE.id, mine.id, 'delete', 1]]);

    // A report from a fresh process that never streamed the entry, on an entry an earlier ack already covered.
    const c = await startReplica(t, url, schema, CONFIG, { heartbeatMs: 50 });
    const onC = new RawNode(c.url, NODE.id, NODE.token);
    await onC.stream(t, onB.seenSeq());
    const late = await onC.ack({ seq: onB.seenSeq(), reports: [report(mine)] });
    assert.deepEqual(late.json.ignoredReports, [{ seq: mine.seq, taskId: mine.id, reason: 'unexpected' }]);
  });
});
