// Fan-out to a large fleet (issue 11): from CreatePurgeTask's answer until DescribePurgeTasks says
// `success` (what users and `--wait` see), with N lightweight simulated nodes that speak the real
// stream/ack protocol and ack every entry at once. The control plane runs in its own child process
// (its CPU time is measured from /proc), the nodes in a few others, the client here.
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BENCH_CREDENTIAL, signedRequest } from './api-bench.ts';
import { sendOne } from './load.ts';
import { BenchChild, type AckVia } from './processes.ts';
import { median, quantile } from './stats.ts';

const ZONE = 'zone-fleetbench';
const HOST = 'fleet.bench.test';

export interface FleetFanoutOptions {
  readonly nodes: number;
  /** Processes holding the simulated nodes' streams (default: one per 250 nodes, at least 2). */
  readonly nodeProcesses?: number;
  readonly samples?: number;
  readonly warmup?: number;
  /** Pause between one purge being visible as success and the next being sent. */
  readonly gapMs?: number;
  /** CPUs for the control plane and for the nodes' processes (Linux taskset). */
  readonly serverCpu?: number;
  readonly nodesCpu?: number;
  /** How the nodes ack (default: their ack channels). */
  readonly ackVia?: AckVia;
}

export interface FleetFanoutResult {
  readonly nodes: number;
  readonly samples: number;
  /** CreatePurgeTask answered → DescribePurgeTasks answered `success`. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Control-plane CPU (user + system) over the measured purges, per purge and node, µs. */
  readonly cpuPerPurgeNodeUs: number;
  /** Durable store writes (createJob, acks, settles) over the measured purges, per purge. */
  readonly writesPerPurge: number;
  /** DescribePurgeTasks calls made per purge (polls; each counted in the CPU above). */
  readonly pollsPerPurge: number;
}

/** The control plane's durable store writes so far (edgepurge_store_commit_seconds_count, every op). */
async function storeWrites(agent: http.Agent, port: number): Promise<number> {
  const text = await sendOne(agent, port, { method: 'GET', path: '/metrics', headers: {}, body: '' });
  let n = 0;
  for (const m of text.matchAll(/^edgepurge_store_commit_seconds_count\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

export async function runFleetFanoutBench(o: FleetFanoutOptions): Promise<FleetFanoutResult> {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-fleet-bench-'));
  const nodes = Array.from({ length: o.nodes }, (_, i) => ({ id: `node-${i + 1}`, token: `fleet-bench-token-${i + 1}-xxxxxxxx` }));
  const appId = 1250000001;
  const cp = await BenchChild.start(
    {
      role: 'control-plane',
      reportSettled: true,
      config: {
        server: { listen: '127.0.0.1:0' },
        store: { driver: 'sqlite', path: join(dir, 'edgepurge.db') },
        accounts: [
          {
            appId,
            name: 'bench',
            credentials: [BENCH_CREDENTIAL],
            rateLimit: false,
            quotas: { purge_url: { batch: 1000, daily: 100_000_000 } },
            zones: [{ zoneId: ZONE, name: 'bench.test', domains: [{ host: HOST, origin: 'http://127.0.0.1:9' }] }],
          },
        ],
        nodes: nodes.map((n, i) => ({ ...n, listen: `127.0.0.1:${21_000 + (i % 20_000)}` })),
      },
    },
    o.serverCpu,
    // Flags for the control plane only, e.g. EDGEPURGE_BENCH_CP_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof'.
    process.env.EDGEPURGE_BENCH_CP_FLAGS?.split(' ').filter(Boolean) ?? [],
  );
  const port = cp.port;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const procs = o.nodeProcesses ?? Math.max(2, Math.ceil(o.nodes / 250));
  const sims: BenchChild[] = [];
  try {
    for (let p = 0; p < procs; p++) {
      const mine = nodes.filter((_, i) => i % procs === p);
      if (mine.length) sims.push(await BenchChild.start({ role: 'sim-nodes', controlPlane: `http://127.0.0.1:${port}`, nodes: mine, ackVia: o.ackVia ?? 'channel' }, o.nodesCpu));
    }
    // A settle anywhere is the cue to look (one purge is in flight at a time); a slow poll backs it up.
    let cue: (() => void) | undefined;
    cp.onSettled(() => cue?.());
    const visible = async (jobId: string): Promise<number> => {
      for (;;) {
        const r = signedRequest(port, 'DescribePurgeTasks', { ZoneId: ZONE, Filters: [{ Name: 'job-id', Values: [jobId] }] });
        polls++;
        const text = await sendOne(agent, port, r);
        const at = performance.now();
        const res = JSON.parse(text) as { Response: { Tasks?: Array<{ Status: string }>; Error?: unknown } };
        const status = res.Response.Tasks?.[0]?.Status;
        if (status === 'success') return at;
        if (status !== 'processing') throw new Error(`DescribePurgeTasks: ${text}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, 20);
          function done() {
            clearTimeout(timer);
            cue = undefined;
            resolve();
          }
          cue = done;
        });
      }
    };

    const samples = o.samples ?? 100;
    const total = (o.warmup ?? 10) + samples;
    const lat: number[] = [];
    let polls = 0;
    let cpu0 = 0;
    let writes0 = 0;
    for (let i = 0; i < total; i++) {
      if (i === total - samples) {
        polls = 0;
        writes0 = await storeWrites(agent, port);
        cpu0 = cp.cpuSeconds();
      }
      const r = signedRequest(port, 'CreatePurgeTask', { ZoneId: ZONE, Type: 'purge_url', Targets: [`https://${HOST}/fleet/${i}.js`] });
      const text = await sendOne(agent, port, r);
      const answered = performance.now();
      const jobId = (JSON.parse(text) as { Response: { JobId?: string } }).Response.JobId;
      if (!jobId) throw new Error(`CreatePurgeTask failed: ${text}`);
      const at = await visible(jobId);
      if (i >= total - samples) lat.push(at - answered);
      await new Promise((res2) => setTimeout(res2, o.gapMs ?? 5));
    }
    const cpu = cp.cpuSeconds() - cpu0;
    const writes = (await storeWrites(agent, port)) - writes0;
    for (const s of sims) {
      const applied = await s.applied();
      if (applied.some((a) => a < total)) throw new Error(`a simulated node did not ack the whole log: ${Math.min(...applied)} < ${total}`);
    }
    return {
      nodes: o.nodes,
      samples,
      p50Ms: median(lat),
      p99Ms: quantile(lat, 0.99),
      maxMs: Math.max(...lat),
      cpuPerPurgeNodeUs: (cpu / samples / o.nodes) * 1e6,
      writesPerPurge: writes / samples,
      pollsPerPurge: polls / samples,
    };
  } finally {
    agent.destroy();
    for (const s of sims) await s.stop();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  // `node bench/fleet-fanout-bench.ts 100 500`: one run per fleet size, without the rest of `npm run bench`.
  // EDGEPURGE_BENCH_ACK_VIA=post: the nodes post each ack, as agents before the ack channel do.
  const ackVia = process.env.EDGEPURGE_BENCH_ACK_VIA === 'post' ? 'post' : 'channel';
  for (const n of process.argv.slice(2).map(Number)) console.log(JSON.stringify({ ackVia, ...(await runFleetFanoutBench({ nodes: n, samples: 60, warmup: 5, serverCpu: 0, nodesCpu: 1, ackVia })) }));
}
