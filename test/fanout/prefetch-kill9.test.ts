// Prefetch results are durable (issue 9): a node's result is committed with the ack that carries it, so a
// control plane killed with -9 after one node reported and before the task settled still counts that
// result once restarted, and the prefetch ends `success`, not `timeout`.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ACME } from '../helpers/control-plane.ts';
import { acmeAccountsYaml, api, serve, serveSandbox } from '../helpers/serve-process.ts';
import { RawNode, until } from './raw-node.ts';

const NODES = [
  { id: 'edge-a', token: 'token-edge-a-0123456789' },
  { id: 'edge-b', token: 'token-edge-b-0123456789' },
];

async function status(base: string, jobId: string): Promise<string> {
  const r = await api(base, 'DescribePrefetchTasks', { ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [jobId] }] });
  const tasks = r.Tasks as Array<{ Status: string }>;
  assert.equal(tasks.length, 1);
  return tasks[0]!.Status;
}

test('regression: a prefetch result taken before kill -9 of the control plane still counts after the restart (success, not timeout)', async (t) => {
  const { dir, running } = serveSandbox(t, 'edgepurge-prefetch-kill9-');
  const configPath = join(dir, 'edgepurge.yaml');
  // Leases and the deadline far beyond the test: only both results can settle the task.
  writeFileSync(
    configPath,
    `server: { listen: "127.0.0.1:0", accessLog: false }
store: { driver: sqlite, path: ${JSON.stringify(join(dir, 'edgepurge.db'))} }
fanout: { leaseMs: 60000, taskTimeoutMs: 60000 }
nodes:
${NODES.map((n, i) => `  - { id: ${n.id}, listen: "127.0.0.1:${i + 1}", token: ${n.token} }`).join('\n')}
${acmeAccountsYaml()}`,
  );
  const first = await serve(configPath);
  running.push(first.child);
  const [a, b] = NODES.map((n) => new RawNode(first.base, n.id, n.token)) as [RawNode, RawNode];
  for (const n of [a, b]) {
    await n.stream(t);
    assert.equal((await n.ack({ seq: n.seenSeq() })).status, 200);
  }
  const jobId = String((await api(first.base, 'CreatePrefetchTask', { ZoneId: ACME.zoneId, Targets: [`http://${ACME.host}/warm.jpg`] })).JobId);
  await until('streamed to both', () => a.entries().length === 1 && b.entries().length === 1);
  const entry = a.entries()[0]!;
  // edge-a fetched it and says so; edge-b only dispatched its fetch (acks the entry, no result yet).
  const reported = await a.ack({ seq: entry.seq, results: [{ taskId: entry.taskId, ok: true }] });
  assert.equal(reported.status, 200, JSON.stringify(reported.json));
  assert.equal(reported.json.ignored, undefined, 'the result was taken');
  assert.equal((await b.ack({ seq: entry.seq })).status, 200);
  assert.equal(await status(first.base, jobId), 'processing', 'edge-b has not fetched it yet');

  assert.equal(first.child.kill('SIGKILL'), true);
  assert.equal(await first.exited, 'SIGKILL');
  const second = await serve(configPath);
  running.push(second.child);
  const b2 = new RawNode(second.base, 'edge-b', NODES[1]!.token);
  await b2.stream(t, entry.seq);
  const late = await b2.ack({ seq: entry.seq, results: [{ taskId: entry.taskId, ok: true }] });
  assert.equal(late.status, 200, JSON.stringify(late.json));
  assert.equal(late.json.ignored, undefined, 'edge-b was streamed the entry before the restart: its result counts');
  // Before issue 9 edge-a's result died with the process: the task waited for it until its deadline.
  await until('success with both results', async () => (await status(second.base, jobId)) === 'success', 10_000);
  // A retried result of edge-a (its answer lost in the kill) is a duplicate, not a second vote.
  const a2 = new RawNode(second.base, 'edge-a', NODES[0]!.token);
  await a2.stream(t, entry.seq);
  const retried = await a2.ack({ seq: entry.seq, results: [{ taskId: entry.taskId, ok: false, failMessage: 'changed its mind' }] });
  assert.deepEqual(retried.json.ignored, [{ taskId: entry.taskId, reason: 'duplicate' }]);
  assert.equal(await status(second.base, jobId), 'success', 'a final status never changes');
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0);
});
