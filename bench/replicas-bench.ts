// Replicas benchmark (issue 9): accept → applied on 10 nodes spread over 2 replicas on one PostgreSQL;
// CreatePurgeTask throughput on SQLite, 1 PostgreSQL replica and 2 side by side; how long the duties take
// to move after kill -9 of the leading replica. Every control plane is `startControlPlane` (what
// `edgepurge serve` runs) in a child process of its own; a fresh database, dropped after.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { ConfigInput } from '../src/config/schema.ts';
import { BENCH_CREDENTIAL, signedRequest } from './api-bench.ts';
import { createBenchDatabase } from './bench-database.ts';
import { runLoad, type LoadRequest } from './load.ts';
import { BenchChild } from './processes.ts';
import { median, quantile } from './stats.ts';

const APP_ID = 1250000001;
const ZONE = 'zone-replicas';
const HOST = 'replicas.bench.test';
const DOMAINS = [{ host: HOST, origin: 'http://127.0.0.1:9' }];

export interface ReplicasBenchResult {
  /** Accept (answer read) → every one of the 10 nodes applied the task's entry (seen at the nodes), ms. */
  readonly applied: { readonly samples: number; readonly p50Ms: number; readonly p99Ms: number };
  /** Accept → every node's ack of it answered by its control plane (durable progress), ms. */
  readonly acked: { readonly p50Ms: number; readonly p99Ms: number };
  /** CreatePurgeTask/s (1 URL each, 16 connections per replica). */
  readonly throughput: { readonly sqlite: number; readonly pg1: number; readonly pg2: number };
  /** kill -9 of the leader → another replica holds the duties' lock, ms (one per try). */
  readonly dutyMoveMs: readonly number[];
}

function config(store: ConfigInput['store'], nodes: ReadonlyArray<{ id: string; token: string }> = []): ConfigInput {
  return {
    server: { listen: '127.0.0.1:0', accessLog: false },
    store,
    accounts: [
      {
        appId: APP_ID,
        name: 'bench',
        credentials: [BENCH_CREDENTIAL],
        rateLimit: false,
        quotas: { purge_url: { batch: 1000, daily: 100_000_000 } },
        zones: [{ zoneId: ZONE, name: 'replicas.test', domains: DOMAINS }],
      },
    ],
    nodes: nodes.map((n, i) => ({ ...n, listen: `127.0.0.1:${22_000 + i}` })),
  };
}

const requests = (port: number, n: number): LoadRequest[] =>
  Array.from({ length: n }, (_, i) => signedRequest(port, 'CreatePurgeTask', { ZoneId: ZONE, Type: 'purge_url', Targets: [`https://${HOST}/t/${port}/${i}.js`] }));

/** CreatePurgeTask/s summed over `replicas`, all loaded at once. */
async function throughput(replicas: readonly BenchChild[], durationMs: number): Promise<number> {
  const results = await Promise.all(
    replicas.map((r) => runLoad({ host: '127.0.0.1', port: r.port, requests: requests(r.port, 2000), connections: 16, warmupMs: 1000, durationMs, check: { bodyExcludes: '"Error":' } })),
  );
  return results.reduce((s, x) => s + median(x.rounds.map((y) => y.rps)), 0);
}

export async function runReplicasBench(o: { log: (line: string) => void; admin?: string }): Promise<ReplicasBenchResult> {
  const database = await createBenchDatabase('replicas', o.admin);
  const url = database.url;
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-replicas-bench-'));
  const children: BenchChild[] = [];
  const start = async (c: ConfigInput) => {
    const child = await BenchChild.start({ role: 'control-plane', config: c });
    children.push(child);
    return child;
  };
  const stopAll = async () => {
    await Promise.all(children.splice(0).map((c) => c.stop()));
  };
  const db = new pg.Client({ connectionString: url });
  try {
    await db.connect();
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public');
    const pgStore = (schema: string) => ({ driver: 'postgres' as const, url, schema, pool: { max: 8 } });

    // Throughput, side by side in one run.
    const duration = 5000;
    const sqlite = await throughput([await start(config({ driver: 'sqlite', path: join(dir, 'bench.db') }))], duration);
    await stopAll();
    o.log(`SQLite: ${Math.round(sqlite)} CreatePurgeTask/s`);
    const pg1 = await throughput([await start(config(pgStore('tp1')))], duration);
    await stopAll();
    o.log(`PostgreSQL, 1 replica: ${Math.round(pg1)}/s`);
    const two = [await start(config(pgStore('tp2'))), await start(config(pgStore('tp2')))];
    const pg2 = await throughput(two, duration);
    await stopAll();
    o.log(`PostgreSQL, 2 replicas: ${Math.round(pg2)}/s`);

    // Accept → applied on 10 nodes, 5 streaming from each replica.
    const nodes = Array.from({ length: 10 }, (_, i) => ({ id: `node-${i + 1}`, token: `replicas-bench-token-${i + 1}-xxxx` }));
    const cfg = config(pgStore('fan'), nodes);
    const reps = [await start(cfg), await start(cfg)];
    const agents = await Promise.all(
      [nodes.slice(0, 5), nodes.slice(5)].map((ns, i) => BenchChild.start({ role: 'agents', controlPlane: `http://127.0.0.1:${reps[i]!.port}`, nodes: ns, domains: DOMAINS })),
    );
    // Observed at the nodes (issue 9: applied means a node's cache applied the entry): the agents' child
    // tells the moment the last of its nodes applied the task's entry, and when every node's ack of it was
    // answered (durable node progress). Nothing polls: the first version tight-polled node_progress, which
    // loaded PostgreSQL and the 2 cores it measured, and counted the ack's commit (an fsync) as "applied".
    // Both are taken from the answer's arrival; an entry applied before the client read its answer counts 0.
    const lat: number[] = [];
    const acked: number[] = [];
    try {
      const fan = new pg.Client({ connectionString: url });
      await fan.connect();
      try {
        let seq = Number((await fan.query<{ value: string }>("SELECT value FROM fan.store_meta WHERE key = 'last_seq'")).rows[0]!.value);
        for (let i = 0; i < 220; i++) {
          const rep = reps[i % 2]!;
          // Only this loop writes the log here: the task's entry is the next seq (checked below).
          seq++;
          const watched = agents.map((a) => a.watch(seq));
          const r = signedRequest(rep.port, 'CreatePurgeTask', { ZoneId: ZONE, Type: 'purge_url', Targets: [`https://${HOST}/fan/${i}.js`] });
          const res = await fetch(`http://127.0.0.1:${rep.port}/`, { method: 'POST', headers: r.headers, body: r.body });
          const answered = performance.now();
          const jobId = ((await res.json()) as { Response: { JobId?: string } }).Response.JobId;
          if (!jobId) throw new Error('CreatePurgeTask failed');
          const within = (p: Promise<number>) =>
            Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`task of job ${jobId} not applied by every node in 30 s`)), 30_000).unref())]);
          const appliedAt = Math.max(...(await Promise.all(watched.map((w) => within(w.applied)))));
          const ackedAt = Math.max(...(await Promise.all(watched.map((w) => within(w.acked)))));
          const stored = Number((await fan.query<{ seq: string }>('SELECT seq FROM fan.tasks WHERE job_id = $1', [jobId])).rows[0]!.seq);
          if (stored !== seq) throw new Error(`job ${jobId} has seq ${stored}, the bench watched ${seq}: something else writes the log`);
          if (i >= 20) {
            lat.push(Math.max(0, appliedAt - answered));
            acked.push(Math.max(0, ackedAt - answered));
          }
          await new Promise((r2) => setTimeout(r2, 5));
        }
      } finally {
        await fan.end();
      }
    } finally {
      await Promise.all(agents.map((a) => a.stop()));
    }
    o.log(`accept → applied on 10 nodes over 2 replicas: p50 ${median(lat).toFixed(2)} ms, p99 ${quantile(lat, 0.99).toFixed(2)} ms`);
    o.log(`accept → acked (every node's ack answered): p50 ${median(acked).toFixed(2)} ms, p99 ${quantile(acked, 0.99).toFixed(2)} ms`);

    // Duty move: kill -9 the leader, measure until another replica holds the lock; three times.
    const leaderPid = async (): Promise<number | undefined> => {
      const { rows } = await db.query<{ name: string }>(
        `SELECT a.application_name AS name FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
          WHERE a.datname = current_database() AND l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'edgepurge-leader %'`,
      );
      return rows[0] ? Number(rows[0].name.split(' ')[1]) : undefined;
    };
    const moves: number[] = [];
    for (let k = 0; k < 3; k++) {
      const others = children.filter((c) => c.process.exitCode === null && c.process.signalCode === null);
      while (others.length < 2) others.push(await start(cfg));
      let leader: number | undefined;
      while ((leader = await leaderPid()) === undefined) await new Promise((r) => setTimeout(r, 20));
      const victim = others.find((c) => c.process.pid === leader);
      if (!victim) throw new Error(`the leader (pid ${leader}) is not one of the replicas`);
      const t0 = performance.now();
      victim.process.kill('SIGKILL');
      for (;;) {
        const now = await leaderPid();
        if (now !== undefined && now !== leader) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      moves.push(performance.now() - t0);
      children.splice(children.indexOf(victim), 1);
    }
    o.log(`duties moved after kill -9 in ${moves.map((m) => m.toFixed(0)).join(', ')} ms`);
    return {
      applied: { samples: lat.length, p50Ms: median(lat), p99Ms: quantile(lat, 0.99) },
      acked: { p50Ms: median(acked), p99Ms: quantile(acked, 0.99) }, throughput: { sqlite, pg1, pg2 }, dutyMoveMs: moves };
  } finally {
    await stopAll();
    await db.end().catch(() => {});
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}
