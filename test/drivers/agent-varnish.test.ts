// `edgepurge agent` with a real varnishd: purges submitted through the official SDK are applied to Varnish
// in order and acked only once applied; a dead agent's Varnish stops serving hits when its lease lapses,
// and only then does the control plane count the node as fenced (issue 8).
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { startAgent, type RunningAgent } from '../../src/cli/agent.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { ACME, baseConfig, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { scrape } from '../helpers/prometheus.ts';
import { teoClient } from '../helpers/sdk.ts';
import { adminJob, runCli, until, type AdminJobView } from '../e2e/helpers.ts';
import { startConformanceOrigin, type ConformanceOrigin } from './driver-conformance.ts';
import { operatorVcl, TEST_VARNISHD_ARGS } from './varnish-harness.ts';
import { startVarnishd, varnishdMissing, type Varnishd } from './varnishd.ts';

const missing = varnishdMissing();
const skip = missing !== undefined && process.env.CI !== 'true' ? `SKIPPED: ${missing}` : false;
if (skip) console.warn(`\n*** agent-varnish tests ${skip} ***\n`);

const LEASE_MS = 1500;
const TOKEN = 'varnish-1-token-0123456789';

interface Setup {
  readonly origin: ConformanceOrigin;
  readonly varnishd: Varnishd;
  readonly server: TestServer;
  readonly dir: string;
  agent: RunningAgent;
  readonly input: ConfigInput;
  get(path: string): Promise<{ body: string; xcache: string }>;
  restartAgent(): Promise<void>;
}

async function setup(t: TestContext): Promise<Setup> {
  if (missing) throw new Error(`varnishd is required under CI=true: ${missing}`);
  const origin = await startConformanceOrigin();
  t.after(() => origin.close());
  const varnishd = await startVarnishd({ vcl: operatorVcl(origin.port), args: TEST_VARNISHD_ARGS });
  t.after(() => varnishd.close());
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-agent-'));
  const base = baseConfig(`http://127.0.0.1:${origin.port}`);
  const input: ConfigInput = {
    ...base,
    fanout: { leaseMs: LEASE_MS },
    accounts: base.accounts?.map((a) => ({ ...a, rateLimit: false as const })),
    nodes: [
      {
        id: 'varnish-1', token: TOKEN, hosts: [ACME.host], stateFile: join(dir, 'varnish-1.seq'),
        driver: { type: 'varnish', url: varnishd.url, admin: varnishd.admin, secretFile: varnishd.secretFile },
        metrics: { listen: '127.0.0.1:0' },
      },
    ],
  };
  const server = await startControlPlane(t, input, { heartbeatMs: 100 });
  const config = () => parseConfig({ ...input, server: { listen: server.endpoint }, store: { driver: 'sqlite', path: join(dir, 'unused.db') } });
  const s: Setup = {
    origin,
    varnishd,
    server,
    dir,
    input,
    agent: await startAgent(config(), 'varnish-1', silentLogger, { baseDir: dir, controlPlane: server.url }),
    get: (path) =>
      new Promise((resolve, reject) => {
        // (fetch cannot set Host.)
        const req = http.get({ host: '127.0.0.1', port: varnishd.port, path, headers: { host: ACME.host }, agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ body, xcache: String(res.headers['x-cache'] ?? '') }));
        });
        req.on('error', reject);
      }),
    async restartAgent() {
      await s.agent.close();
      s.agent = await startAgent(config(), 'varnish-1', silentLogger, { baseDir: dir, controlPlane: server.url });
    },
  };
  t.after(() => s.agent.close());
  // After the agent's own cleanup (registered first, run first), which writes its seq file.
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Hits only once the agent holds a lease.
  await until('varnish to serve hits', async () => (await s.get('/warmup')).xcache === 'HIT');
  return s;
}


async function taskStatus(s: Setup, jobId: string): Promise<string> {
  const teo = teoClient(s.server.endpoint, ACME.secretId, ACME.secretKey);
  const r = await teo.DescribePurgeTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [jobId] }] });
  return String(r.Tasks[0]?.Status);
}

test('a purge submitted through the SDK is applied to Varnish by the agent, then the task is success; objects outside it stay HIT', { skip }, async (t) => {
  const s = await setup(t);
  const teo = teoClient(s.server.endpoint, ACME.secretId, ACME.secretKey);
  for (const p of ['/a/1.txt', '/a/2.txt', '/b/1.txt']) {
    await s.get(p);
    assert.equal((await s.get(p)).xcache, 'HIT');
  }
  for (const [type, target, purged, kept] of [
    ['purge_url', `http://${ACME.host}/a/1.txt`, '/a/1.txt', '/a/2.txt'],
    ['purge_prefix', `http://${ACME.host}/a/`, '/a/2.txt', '/b/1.txt'],
  ] as const) {
    s.origin.bump(ACME.host, purged);
    const { JobId } = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: type, Method: 'delete', Targets: [target] });
    await until(`${type} to succeed`, async () => (await taskStatus(s, JobId)) === 'success');
    const after = await s.get(purged);
    assert.match(after.body, / v2$/, `${type}: ${JSON.stringify(after)}`);
    assert.equal((await s.get(kept)).xcache, 'HIT', `${type} kept ${kept}`);
  }
  // The applied seq is on disk: a restarted agent resumes there instead of emptying the cache.
  await until('the seq file', async () => Number(readFileSync(join(s.dir, 'varnish-1.seq'), 'utf8')) >= 2);
  await s.restartAgent();
  await until('hits after the agent restarted', async () => (await s.get('/b/1.txt')).xcache === 'HIT');
});

/** Waits until every task of the job has left processing; its admin view then. */
async function settled(s: Setup, jobId: string): Promise<AdminJobView> {
  return until(`job ${jobId} to settle`, async () => {
    const job = await adminJob(s.server.url, jobId);
    return job.Tasks.every((t) => t.Status !== 'processing') ? job : undefined;
  });
}

test('every purge type × method through the SDK ends success, and the admin view and `tasks show` say what Varnish executed and matched', { skip }, async (t) => {
  const s = await setup(t);
  const teo = teoClient(s.server.endpoint, ACME.secretId, ACME.secretKey);
  const BAN_NOTE = /bans are hard/;
  // Per type: what to warm, the request, and what Varnish reports: an invalidate it can only ban is a delete.
  const cases = (method: 'invalidate' | 'delete') => {
    const base = `/report-${method}`;
    s.origin.respond(ACME.host, `${base}/t1.txt`, { 'cache-tag': `tag-${method}` });
    s.origin.respond(ACME.host, `${base}/t2.txt`, { 'cache-tag': `other, tag-${method}` });
    return [
      { type: 'purge_url', warm: [`${base}/u.txt`], params: { Targets: [`http://${ACME.host}${base}/u.txt`] }, executedAs: method, matched: 1 },
      { type: 'purge_prefix', warm: [`${base}/p/1.txt`], params: { Targets: [`http://${ACME.host}${base}/p/`] }, executedAs: 'delete', matched: null },
      { type: 'purge_host', warm: [`${base}/h.txt`], params: { Targets: [ACME.host] }, executedAs: 'delete', matched: null },
      { type: 'purge_all', warm: [`${base}/a.txt`], params: {}, executedAs: 'delete', matched: null },
      { type: 'purge_cache_tag', warm: [`${base}/t1.txt`, `${base}/t2.txt`], params: { Targets: [`tag-${method}`], CacheTag: { Domains: [ACME.host] } }, executedAs: method, matched: 2 },
    ] as const;
  };
  let prefixInvalidate = '';
  for (const method of ['invalidate', 'delete'] as const) {
    for (const c of cases(method)) {
      for (const p of c.warm) {
        await s.get(p);
        assert.equal((await s.get(p)).xcache, 'HIT', `${p} is cached before ${c.type} ${method}`);
      }
      const { JobId } = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: c.type, Method: method, ...c.params });
      const job = await settled(s, JobId);
      const what = `${c.type} ${method}`;
      for (const task of job.Tasks) {
        assert.equal(task.Status, 'success', what);
        assert.equal(task.Nodes.length, 1, what);
        const n = task.Nodes[0]!;
        assert.deepEqual([n.NodeId, n.State, n.Driver, n.ExecutedAs, n.Matched], ['varnish-1', 'applied', 'varnish', c.executedAs, c.matched], what);
        assert.ok(n.AppliedAt !== null, what);
        if (method === 'invalidate' && c.executedAs === 'delete') assert.match(n.Note ?? '', BAN_NOTE, `${what} says why it was not soft`);
        else assert.equal(n.Note, undefined, what);
      }
      if (c.type === 'purge_prefix' && method === 'invalidate') prefixInvalidate = JobId;
    }
  }
  const out = await runCli(s.server.url, ['tasks', 'show', prefixInvalidate]);
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /Per-node progress:/);
  // Target, Node, Driver, State, ExecutedAs, (Matched: none counted), AppliedAt, AckedSeq
  assert.match(out.stdout, new RegExp(`http://${ACME.host}/report-invalidate/p/\\s+varnish-1\\s+varnish\\s+applied\\s+delete\\s+\\d{4}-\\d\\d-\\d\\dT\\S+\\s+\\d+`), out.stdout);
  const json = JSON.parse((await runCli(s.server.url, ['tasks', 'show', prefixInvalidate, '--json'])).stdout) as { Progress: AdminJobView['Tasks'] };
  assert.match(json.Progress[0]!.Nodes[0]!.Note ?? '', BAN_NOTE, '--json carries the note');
});

test('a dead agent: Varnish stops serving hits once the lease lapses, and only then is the node fenced', { skip }, async (t) => {
  const s = await setup(t);
  const teo = teoClient(s.server.endpoint, ACME.secretId, ACME.secretKey);
  await s.get('/c.txt');
  assert.equal((await s.get('/c.txt')).xcache, 'HIT');
  await s.agent.close();
  s.origin.bump(ACME.host, '/c.txt');
  const submitted = Date.now();
  const { JobId } = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: [`http://${ACME.host}/c.txt`] });
  // Processing while the lease may still let Varnish serve the old copy.
  assert.equal(await taskStatus(s, JobId), 'processing');
  await until('the task to settle', async () => (await taskStatus(s, JobId)) !== 'processing' || undefined, 10_000);
  assert.equal(await taskStatus(s, JobId), 'success');
  // By then the lease in Varnish has lapsed: the new content, never a HIT of the purged copy.
  const after = await s.get('/c.txt');
  assert.match(after.body, / v2$/);
  assert.ok(Date.now() - submitted >= 0);
});

test('the agent\'s /metrics and /readyz: purges applied by type, applied seq, lease; driver errors and retries while Varnish is down', { skip }, async (t) => {
  const s = await setup(t);
  const teo = teoClient(s.server.endpoint, ACME.secretId, ACME.secretKey);
  const base = `http://127.0.0.1:${s.agent.metricsPort}`;
  for (const [type, target] of [['purge_url', `http://${ACME.host}/m/1.txt`], ['purge_prefix', `http://${ACME.host}/m/`]] as const) {
    const { JobId } = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: type, Targets: [target] });
    await until(`${type} to succeed`, async () => (await taskStatus(s, JobId)) === 'success');
  }
  const m = await scrape(base);
  const node = { node: 'varnish-1' };
  assert.equal(m.value('edgepurge_agent_purges_applied_total', { ...node, type: 'purge_url' }), 1);
  assert.equal(m.value('edgepurge_agent_purges_applied_total', { ...node, type: 'purge_prefix' }), 1);
  assert.equal(m.value('edgepurge_agent_applied_seq', node), await s.server.store.lastSeq());
  assert.equal(m.value('edgepurge_agent_stream_connected', node), 1);
  assert.ok(m.value('edgepurge_agent_lease_expiry_timestamp_seconds', node) > Date.now() / 1000 - 1);
  assert.equal(m.value('edgepurge_agent_driver_errors_total', { ...node, kind: 'retryable' }), 0);
  assert.equal((await fetch(`${base}/readyz`)).status, 200);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);

  // Varnish gone: the purge cannot be applied, the agent counts errors and retries, and stops being ready.
  await s.varnishd.close();
  await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/m/2.txt`] });
  const failing = await until('driver errors and retries', async () => {
    const x = await scrape(base);
    return x.value('edgepurge_agent_retries_total', node) >= 1 && x.value('edgepurge_agent_driver_errors_total', { ...node, kind: 'retryable' }) >= 2 ? x : undefined;
  });
  assert.equal(failing.value('edgepurge_agent_queued_entries', node), 1);
  assert.equal(failing.value('edgepurge_agent_purges_applied_total', { ...node, type: 'purge_url' }), 1);
  await until('/readyz to say not caught up', async () => (await fetch(`${base}/readyz`)).status === 503, 10_000);
  assert.match(await (await fetch(`${base}/readyz`)).text(), /FAIL caught up with the purge log/);
});
