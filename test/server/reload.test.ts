// Configuration reload (DESIGN "Declarative configuration": reloaded on SIGHUP): credentials, quotas
// and domains change without a restart; a bad file keeps the running configuration.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { ACME, baseConfig, startControlPlane } from '../helpers/control-plane.ts';
import { sdkError, teoClient } from '../helpers/sdk.ts';

const NEW_KEY = { secretId: 'AKIDacmeRotated00000000000000000000002', secretKey: 'acmeRotatedSecretKey000000000000002' };

/** ACME with its key rotated, a tighter URL quota and a third domain in its first zone. */
function rotated(): ConfigInput {
  const cfg = baseConfig();
  const [acme, ...rest] = cfg.accounts ?? [];
  const zones = (acme!.zones ?? []).map((z, i) => (i === 0 ? { ...z, domains: [...(z.domains ?? []), { host: 'new.acme.com', origin: 'http://127.0.0.1:9' }] } : z));
  return { ...cfg, accounts: [{ ...acme!, credentials: [NEW_KEY], quotas: { purge_url: { batch: 5, daily: 50 } }, zones }, ...rest] };
}

test('reload swaps credentials, quotas and domains for the next request; listen and store stay', async (t) => {
  const server = await startControlPlane(t);
  const old = teoClient(server.endpoint, ACME.secretId, ACME.secretKey);
  await old.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/before`] });

  const notes = server.controlPlane.reload(parseConfig({ ...rotated(), server: { listen: '127.0.0.1:1' }, store: { driver: 'sqlite', path: join(server.dir, 'edgepurge.db') } }));
  assert.deepEqual(notes, ['server.listen stays 127.0.0.1:0 until a restart']);

  assert.equal((await sdkError(old.DescribeContentQuota({ ZoneId: ACME.zoneId }))).code, 'AuthFailure.SecretIdNotFound');
  const fresh = teoClient(server.endpoint, NEW_KEY.secretId, NEW_KEY.secretKey);
  const quota = await fresh.DescribeContentQuota({ ZoneId: ACME.zoneId });
  const url = quota.PurgeQuota.find((q: { Type: string }) => q.Type === 'purge_url');
  assert.deepEqual([url.Batch, url.Daily, url.DailyAvailable], [5, 50, 49], 'the new limits, the same counters');
  const r = await fresh.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: ['http://new.acme.com/x'] });
  assert.deepEqual(r.FailedList, []);
  const history = await fresh.DescribePurgeTasks({ ZoneId: ACME.zoneId, Filters: [{ Name: 'target', Values: ['before'], Fuzzy: true }], StartTime: new Date(Date.now() - 60_000).toISOString(), EndTime: new Date(Date.now() + 60_000).toISOString() });
  assert.equal(history.TotalCount, 1, 'history is the account\'s, whatever key reads it');
});

test('SIGHUP reloads a running `serve`; a broken file is reported and the running configuration kept', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-reload-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'edgepurge.json');
  const write = (cfg: unknown) => writeFileSync(file, JSON.stringify(cfg));
  const cfg = { ...baseConfig(), store: { driver: 'sqlite', path: join(dir, 'db.sqlite') } };
  write(cfg);
  const child = spawn(process.execPath, [...NODE_FLAGS, 'src/cli/main.ts', 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  while (!/on http:\/\/127\.0\.0\.1:(\d+)/.test(out)) await once(child.stdout, 'data');
  const endpoint = `127.0.0.1:${/on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]}`;
  const waitLog = async (re: RegExp) => {
    while (!re.test(err)) await once(child.stderr, 'data');
  };

  write({ ...rotated(), store: cfg.store });
  child.kill('SIGHUP');
  await waitLog(/configuration reloaded/);
  const fresh = teoClient(endpoint, NEW_KEY.secretId, NEW_KEY.secretKey);
  assert.ok((await fresh.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: ['http://new.acme.com/y'] })).JobId);

  writeFileSync(file, '{ "accounts": [ { "appId": "not a number" } ] }');
  child.kill('SIGHUP');
  await waitLog(/configuration not reloaded/);
  assert.ok((await fresh.CreatePurgeTask({ ZoneId: ACME.zoneId, Type: 'purge_url', Targets: ['http://new.acme.com/z'] })).JobId, 'still serving the last good configuration');
});
