// `edgepurge agent` with a real nginx: purges submitted through the official SDK are applied through the
// nginx driver and the task succeeds once applied; nginx cannot fence itself, so a node whose agent is
// dead is never counted as fenced: its tasks stay processing until they time out (issue 8).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { startAgent, type RunningAgent } from '../../src/cli/agent.ts';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/shared/logger.ts';
import { ACME, baseConfig, startControlPlane, type TestServer } from '../helpers/control-plane.ts';
import { teoClient } from '../helpers/sdk.ts';
import { adminJob, runCli, until, type AdminJobView } from '../e2e/helpers.ts';
import { nginxMissing, startNginxHarness, type NginxHarness } from './nginx-harness.ts';

const missing = nginxMissing();
const skip = missing !== undefined && process.env.CI !== 'true' ? `SKIPPED: ${missing}` : false;
if (skip) console.warn(`\n*** agent-nginx tests ${skip} ***\n`);

const LEASE_MS = 1000;
const TASK_TIMEOUT_MS = 4000;

interface Setup {
  readonly h: NginxHarness;
  readonly server: TestServer;
  readonly agent: RunningAgent;
  status(jobId: string): Promise<string>;
}

async function setup(t: TestContext): Promise<Setup> {
  if (missing) throw new Error(`nginx with the cache-purge module is required under CI=true: ${missing}`);
  const h = await startNginxHarness(t, { startDriver: false });
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-agent-nginx-'));
  const base = baseConfig(`http://127.0.0.1:${h.origin.port}`);
  const input: ConfigInput = {
    ...base,
    fanout: { leaseMs: LEASE_MS, taskTimeoutMs: TASK_TIMEOUT_MS },
    accounts: base.accounts?.map((a) => ({ ...a, rateLimit: false as const })),
    nodes: [{ id: 'nginx-1', token: 'nginx-1-token-0123456789', hosts: [ACME.host], stateFile: join(dir, 'nginx-1.seq'), driver: { type: 'nginx', url: h.driverOptions.cacheUrl, purgeUrl: h.driverOptions.purgeUrl, cacheDir: h.driverOptions.cacheDir, levels: '1:2' } }],
  };
  const server = await startControlPlane(t, input, { heartbeatMs: 100 });
  const config = parseConfig({ ...input, server: { listen: server.endpoint }, store: { driver: 'sqlite', path: join(dir, 'unused.db') } });
  const agent = await startAgent(config, 'nginx-1', silentLogger, { baseDir: dir, controlPlane: server.url });
  t.after(() => agent.close());
  // After the agent's own cleanup (registered first, run first), which writes its seq file.
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const teo = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  return {
    h,
    server,
    agent,
    async status(jobId) {
      const r = await teo.DescribePurgeTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'job-id', Values: [jobId] }] });
      return String(r.Tasks[0]?.Status);
    },
  };
}


test('nginx: a prefix purge through the SDK is applied by the agent, then success; objects outside it stay HIT', { skip }, async (t) => {
  const s = await setup(t);
  const teo = teoClient(s.server.endpoint, ACME.secretId, ACME.secretKey);
  await until('the agent to connect', async () => s.agent.agent.connected);
  for (const p of ['/a/1.txt', '/b/1.txt']) {
    await s.h.get(ACME.host, p);
    assert.equal((await s.h.get(ACME.host, p)).xcache, 'HIT');
  }
  s.h.origin.bump(ACME.host, '/a/1.txt');
  const { JobId } = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_prefix', Method: 'delete', Targets: [`http://${ACME.host}/a/`] });
  await until('the purge to succeed', async () => (await s.status(JobId)) === 'success');
  const purged = await s.h.get(ACME.host, '/a/1.txt');
  assert.notEqual(purged.xcache, 'HIT');
  assert.equal(purged.originHits, 1);
  assert.equal((await s.h.get(ACME.host, '/b/1.txt')).xcache, 'HIT');
});

test('nginx: every purge type × method through the SDK ends success, and the admin view and `tasks show` say what nginx executed and matched', { skip }, async (t) => {
  const s = await setup(t);
  const teo = teoClient(s.server.endpoint, ACME.secretId, ACME.secretKey);
  await until('the agent to connect', async () => s.agent.agent.connected);
  // Per type: what to warm, the request, and the files the driver's index must find (host and all: at least these).
  const cases = (method: 'invalidate' | 'delete') => {
    const base = `/report-${method}`;
    s.h.origin.setHeaders(ACME.host, `${base}/t1.txt`, { 'cache-tag': `tag-${method}` });
    s.h.origin.setHeaders(ACME.host, `${base}/t2.txt`, { 'cache-tag': `other, tag-${method}` });
    return [
      { type: 'purge_url', warm: [`${base}/u.txt`], params: { Targets: [`http://${ACME.host}${base}/u.txt`] }, matched: 1, exact: true },
      { type: 'purge_prefix', warm: [`${base}/p/1.txt`, `${base}/p/2.txt`], params: { Targets: [`http://${ACME.host}${base}/p/`] }, matched: 2, exact: true },
      { type: 'purge_host', warm: [`${base}/h.txt`], params: { Targets: [ACME.host] }, matched: 1, exact: false },
      { type: 'purge_all', warm: [`${base}/a.txt`], params: {}, matched: 1, exact: false },
      { type: 'purge_cache_tag', warm: [`${base}/t1.txt`, `${base}/t2.txt`], params: { Targets: [`tag-${method}`], CacheTag: { Domains: [ACME.host] } }, matched: 2, exact: true },
    ] as const;
  };
  let urlInvalidate = '';
  for (const method of ['invalidate', 'delete'] as const) {
    for (const c of cases(method)) {
      for (const p of c.warm) {
        await s.h.get(ACME.host, p);
        assert.equal((await s.h.get(ACME.host, p)).xcache, 'HIT', `${p} is cached before ${c.type} ${method}`);
      }
      const { JobId } = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: c.type, Method: method, ...c.params });
      const job = await until(`${c.type} ${method} to settle`, async () => {
        const j = await adminJob(s.server.url, JobId);
        return j.Tasks.every((x) => x.Status !== 'processing') ? j : undefined;
      });
      const what = `${c.type} ${method}`;
      for (const task of job.Tasks) {
        assert.equal(task.Status, 'success', what);
        const n = task.Nodes[0]!;
        // nginx revalidates on invalidate (proxy_cache_revalidate): executed as asked.
        assert.deepEqual([task.Nodes.length, n.NodeId, n.State, n.Driver, n.ExecutedAs], [1, 'nginx-1', 'applied', 'nginx', method], what);
        if (c.exact) assert.equal(n.Matched, c.matched, `${what}: files matched`);
        else assert.ok(n.Matched !== null && n.Matched >= c.matched, `${what}: ${n.Matched} files matched`);
        assert.ok(n.AppliedAt !== null, what);
      }
      if (c.type === 'purge_url' && method === 'invalidate') urlInvalidate = JobId;
    }
  }
  const out = await runCli(s.server.url, ['tasks', 'show', urlInvalidate]);
  assert.equal(out.code, 0, out.stderr);
  // Target, Node, Driver, State, ExecutedAs, Matched, AppliedAt, AckedSeq
  assert.match(out.stdout, new RegExp(`http://${ACME.host}/report-invalidate/u.txt\\s+nginx-1\\s+nginx\\s+applied\\s+invalidate\\s+1\\s+\\d{4}-\\d\\d-\\d\\dT\\S+\\s+\\d+`), out.stdout);
  const json = JSON.parse((await runCli(s.server.url, ['tasks', 'show', urlInvalidate, '--json'])).stdout) as { Progress: AdminJobView['Tasks'] };
  assert.equal(json.Progress[0]!.Nodes[0]!.Matched, 1);
});

test('nginx: a node whose agent died is never fenced — its task stays processing past the lease and ends as timeout, never success', { skip }, async (t) => {
  const s = await setup(t);
  const teo = teoClient(s.server.endpoint, ACME.secretId, ACME.secretKey);
  await until('the agent to connect', async () => s.agent.agent.connected);
  await s.h.get(ACME.host, '/c.txt');
  await s.agent.close();
  const { JobId } = await teo.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Method: 'delete', Targets: [`http://${ACME.host}/c.txt`] });
  await new Promise((r) => setTimeout(r, LEASE_MS * 2));
  assert.equal(await s.status(JobId), 'processing', 'a dead nginx agent counted as fenced');
  // nginx still serves the purged copy: that is why the node cannot count as done.
  assert.equal((await s.h.get(ACME.host, '/c.txt')).xcache, 'HIT');
  await until('the task to time out', async () => (await s.status(JobId)) !== 'processing' || undefined, TASK_TIMEOUT_MS + 5000);
  assert.equal(await s.status(JobId), 'timeout');
});

test('an agent that cannot write its stateFile refuses to start, naming stateFile and the fix, before it touches the cache', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-agent-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A path under a regular file cannot be created, whoever runs the test (root too).
  writeFileSync(join(dir, 'not-a-dir'), '');
  const config = parseConfig({
    ...baseConfig('http://127.0.0.1:9'),
    nodes: [
      {
        id: 'nginx-1',
        token: 'nginx-1-token-0123456789',
        stateFile: join(dir, 'not-a-dir', 'nginx-1.seq'),
        driver: { type: 'nginx', url: 'http://127.0.0.1:9', purgeUrl: 'http://127.0.0.1:9', cacheDir: join(dir, 'cache') },
      },
    ],
  });
  await assert.rejects(startAgent(config, 'nginx-1', silentLogger, { baseDir: dir }), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.match(err.message, /stateFile: the agent cannot write .*not-a-dir\/nginx-1\.seq \((ENOTDIR|EEXIST)\); point it at a directory/);
    return true;
  });
});
