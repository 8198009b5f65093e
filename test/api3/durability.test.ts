// Acknowledged means durable (DESIGN invariant 1) at the HTTP level: the real CLI `serve` runs as a
// child process, CreatePurgeTask calls stream in, the server is SIGKILLed mid-stream and restarted on
// the same database, and every JobId it had acknowledged is listed with all its tasks.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ACME } from '../helpers/control-plane.ts';
import { acmeAccountsYaml, api, serve, serveSandbox } from '../helpers/serve-process.ts';

const TARGETS_PER_JOB = 3;

test('every JobId acknowledged before kill -9 is listed with all its tasks after a restart', async (t) => {
  const { dir, running } = serveSandbox(t, 'edgepurge-kill9-');
  const configPath = join(dir, 'edgepurge.yaml');
  writeFileSync(
    configPath,
    `server: { listen: "127.0.0.1:0" }
store: { driver: sqlite, path: ${JSON.stringify(join(dir, 'edgepurge.db'))} }
${acmeAccountsYaml('quotas: { purge_url: { batch: 100, daily: 1000000 } }')}`,
  );

  const first = await serve(configPath);
  running.push(first.child);
  const acked = new Map<string, string[]>();
  let killed = false;
  let n = 0;
  const worker = async () => {
    while (!killed) {
      const i = n++;
      const targets = Array.from({ length: TARGETS_PER_JOB }, (_, k) => `http://${ACME.host}/kill9/${i}/${k}`);
      try {
        const r = await api(first.base, 'CreatePurgeTask', { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: targets });
        acked.set(String(r.JobId), targets);
      } catch {
        // The connection died with the server: that call was never acknowledged.
      }
    }
  };
  const workers = Array.from({ length: 8 }, worker);
  // Kill while calls are in flight, once a good number has been acknowledged.
  const started = Date.now();
  while (acked.size < 150 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 5));
  assert.equal(first.child.kill('SIGKILL'), true);
  killed = true;
  assert.equal(await first.exited, 'SIGKILL');
  await Promise.all(workers);
  assert.ok(acked.size >= 150, `only ${acked.size} jobs acknowledged before the kill`);

  const second = await serve(configPath);
  running.push(second.child);
  const now = Date.now();
  const listed = new Map<string, string[]>();
  let total = Infinity;
  for (let offset = 0; offset < total; offset += 1000) {
    const page = await api(second.base, 'DescribePurgeTasks', {
      ZoneId: ACME.zoneId,
      StartTime: new Date(now - 3_600_000).toISOString(),
      EndTime: new Date(now + 60_000).toISOString(),
      Offset: offset,
      Limit: 1000,
    });
    total = page.TotalCount as number;
    for (const task of page.Tasks as Array<{ JobId: string; Target: string }>) listed.set(task.JobId, [...(listed.get(task.JobId) ?? []), task.Target]);
  }
  for (const [jobId, targets] of acked) {
    assert.deepEqual((listed.get(jobId) ?? []).sort(), [...targets].sort(), `acknowledged job ${jobId}`);
  }
  // No half-written job either: every job that exists has all its tasks.
  for (const [jobId, targets] of listed) assert.equal(targets.length, TARGETS_PER_JOB, `job ${jobId}`);
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0);
});
