// Issue 10 figures for completion webhooks: settle → delivered latency with a local receiver, and events
// lost across a kill -9 of the control plane (the real `serve` as a child process, SQLite store).
import { ACME } from '../test/helpers/control-plane.ts';
import { api, serve, serveSandbox } from '../test/helpers/serve-process.ts';
import { hang, startReceiver } from '../test/webhooks/receiver.ts';
import { writeHookConfig } from '../test/webhooks/hook-config.ts';
import { until } from '../test/e2e/helpers.ts';
import { quantile } from './stats.ts';

export interface WebhookBench {
  readonly jobs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly killJobs: number;
  readonly lost: number;
  /** Deliveries beyond the first 2xx per job after the restart (at-least-once repeats). */
  readonly repeats: number;
}

async function purge(base: string, path: string): Promise<string> {
  return String((await api(base, 'CreatePurgeTask', { ZoneId: ACME.zoneId, Type: 'purge_url', Targets: [`http://${ACME.host}${path}`] })).JobId);
}

export async function benchWebhooks(o: { jobs?: number; killJobs?: number } = {}): Promise<WebhookBench> {
  const cleanups: Array<() => unknown> = [];
  const t = { after: (fn: () => unknown) => void cleanups.push(fn) };
  try {
    const jobs = o.jobs ?? 500;
    const killJobs = o.killJobs ?? 200;

    // Settle → delivered: the body's `created` is the settle time, taken on this machine's clock.
    const receiver = await startReceiver(t);
    const { dir, running } = serveSandbox(t, 'edgepurge-bench-hooks-');
    const server = await serve(writeHookConfig(dir, receiver.url, '{}'));
    running.push(server.child);
    for (let i = 0; i < jobs; i++) {
      await purge(server.base, `/lat/${i}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    await until('every event delivered', () => (receiver.received.length >= jobs ? true : undefined), 120_000);
    const latencies = receiver.received.map((r) => r.at - Date.parse((r.json as unknown as { created: string }).created));
    server.child.kill('SIGTERM');
    await server.exited;

    // kill -9 with every event undelivered (refused, then in flight), a restart, then count.
    const sink = await startReceiver(t);
    sink.answer = (_r, res) => res.writeHead(503).end();
    const box = serveSandbox(t, 'edgepurge-bench-hooks-k9-');
    const config = writeHookConfig(box.dir, sink.url, '{ timeoutMs: 1000, backoff: { baseMs: 200, maxMs: 1000 }, concurrency: 8 }');
    const first = await serve(config);
    box.running.push(first.child);
    const acked = new Set<string>();
    for (let i = 0; i < killJobs; i++) acked.add(await purge(first.base, `/k9/${i}`));
    await until('every event attempted once', () => (new Set(sink.received.map((r) => r.json.job.JobId)).size >= killJobs ? true : undefined), 120_000);
    sink.answer = hang;
    const before = sink.received.length;
    await until('deliveries in flight', () => (sink.received.length >= before + 8 ? true : undefined), 30_000);
    first.child.kill('SIGKILL');
    await first.exited;
    const delivered = new Map<string, number>();
    sink.answer = (r, res) => {
      delivered.set(r.json.job.JobId, (delivered.get(r.json.job.JobId) ?? 0) + 1);
      res.writeHead(204).end();
    };
    const second = await serve(config);
    box.running.push(second.child);
    // Rows held by the killed process come back once their hold (timeout + 5 s) lapses.
    await until('every event delivered after the restart', () => ([...acked].every((j) => delivered.has(j)) ? true : undefined), 60_000).catch(() => undefined);
    const lost = [...acked].filter((j) => !delivered.has(j)).length;
    const repeats = [...delivered.values()].reduce((n, c) => n + c - 1, 0);
    second.child.kill('SIGTERM');
    await second.exited;
    return { jobs, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99), maxMs: Math.max(...latencies), killJobs, lost, repeats };
  } finally {
    for (const c of cleanups.reverse()) await c();
  }
}
