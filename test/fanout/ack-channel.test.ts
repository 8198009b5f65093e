// The ack channel (issue 11): GET /edge/v1/acks upgraded to `edgepurge-acks`, one token check, then one
// ack per line and one answer per line in order. Refusals are those of POST /edge/v1/ack, in the channel's
// own envelope; agents use it and fall back to posting acks on a control plane without it.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseConfig } from '../../src/config/load.ts';
import { AckChannel } from '../../src/fanout/ack-channel.ts';
import { EdgeAgent, type EdgeTarget, type PrefetchOutcome } from '../../src/fanout/edge-agent.ts';
import { FanoutHub } from '../../src/fanout/fanout-hub.ts';
import { Directory } from '../../src/purge/directory.ts';
import type { WireEntry } from '../../src/fanout/wire.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { SqliteTaskStore } from '../../src/store/sqlite/sqlite-task-store.ts';
import { ACME, baseConfig, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { teoClient } from '../helpers/sdk.ts';
import { RawNode, serveHub, until } from './raw-node.ts';

const NODE = { id: 'edge-a', listen: '127.0.0.1:1', token: 'token-edge-a-0123456789' };
const headers = { Authorization: `Bearer ${NODE.token}`, 'X-Edge-Node': NODE.id };

async function setup(t: TestContext): Promise<TestServer> {
  return startControlPlane(t, { ...baseConfig(), nodes: [NODE], fanout: { leaseMs: 60_000, taskTimeoutMs: 60_000 } }, { heartbeatMs: 50 });
}

/** Sends `request` (a raw HTTP head and what follows) and returns everything the server writes until it closes or `ms` pass. */
function raw(port: number, request: string, ms = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(request));
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => (text += c));
    s.on('error', reject);
    s.on('close', () => resolve(text));
    setTimeout(() => s.destroy(), ms).unref();
  });
}

const upgradeHead = (path: string, h: Record<string, string>) =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: edgepurge-acks\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;

/** A cache that applies every entry at once; only its lease is looked at here. */
const target = (): EdgeTarget & { appliedSeq: number; leaseUntil: number } => ({
  driver: 'builtin', appliedSeq: 0, leaseUntil: 0,
  apply(e: WireEntry) { this.appliedSeq = e.seq; },
  advanceTo(seq: number) { this.appliedSeq = Math.max(this.appliedSeq, seq); },
  prefetch: async (): Promise<PrefetchOutcome> => ({ ok: true }),
  dropAll(seq: number) { this.appliedSeq = seq; },
  renewLease(until: number) { this.leaseUntil = until; },
});

test('the ack channel takes acks line by line, answers in order, refuses a bad line without closing, and records what POST would', async (t) => {
  const server = await setup(t);
  const node = new RawNode(server.url, NODE.id, NODE.token);
  await node.stream(t);
  const sdk = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  const { JobId } = await sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/c.jpg`] });
  await until('the entry was streamed', () => node.entries().length === 1);
  const e = node.entries()[0]!;
  const channel = await AckChannel.open(server.url, headers);
  t.after(() => channel.close());
  assert.equal(server.controlPlane.hub.memory().ackChannels, 1);
  // Pipelined: a refused line between two good ones is answered in its place, and the channel carries on.
  const first = channel.send({ seq: e.seq - 1 });
  const bad = channel.send({ seq: -1 } as never);
  const second = channel.send({ seq: e.seq, driver: 'builtin', reports: [{ seq: e.seq, taskId: e.taskId, executedAs: 'invalidate', matched: 1 }] });
  assert.equal((await first).leaseMs, 60_000);
  await assert.rejects(bad, /ack refused: invalid ack: seq/);
  const answer = await second;
  assert.equal(answer.lastSeq, e.seq);
  assert.equal(answer.ignoredReports, undefined, 'the report was recorded');
  assert.ok(channel.open);
  // Durable before answered, as over POST: progress, report and the settled status are in the store.
  assert.deepEqual((await server.store.nodeProgress()).find((p) => p.nodeId === NODE.id)?.ackedSeq, e.seq);
  assert.deepEqual((await server.store.jobTasks(ACME.appId, JobId)).map((x) => x.status), ['success']);
  assert.equal((await server.store.jobNodeReports(ACME.appId, JobId)).length, 1);
  // Capped at what was streamed, as over POST.
  assert.equal((await channel.send({ seq: e.seq + 1000 })).lastSeq, e.seq);
  assert.equal((await server.store.nodeProgress()).find((p) => p.nodeId === NODE.id)?.ackedSeq, e.seq);
  const notJson = await raw(server.port, `${upgradeHead('/edge/v1/acks', headers)}{"seq":\n{"seq":0}\n`, 500);
  assert.match(notJson, /^HTTP\/1.1 101 /);
  const lines = notJson.split('\r\n\r\n')[1]!.trim().split('\n').map((l) => JSON.parse(l) as { error?: string; leaseMs?: number });
  assert.match(lines[0]!.error!, /ack body is not JSON/);
  assert.equal(lines[1]!.leaseMs, 60_000);
});

test('the ack channel refuses before the switch as the HTTP routes do: bad token, other path, other method; a line over the limit ends it', async (t) => {
  const server = await setup(t);
  const badToken = await raw(server.port, upgradeHead('/edge/v1/acks', { ...headers, Authorization: 'Bearer wrong-token-0123456789' }));
  assert.match(badToken, /^HTTP\/1.1 401 /);
  assert.match(badToken, /WWW-Authenticate: Bearer/);
  assert.match(badToken, /"error":"unknown node or bad token/);
  assert.match(await raw(server.port, upgradeHead('/edge/v1/stream', headers)), /^HTTP\/1.1 404 [^]*no such edge upgrade/);
  assert.match(await raw(server.port, upgradeHead('/v2/other', headers)), /^HTTP\/1.1 404 /);
  assert.match(await raw(server.port, upgradeHead('/edge/v1/acks', headers).replace(/^GET/, 'POST')), /^HTTP\/1.1 405 [^]*Allow: GET/);
  // No newline within the limit: answered once, then closed (nothing queued).
  const huge = await raw(server.port, upgradeHead('/edge/v1/acks', headers) + `{"seq":1,"driver":"${'x'.repeat(1024 * 1024 + 10)}`, 3000);
  assert.match(huge, /"error":"ack line over 1048576 bytes"/);
  assert.equal(server.controlPlane.hub.memory().queuedAcks, 0);
  await until('the channel is gone', () => server.controlPlane.hub.memory().ackChannels === 0);
});

test("a node's channel is closed when its configuration entry changes (the token it was checked with may be gone)", async (t) => {
  const server = await setup(t);
  const channel = await AckChannel.open(server.url, headers);
  t.after(() => channel.close());
  assert.equal((await channel.send({ seq: 0 })).leaseMs, 60_000);
  const config = parseConfig({ ...baseConfig(), nodes: [{ ...NODE, token: 'token-edge-a-rotated-987654' }], fanout: { leaseMs: 60_000, taskTimeoutMs: 60_000 }, store: { driver: 'sqlite', path: join(server.dir, 'edgepurge.db') } });
  server.controlPlane.reload(config);
  await until('the channel is closed', () => !channel.open);
  await assert.rejects(channel.send({ seq: 0 }), /ack channel closed/);
  await assert.rejects(AckChannel.open(server.url, headers), /HTTP 401/);
});

test('an agent acks over its channel, and posts its acks to a control plane without one', async (t) => {
  // The real control plane: the agent's acks ride on one channel.
  const server = await setup(t);
  const agent = new EdgeAgent({ controlPlane: server.url, nodeId: NODE.id, token: NODE.token, target: target(), clock: systemClock, logger: silentLogger });
  agent.start();
  t.after(() => agent.close());
  await agent.waitForAck(0);
  assert.equal(server.controlPlane.hub.memory().ackChannels, 1);
  const sdk = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  const { JobId } = await sdk.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/d.jpg`] });
  await until('success', async () => (await server.store.jobTasks(ACME.appId, JobId))[0]!.status === 'success');
  assert.equal(server.controlPlane.hub.memory().ackChannels, 1, 'still one channel');
  await agent.close();
  await until('the channel closed with the agent', () => server.controlPlane.hub.memory().ackChannels === 0);

  // A server that routes only the HTTP endpoints (as control planes before the channel): 404 on the upgrade, acks posted.
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-ackchannel-'));
  const config = parseConfig({ ...baseConfig(), nodes: [NODE], fanout: { leaseMs: 60_000, taskTimeoutMs: 60_000 }, store: { driver: 'sqlite', path: join(dir, 'edgepurge.db') } });
  const store = new SqliteTaskStore({ path: join(dir, 'edgepurge.db') });
  await store.start();
  const hub = new FanoutHub({ config, store, directory: new Directory(config), clock: systemClock, logger: silentLogger, heartbeatMs: 50 });
  await hub.start();
  const url = await serveHub(t, hub, async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const old = target();
  const agent2 = new EdgeAgent({ controlPlane: url, nodeId: NODE.id, token: NODE.token, target: old, clock: systemClock, logger: silentLogger });
  agent2.start();
  t.after(() => agent2.close());
  await agent2.waitForAck(0);
  assert.ok(old.leaseUntil > Date.now(), 'the posted ack renewed the lease');
  assert.equal(hub.memory().ackChannels, 0);
  assert.equal((await store.nodeProgress()).find((p) => p.nodeId === NODE.id)?.ackedSeq, 0);
});

test('closing the control plane answers the acks a channel carried, then ends the channel', async (t) => {
  const server = await setup(t);
  const channel = await AckChannel.open(server.url, headers);
  t.after(() => channel.close());
  // Closed right as the ack's batch has committed, before its answer is written.
  let closing: Promise<void> | undefined;
  server.controlPlane.hub.onAck(() => void (closing ??= server.controlPlane.hub.close()));
  const t0 = Date.now();
  const answer = channel.send({ seq: 0 });
  await until('close() was called', () => closing !== undefined);
  await closing;
  await server.close();
  assert.ok(Date.now() - t0 < 3000, `close() took ${Date.now() - t0} ms`);
  assert.equal((await answer).leaseMs, 60_000, 'the ack in flight was answered');
  await until('the channel is closed', () => !channel.open);
});
