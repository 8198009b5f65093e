// Webhook delivery survives kill -9 (issue 10): the real CLI `serve` settles jobs whose deliveries the
// receiver refuses, then hangs on, and is SIGKILLed with every event undelivered, some in flight. A
// restart on the same database delivers each one: nothing lost, repeats only as at-least-once allows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { until } from '../e2e/helpers.ts';
import { ACME } from '../helpers/control-plane.ts';
import { api, serve, serveSandbox } from '../helpers/serve-process.ts';
import { hang, startReceiver } from './receiver.ts';
import { writeHookConfig } from './hook-config.ts';

const JOBS = 40;

test('kill -9 with undelivered and in-flight webhooks: the restarted control plane delivers every event', async (t) => {
  const { dir, running } = serveSandbox(t, 'edgepurge-hook-kill9-');
  const receiver = await startReceiver(t);
  receiver.answer = (_r, res) => res.writeHead(503).end();
  const configPath = writeHookConfig(dir, receiver.url, '{ timeoutMs: 1000, backoff: { baseMs: 100, maxMs: 300 }, pollMs: 50, concurrency: 4 }');
  const first = await serve(configPath);
  running.push(first.child);
  const jobs = new Set<string>();
  for (let i = 0; i < JOBS; i++) {
    const r = await api(first.base, 'CreatePurgeTask', { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}/k9/${i}`] });
    jobs.add(String(r.JobId));
  }
  const attempted = () => new Set(receiver.received.map((r) => r.json.job.JobId));
  await until('every job settled and attempted once (refused)', () => (attempted().size === JOBS ? true : undefined), 30_000);
  // Now the retries hang: the kill lands with deliveries in flight.
  receiver.answer = hang;
  const before = receiver.received.length;
  await until('retries in flight', () => (receiver.received.length >= before + 4 ? true : undefined), 10_000);
  assert.equal(first.child.kill('SIGKILL'), true);
  assert.equal(await first.exited, 'SIGKILL');

  receiver.answer = (_r, res) => res.writeHead(204).end();
  const accepted = new Set<string>();
  const ids = new Map<string, Set<string>>();
  const record = receiver.answer;
  receiver.answer = (r, res) => {
    accepted.add(r.json.job.JobId);
    ids.set(r.json.job.JobId, (ids.get(r.json.job.JobId) ?? new Set()).add(r.json.id));
    record(r, res);
  };
  const second = await serve(configPath);
  running.push(second.child);
  await until('every event delivered after the restart', () => (accepted.size === JOBS ? true : undefined), 30_000);
  for (const jobId of jobs) assert.ok(accepted.has(jobId), `job ${jobId} delivered`);
  // At-least-once, not more: one event id per job, whichever attempt carried it.
  for (const [jobId, set] of ids) assert.equal(set.size, 1, `job ${jobId}: one event id`);
  for (const r of receiver.received) assert.ok(jobs.has(r.json.job.JobId), 'no event for a job that was never acknowledged');
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0);
});
