// Fan-out benchmark (issue 4): from the moment CreatePurgeTask's answer arrives to the moment the hub
// reports the task applied by every node (nodes ack after applying, DESIGN invariant 3), for N nodes
// on loopback. The control plane runs here; the N edge agents (each driving an EdgeProxy) run in
// one child process, so the two sides of the stream do not share an event loop.
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../src/config/load.ts';
import type { TaskRecord } from '../src/purge/types.ts';
import { ControlPlane } from '../src/server/control-plane.ts';
import { systemClock } from '../src/shared/clock.ts';
import { silentLogger } from '../src/shared/logger.ts';
import { SqliteTaskStore } from '../src/store/sqlite/sqlite-task-store.ts';
import { BENCH_CREDENTIAL, signedRequest } from './api-bench.ts';
import { sendOne } from './load.ts';
import { BenchChild } from './processes.ts';
import { median, quantile } from './stats.ts';

const APP_ID = 1250000001;
const ZONE = 'zone-fanoutbench';
const HOST = 'fanout.bench.test';

export interface FanoutBenchOptions {
  readonly nodes: number;
  /** Measured purges (sequential), after `warmup` unmeasured ones. */
  readonly samples?: number;
  readonly warmup?: number;
  /** Pause between one purge settling and the next being sent. */
  readonly gapMs?: number;
  /** CPU for the agents' process (Linux taskset). */
  readonly agentsCpu?: number;
}

export interface FanoutBenchResult {
  readonly nodes: number;
  readonly samples: number;
  /** Answer of CreatePurgeTask → hub settled the task as success. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Request sent → answer received (the accept, for context). */
  readonly acceptP50Ms: number;
  /** Samples where the hub's per-node view, at settle time, did not show every node applied (must be 0). */
  readonly notAppliedEverywhere: number;
  /** Samples settled before their answer was read (counted as 0 ms; expected 0). */
  readonly settledBeforeAnswer: number;
}

export async function runFanoutBench(o: FanoutBenchOptions): Promise<FanoutBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-fanout-bench-'));
  const nodes = Array.from({ length: o.nodes }, (_, i) => ({ id: `node-${i + 1}`, token: `fanout-bench-token-${i + 1}-xxxxxxxx` }));
  const config = parseConfig({
    server: { listen: '127.0.0.1:0' },
    store: { driver: 'sqlite', path: join(dir, 'edgepurge.db') },
    accounts: [
      {
        appId: APP_ID,
        name: 'bench',
        credentials: [BENCH_CREDENTIAL],
        rateLimit: false,
        quotas: { purge_url: { batch: 1000, daily: 100_000_000 } },
        zones: [{ zoneId: ZONE, name: 'bench.test', domains: [{ host: HOST, origin: 'http://127.0.0.1:9' }] }],
      },
    ],
    nodes: nodes.map((n, i) => ({ ...n, listen: `127.0.0.1:${21_000 + i}` })),
  });
  const store = new SqliteTaskStore({ path: join(dir, 'edgepurge.db') });
  await store.start();
  const cp = new ControlPlane({ config, store, clock: systemClock, logger: silentLogger });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let agents: BenchChild | undefined;
  try {
    const { port } = await cp.start();
    agents = await BenchChild.start(
      { role: 'agents', controlPlane: `http://127.0.0.1:${port}`, nodes, domains: [{ host: HOST, origin: 'http://127.0.0.1:9' }] },
      o.agentsCpu,
    );

    // The task being waited for, and when the hub settled it (tasks settled before anyone waits land in `early`).
    type Settled = { at: number; status: string; everywhere: boolean; early?: boolean };
    let watching: { task: TaskRecord; resolve: (r: Settled) => void } | undefined;
    const early = new Map<number, Settled>();
    cp.hub.onSettled((tasks) => {
      const at = performance.now();
      for (const u of tasks) {
        if (watching && u.taskId === watching.task.id) {
          const views = cp.hub.nodeViews(watching.task);
          watching.resolve({ at, status: u.status, everywhere: views.length === o.nodes && views.every((v) => v.state === 'applied') });
          watching = undefined;
        } else {
          early.set(u.taskId, { at, status: u.status, everywhere: true, early: true });
        }
      }
    });

    const total = (o.warmup ?? 20) + (o.samples ?? 200);
    const lat: number[] = [];
    const accept: number[] = [];
    let notEverywhere = 0;
    let beforeAnswer = 0;
    for (let i = 0; i < total; i++) {
      // Signed just in time: the run may outlast a signature's 300 s.
      const r = signedRequest(port, 'CreatePurgeTask', { ZoneId: ZONE, Type: 'purge_url', Targets: [`https://${HOST}/fanout/${i}.js`] });
      const t0 = performance.now();
      const text = await sendOne(agent, port, r);
      const answered = performance.now();
      const res = JSON.parse(text) as { Response: { JobId?: string; Error?: { Code: string; Message: string } } };
      if (!res.Response.JobId) throw new Error(`CreatePurgeTask failed: ${text}`);
      const [task] = await store.jobTasks(APP_ID, res.Response.JobId);
      if (!task || task.seq === null) throw new Error('the purge was not fanned out');
      const settled = await new Promise<Settled>((resolve, reject) => {
        // Settled before the answer was even read (not seen on loopback, but not impossible).
        const done = early.get(task.id);
        if (done !== undefined) return resolve(done);
        const timer = setTimeout(() => reject(new Error(`task ${task.id} not settled within 30 s`)), 30_000);
        watching = {
          task,
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
        };
      });
      if (settled.status !== 'success') throw new Error(`task ${task.id} settled as ${settled.status}, not success`);
      if (i >= total - (o.samples ?? 200)) {
        lat.push(Math.max(0, settled.at - answered));
        accept.push(answered - t0);
        if (!settled.everywhere) notEverywhere++;
        if (settled.early) beforeAnswer++;
      }
      early.delete(task.id);
      await new Promise((res2) => setTimeout(res2, o.gapMs ?? 5));
    }
    const applied = await agents.applied();
    const last = await store.lastSeq();
    if (applied.some((s) => s < last)) throw new Error(`some nodes did not apply the whole log: ${applied.join(',')} < ${last}`);
    return {
      nodes: o.nodes,
      samples: lat.length,
      p50Ms: median(lat),
      p99Ms: quantile(lat, 0.99),
      maxMs: Math.max(...lat),
      acceptP50Ms: median(accept),
      notAppliedEverywhere: notEverywhere,
      settledBeforeAnswer: beforeAnswer,
    };
  } finally {
    agent.destroy();
    await agents?.stop();
    await cp.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
