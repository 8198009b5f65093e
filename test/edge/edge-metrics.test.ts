// The built-in edge's /metrics, /healthz and /readyz on its own `metrics.listen` address, next to a
// real control plane and origin, with purges made through the official SDK (issue 10).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEdgeNode } from '../../src/cli/edge.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { edgeGet, Origin, until } from '../e2e/helpers.ts';
import { ACME, baseConfig, startControlPlane } from '../helpers/control-plane.ts';
import { scrape } from '../helpers/prometheus.ts';
import { teoClient } from '../helpers/sdk.ts';

const TOKEN = 'metrics-token-0123456789abcdef';

test('edge /metrics: hits, misses, revalidations, purges applied, live rules, bytes cached; /readyz follows the control plane', async (t) => {
  const origin = await new Origin().start();
  t.after(() => origin.close());
  const input: ConfigInput = {
    ...baseConfig(origin.url),
    metrics: { token: TOKEN },
    fanout: { leaseMs: 1500 },
    nodes: [{ id: 'edge-1', listen: '127.0.0.1:0', token: 'token-edge-1-0123456789', metrics: { listen: '127.0.0.1:0' } }],
  };
  const server = await startControlPlane(t, input, { heartbeatMs: 100 });
  const edge = await startEdgeNode(parseConfig(input), 'edge-1', silentLogger, { controlPlane: server.url });
  t.after(() => edge.close());
  const base = `http://127.0.0.1:${edge.metricsPort}`;
  await until('the edge to be ready', async () => (await fetch(`${base}/readyz`)).status === 200);
  assert.equal((await fetch(`${base}/metrics`)).status, 401, 'the token applies to the edge as well');
  // The proxied listener still relays /metrics to the origin: nothing collides.
  assert.notEqual((await edgeGet(edge.port, ACME.host, '/metrics')).headers['x-cache'], undefined);

  const get = async (path: string) => (await edgeGet(edge.port, ACME.host, path)).headers['x-cache'];
  assert.equal(await get('/a.txt'), 'MISS');
  assert.equal(await get('/a.txt'), 'HIT');
  const teo = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'invalidate', Targets: [`http://${ACME.host}/a.txt`] });
  await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Targets: [`http://${ACME.host}/dir/`] });
  const lastSeq = await server.store.lastSeq();
  await until('the edge to apply both purges', () => edge.proxy.appliedSeq >= lastSeq);
  assert.equal(await get('/a.txt'), 'REVALIDATED');

  const m = await scrape(base, TOKEN);
  const node = { node: 'edge-1' };
  assert.equal(m.value('edgepurge_edge_hits_total', node), 1);
  assert.equal(m.value('edgepurge_edge_misses_total', node), 2, 'the first GET and the origin fetch of /metrics');
  assert.equal(m.value('edgepurge_edge_revalidations_total', node), 1);
  assert.equal(m.value('edgepurge_edge_purges_applied_total', { ...node, type: 'purge_url' }), 1);
  assert.equal(m.value('edgepurge_edge_purges_applied_total', { ...node, type: 'purge_prefix' }), 1);
  assert.equal(m.value('edgepurge_edge_live_rules', node), 1);
  assert.equal(m.value('edgepurge_edge_cached_objects', node), 2);
  assert.ok(m.value('edgepurge_edge_cached_bytes', node) > 512);
  assert.equal(m.value('edgepurge_edge_applied_seq', node), lastSeq);
  assert.equal(m.value('edgepurge_edge_stream_connected', node), 1);
  assert.ok(m.value('edgepurge_edge_lease_expiry_timestamp_seconds', node) > Date.now() / 1000 - 1);

  // The control plane gone: alive, but not ready (no stream, and the lease runs out).
  await server.close();
  await until('/readyz to turn 503', async () => (await fetch(`${base}/readyz`)).status === 503, 10_000);
  const body = await (await fetch(`${base}/readyz`)).text();
  assert.match(body, /FAIL connected to the control plane/);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  await until('the lease to lapse', async () => /FAIL caught up/.test(await (await fetch(`${base}/readyz`)).text()), 10_000);
  assert.equal((await scrape(base, TOKEN)).value('edgepurge_edge_stream_connected', node), 0);
});
