// The control plane's /metrics, /healthz, /readyz and access log, on a real server with a real edge
// node (EdgeProxy behind an EdgeAgent), driven by the official SDKs (issue 10 "Metrics and health").
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { EdgeProxy } from '../../src/edge/edge-proxy.ts';
import { EdgeAgent } from '../../src/fanout/edge-agent.ts';
import { systemClock } from '../../src/shared/clock.ts';
import { createLogger, silentLogger } from '../../src/shared/logger.ts';
import { CDN, rawCall, TEO } from '../api3/fixtures.ts';
import { ACME, baseConfig, GLOBEX, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { scrape, type Scrape } from '../helpers/prometheus.ts';
import { cdnClient, sdkError, teoClient } from '../helpers/sdk.ts';
import { API3_ACTIONS } from '../../src/actions/registry.ts';
import { V2_ACTIONS } from '../../src/actions/v2/registry.ts';

const TOKEN = 'metrics-token-0123456789abcdef';
const NODE = { id: 'edge-m', listen: '127.0.0.1:1', token: 'token-edge-m-0123456789' };

async function until<T>(what: string, cond: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A control plane with one built-in edge node connected to it (a real EdgeProxy applying the log). */
async function withEdge(t: Parameters<typeof startControlPlane>[0], metrics: { token?: string } = { token: TOKEN }) {
  const server = await startControlPlane(t, { ...baseConfig(), nodes: [NODE], metrics, fanout: { leaseMs: 5000 } }, { heartbeatMs: 100 });
  const proxy = new EdgeProxy({ listen: { host: '127.0.0.1', port: 0 }, domains: [{ host: ACME.host, origin: 'http://127.0.0.1:9' }], maxBytes: 2 ** 20, clock: systemClock, leaseMs: 5000 });
  const agent = new EdgeAgent({ controlPlane: server.url, nodeId: NODE.id, token: NODE.token, target: proxy, clock: systemClock, logger: silentLogger, stallMs: 3000 });
  agent.start();
  t?.after(async () => {
    await agent.close();
    await proxy.close();
  });
  await agent.waitForAck(0);
  return { server, proxy, agent };
}

const teo = (s: TestServer) => teoClient(s.endpoint, ACME.secretId, ACME.secretKey);

test('/metrics values move with purges made through the official SDKs', async (t) => {
  const { server } = await withEdge(t);
  const before = await scrape(server.url, TOKEN);
  const created = (m: Scrape) => m.value('edgepurge_tasks_created_total', { type: 'purge_url' });
  const success = (m: Scrape) => m.value('edgepurge_tasks_settled_total', { status: 'success' });

  const { JobId } = await teo(server).CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`https://${ACME.host}/a.js`, `https://${ACME.host}/b.js`] });
  await cdnClient(server.endpoint, ACME.secretId, ACME.secretKey).PurgeUrlsCache({ Urls: [`https://${ACME.host}/c.js`] });
  const refused = await sdkError(teo(server).CreatePurgeTask({ ZoneId: 'zone-nosuch01', Type: 'purge_url', Targets: [`https://${ACME.host}/d.js`] }));
  assert.equal(refused.code, 'InvalidParameter.ZoneNotFound');

  // Settled when the node acked them: success moves by the three tasks, and so do the latency counts.
  const after = await until('the three tasks to settle', async () => {
    const m = await scrape(server.url, TOKEN);
    return success(m) - success(before) >= 3 ? m : undefined;
  });
  assert.equal(created(after) - created(before), 3);
  assert.equal(success(after) - success(before), 3);
  assert.equal(after.value('edgepurge_task_settled_seconds_count', { status: 'success' }) - before.value('edgepurge_task_settled_seconds_count', { status: 'success' }), 3);
  assert.equal(after.value('edgepurge_task_applied_seconds_count') - before.value('edgepurge_task_applied_seconds_count'), 3, 'one apply observation per task and node');
  assert.equal(after.value('edgepurge_api_requests_total', { api: 'teo', action: 'CreatePurgeTask', code: 'Success' }), 1);
  assert.equal(after.value('edgepurge_api_requests_total', { api: 'cdn', action: 'PurgeUrlsCache', code: 'Success' }), 1);
  assert.equal(after.value('edgepurge_api_requests_total', { api: 'teo', action: 'CreatePurgeTask', code: 'InvalidParameter.ZoneNotFound' }), 1);
  assert.equal(after.value('edgepurge_api_request_duration_seconds_count', { api: 'teo', action: 'CreatePurgeTask' }), 2);
  assert.equal(after.value('edgepurge_store_commit_seconds_count', { op: 'create_job' }) - before.value('edgepurge_store_commit_seconds_count', { op: 'create_job' }), 2);
  assert.ok(after.value('edgepurge_store_commit_seconds_count', { op: 'ack_node' }) > before.value('edgepurge_store_commit_seconds_count', { op: 'ack_node' }));

  // The admin endpoint is counted too, with the code its answer means.
  const basic = (key: string) => ({ headers: { Authorization: `Basic ${Buffer.from(`${ACME.secretId}:${key}`).toString('base64')}` } });
  assert.equal((await fetch(`${server.url}/admin/v1/jobs/${JobId}`, basic(ACME.secretKey))).status, 200);
  assert.equal((await fetch(`${server.url}/admin/v1/jobs/${JobId}`, basic('wrong'))).status, 401);
  const admin = await scrape(server.url, TOKEN);
  assert.equal(admin.value('edgepurge_api_requests_total', { api: 'admin', action: 'GetJob', code: 'Success' }), 1);
  assert.equal(admin.value('edgepurge_api_requests_total', { api: 'admin', action: 'GetJob', code: 'AuthFailure.SignatureFailure' }), 1);

  // The quota gauge is the account's usage today, as DescribeContentQuota reports it.
  assert.equal(after.value('edgepurge_quota_used', { account: String(ACME.appId), type: 'purge_url' }), 3);
  assert.equal(after.value('edgepurge_quota_daily_limit', { account: String(ACME.appId), type: 'purge_url' }), 10_000);
  assert.equal(after.value('edgepurge_quota_used', { account: String(GLOBEX.appId), type: 'purge_url' }), 0);
  const quota = await teo(server).DescribeContentQuota({ ZoneId: ACME.zoneId });
  const url = (quota.PurgeQuota as Array<{ Type: string; Batch: number; Daily: number; DailyAvailable: number }>).find((q) => q.Type === 'purge_url')!;
  assert.equal(url.Daily - url.DailyAvailable, 3);

  // The node: connected, caught up to the log's end, lease fresh.
  const node = { node: NODE.id };
  const lastSeq = after.value('edgepurge_purge_log_last_seq');
  assert.ok(lastSeq >= 3);
  await until('the node gauges to show it caught up', async () => {
    const m = await scrape(server.url, TOKEN);
    return m.value('edgepurge_node_applied_seq', node) === lastSeq ? m : undefined;
  });
  const fleet = await scrape(server.url, TOKEN);
  assert.equal(fleet.value('edgepurge_node_connected', node), 1);
  assert.equal(fleet.value('edgepurge_node_lease_fresh', node), 1);
  assert.equal(fleet.value('edgepurge_node_lag_entries', node), 0);
  assert.equal(fleet.value('edgepurge_node_lag_seconds', node), 0);
});

test('a node that stops acking shows lag in entries and seconds, and loses its lease', async (t) => {
  const { server, agent } = await withEdge(t);
  await agent.close();
  await teo(server).CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`https://${ACME.host}/late.js`] });
  const node = { node: NODE.id };
  const m = await until('the lag to grow past 50 ms', async () => {
    const s = await scrape(server.url, TOKEN);
    return s.value('edgepurge_node_lag_seconds', node) > 0.05 ? s : undefined;
  });
  assert.equal(m.value('edgepurge_node_lag_entries', node), 1);
  assert.equal(m.value('edgepurge_node_connected', node), 0);
  await until('the lease to run out (5 s)', async () => ((await scrape(server.url, TOKEN)).value('edgepurge_node_lease_fresh', node) === 0 ? true : undefined));
});

test('/metrics: a bearer token when configured; without one, no per-account series', async (t) => {
  const { server: open } = await withEdge(t, {});
  const m = await scrape(open.url);
  assert.equal(m.all('edgepurge_quota_used').length, 0, 'no tenant usage without a token');
  assert.ok(m.all('edgepurge_node_connected').length > 0);

  const guarded = await startControlPlane(t, { ...baseConfig(), metrics: { token: TOKEN } });
  for (const auth of [undefined, 'Bearer wrong-token-0123456789', `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`]) {
    const res = await fetch(`${guarded.url}/metrics`, auth ? { headers: { Authorization: auth } } : {});
    assert.equal(res.status, 401, `Authorization: ${auth}`);
    assert.doesNotMatch(await res.text(), /edgepurge_/);
  }
  await teo(guarded).CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_host', Targets: [ACME.host] });
  const withToken = await scrape(guarded.url, TOKEN);
  assert.deepEqual(withToken.all('edgepurge_quota_used').map((x) => [x.labels.account, x.labels.type, x.value]), [[String(ACME.appId), 'purge_host', 1]]);
  assert.equal(withToken.value('edgepurge_quota_daily_limit', { account: String(ACME.appId), type: 'purge_host' }), 10_000);

  const off = await startControlPlane(t, { ...baseConfig(), metrics: { enabled: false } });
  assert.equal((await fetch(`${off.url}/metrics`)).status, 404);
  assert.equal((await fetch(`${off.url}/healthz`)).status, 200);
});

test('/healthz and /readyz: ready while the store answers, not ready once it is closed', async (t) => {
  const server = await startControlPlane(t);
  const ready = await fetch(`${server.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.match(await ready.text(), /^ready\nok accepting requests\nok store reachable\nok migrations applied\n$/);
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  assert.equal((await fetch(`${server.url}/readyz`, { method: 'POST' })).status, 405);

  await server.store.close();
  const notReady = await fetch(`${server.url}/readyz`);
  assert.equal(notReady.status, 503);
  assert.match(await notReady.text(), /FAIL store reachable: .*closed/);
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'alive all the same');
});

test('access log: one JSON line per API request with action, account, code, duration, api and request id; off with server.accessLog', async (t) => {
  const lines: string[] = [];
  const logger = createLogger('info', (l) => lines.push(l));
  const server = await startControlPlane(t, baseConfig(), { logger });
  const ok = await rawCall(server, ACME, { action: 'DescribeContentQuota', version: TEO, body: { ZoneId: ACME.zoneId } });
  const bad = await rawCall(server, ACME, { action: 'PurgeUrlsCache', version: CDN, body: { Urls: ['https://www.nosuch.example/x'] } });
  const forged = await rawCall(server, { secretId: ACME.secretId, secretKey: 'wrong-key-0000000000000000000000' }, { action: 'CreatePurgeTask', version: TEO });
  const legacy = await fetch(`${server.url}/v2/index.php?Action=RefreshCdnUrl`);
  assert.equal(legacy.status, 200);
  const log = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request');
  assert.equal(log.length, 4, lines.join(''));
  const [a, b, c, d] = log;
  assert.deepEqual({ ...a, t: undefined, durationMs: undefined }, { t: undefined, level: 'info', msg: 'request', api: 'teo', action: 'DescribeContentQuota', account: ACME.appId, code: 'Success', durationMs: undefined, requestId: ok.response.RequestId });
  assert.equal(typeof a!.durationMs, 'number');
  assert.deepEqual([b!.api, b!.action, b!.account, b!.code, b!.requestId], ['cdn', 'PurgeUrlsCache', ACME.appId, 'ResourceNotFound.CdnHostNotExists', bad.response.RequestId]);
  assert.deepEqual([c!.api, c!.action, c!.account, c!.code], ['teo', 'CreatePurgeTask', null, forged.response.Error!.Code]);
  assert.deepEqual([d!.api, d!.account, d!.requestId], ['v2', null, null]);

  const quiet: string[] = [];
  const off = await startControlPlane(t, { ...baseConfig(), server: { listen: '127.0.0.1:0', accessLog: false } }, { logger: createLogger('info', (l) => quiet.push(l)) });
  await rawCall(off, ACME, { action: 'DescribeContentQuota', version: TEO, body: { ZoneId: ACME.zoneId } });
  assert.deepEqual(quiet.filter((l) => l.includes('"msg":"request"')), []);
});

test('label cardinality: random Action names and versions from an attacker do not grow the series', async (t) => {
  const server = await startControlPlane(t);
  const junk = () => randomBytes(6).toString('hex');
  for (let i = 0; i < 60; i++) {
    // Signed by a real key (InvalidAction), unsigned garbage, unknown versions, and legacy GETs.
    await rawCall(server, ACME, { action: `Evil${junk()}`, version: i % 2 ? TEO : CDN });
    await rawCall(server, ACME, { action: `Evil${junk()}`, version: `20${junk()}` });
    await fetch(`${server.url}/`, { method: 'POST', headers: { 'X-TC-Action': `Evil${junk()}`, 'X-TC-Version': TEO }, body: '{}' });
    await fetch(`${server.url}/v2/index.php?Action=Evil${junk()}&SecretId=x`);
  }
  const m = await scrape(server.url);
  const series = m.all('edgepurge_api_requests_total');
  const known = new Set(['unknown', ...V2_ACTIONS.keys(), ...[...API3_ACTIONS.values()].flatMap((a) => [...a.keys()])]);
  for (const s of series) assert.ok(known.has(s.labels.action!), `action label ${s.labels.action}`);
  assert.ok(series.length <= 12, `${series.length} series: ${series.map((s) => JSON.stringify(s.labels)).join(' ')}`);
  assert.equal(series.reduce((n, s) => n + s.value, 0), 240);
  assert.doesNotMatch(m.text, /Evil/);
});
