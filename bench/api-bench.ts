// Control-plane benchmark (issue 2) over the signed API 3.0: CreatePurgeTask throughput with 1 and
// 1,000 URLs per request, DescribePurgeTasks latency on a store holding 1,000,000 tasks, and the
// server's peak RSS. The server runs in a child process, the load generator in another.
import { closeSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import type { ConfigInput } from '../src/config/schema.ts';
import { signTc3Request } from '../src/protocols/tc3/tc3-signature.ts';
import { systemClock } from '../src/shared/clock.ts';
import { runLoad, type LoadRequest, type LoadResult, type LoadRound } from './load.ts';
import { BenchChild } from './processes.ts';
import { median, prng, quantile } from './stats.ts';

const TEO = '2022-09-01';
const DAY = 86_400_000;
/** The benchmarks' API credential (every bench config gives it to its one account). */
export const BENCH_CREDENTIAL = { secretId: 'AKIDbenchbenchbenchbenchbench0001', secretKey: 'benchSecretKeybenchSecretKey0001' } as const;

/** What store-bench seeded, read back from its database (so nothing here restates its constants). */
export interface SeededTenant {
  readonly appId: number;
  readonly zones: ReadonlyMap<string, readonly string[]>;
  /** createdAt span of the seeded tasks, ms. */
  readonly from: number;
  readonly to: number;
  /** A sample of purge_url targets with their zone and time. */
  readonly samples: ReadonlyArray<{ readonly target: string; readonly zoneId: string; readonly createdAt: number }>;
}

/** Reads the seeded tenant (one appId), its zones and domains, and a sample of URL targets. */
export function readSeededTenant(dbPath: string, sampleSize = 400, seed = 7): SeededTenant {
  const db = new DatabaseSync(dbPath, { readOnly: true });
  try {
    const apps = db.prepare('SELECT app_id AS appId, min(created_at) AS a, max(created_at) AS b FROM jobs GROUP BY app_id').all() as Array<{ appId: number; a: number; b: number }>;
    const app = apps[0];
    if (apps.length !== 1 || !app) throw new Error(`expected one seeded appId in ${dbPath}, found ${apps.length}`);
    const zones = new Map<string, string[]>();
    for (const r of db.prepare('SELECT DISTINCT zone_id AS zoneId, host FROM task_hosts').all() as Array<{ zoneId: string; host: string }>) {
      zones.set(r.zoneId, [...(zones.get(r.zoneId) ?? []), r.host]);
    }
    const maxId = Number((db.prepare('SELECT max(id) AS m FROM tasks').get() as { m: number }).m);
    const one = db.prepare("SELECT target, zone_id AS zoneId, created_at AS createdAt FROM tasks WHERE id = ? AND type = 'purge_url'");
    const samples: Array<{ target: string; zoneId: string; createdAt: number }> = [];
    const r = prng(seed);
    for (let tries = 0; samples.length < sampleSize && tries < sampleSize * 50; tries++) {
      const row = one.get(1 + Math.floor(r() * maxId)) as { target: string; zoneId: string; createdAt: number } | undefined;
      if (row) samples.push({ target: row.target, zoneId: row.zoneId, createdAt: Number(row.createdAt) });
    }
    return { appId: app.appId, zones, from: Number(app.a), to: Number(app.b), samples };
  } finally {
    db.close();
  }
}

export interface ApiBenchOptions {
  /** The SQLite file store-bench seeded (the server opens it, and writes to it). */
  readonly dbPath: string;
  readonly tenant: SeededTenant;
  /** Connections of the load generator for CreatePurgeTask. */
  readonly connections?: number;
  /** Length of each measured CreatePurgeTask round, and how many rounds (the median is reported). */
  readonly roundMs?: number;
  readonly rounds?: number;
  /** Measure DescribePurgeTasks (default true), with this many requests per scenario (sequential, one connection). */
  readonly describe?: boolean;
  readonly describeRequests?: number;
  /** Edge nodes connected to the control plane while it takes purges (0: tasks are not fanned out). */
  readonly edgeNodes?: number;
  /** CPUs for the server and the load generator (Linux taskset); omitted: not pinned. */
  readonly serverCpu?: number;
  readonly loadCpu?: number;
  /** Node flags of the server child (besides those edgepurge serve runs with, which it gets unless these set their own). */
  readonly serverExecArgv?: readonly string[];
  readonly log?: (line: string) => void;
}

export interface ThroughputFigure {
  readonly urlsPerRequest: number;
  readonly connections: number;
  readonly rounds: readonly LoadRound[];
  /** Medians over the rounds. */
  readonly rps: number;
  readonly urlsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  /** Server CPU time over wall time during the whole run (warm-up included), % of one core. */
  readonly serverCpuPct: number;
}

export interface LatencyFigure {
  readonly name: string;
  readonly requests: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
}

export interface ApiBenchResult {
  readonly create: readonly ThroughputFigure[];
  readonly describe: readonly LatencyFigure[];
  readonly peakRssBytes: number;
  readonly edgeNodes: number;
  /** Server start until its start-up work was done (ms), and the tasks the hub settled meanwhile. */
  readonly startupMs: number;
  readonly settledAtStartup: number;
}

/**
 * Latency of fsync after a 4 KiB write in `dir`, ms (p50, p99): every durable SQLite commit pays one,
 * so it bounds the write-path figures and shows how busy the disk is right now.
 */
export function probeFsync(dir: string, n = 100): { p50Ms: number; p99Ms: number } {
  const path = join(dir, `fsync-probe-${process.pid}`);
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(4096, 1);
  const t: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      writeSync(fd, block, 0, block.length, (i % 16) * 4096);
      const t0 = performance.now();
      fsyncSync(fd);
      t.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  return { p50Ms: median(t), p99Ms: quantile(t, 0.99) };
}

const iso = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

/** The server's config: the seeded tenant, unthrottled, with quotas far above what the bench uses. */
export function benchConfig(dbPath: string, tenant: SeededTenant, nodes: ReadonlyArray<{ id: string; token: string }> = []): ConfigInput {
  return {
    server: { listen: '127.0.0.1:0', retentionDays: 3650 }, // the seeded tasks are months old: keep them
    store: { driver: 'sqlite', path: dbPath },
    accounts: [
      {
        appId: tenant.appId,
        name: 'bench',
        credentials: [BENCH_CREDENTIAL],
        rateLimit: false,
        quotas: { purge_url: { batch: 1000, daily: 100_000_000 } },
        zones: [...tenant.zones].map(([zoneId, hosts]) => ({
          zoneId,
          name: `${zoneId}.bench`,
          domains: hosts.map((host) => ({ host, origin: 'http://127.0.0.1:9' })),
        })),
      },
    ],
    nodes: nodes.map((n, i) => ({ id: n.id, token: n.token, listen: `127.0.0.1:${20_000 + i}` })),
  };
}

/** A signed API 3.0 POST, ready for the load generator (signatures hold for 300 s, TENCENT-API §2.4). */
export function signedRequest(port: number, action: string, params: unknown, nowMs = systemClock.now()): LoadRequest {
  const host = `127.0.0.1:${port}`;
  const body = JSON.stringify(params);
  const headers = signTc3Request({
    ...BENCH_CREDENTIAL,
    host,
    service: 'teo',
    action,
    version: TEO,
    timestamp: Math.floor(nowMs / 1000),
    body,
    method: 'POST',
    contentType: 'application/json',
  });
  return { method: 'POST', path: '/', headers, body };
}

/** DescribePurgeTasks scenarios over HTTP: (a) zone + 7 days + statuses + domain, (b) fuzzy target + 7 days. */
function describeRequests(port: number, t: SeededTenant, n: number): Array<{ name: string; requests: LoadRequest[] }> {
  const r = prng(11);
  const zoneList = [...t.zones];
  const statusSets = [['success'], ['failed'], ['processing', 'success'], ['failed', 'timeout'], ['processing']];
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const a: LoadRequest[] = [];
  const b: LoadRequest[] = [];
  for (let i = 0; i < n; i++) {
    const [zoneId, hosts] = pick(zoneList);
    const end = t.from + 7 * DAY + Math.floor(r() * (t.to - t.from - 7 * DAY));
    a.push(
      signedRequest(port, 'DescribePurgeTasks', {
        ZoneId: zoneId,
        StartTime: iso(end - 7 * DAY),
        EndTime: iso(end),
        Filters: [
          { Name: 'statuses', Values: pick(statusSets) },
          { Name: 'domains', Values: [pick(hosts)] },
        ],
        Offset: 0,
        Limit: 20,
      }),
    );
    // 8-20 characters out of a stored URL's file name, within a week that contains it.
    const s = pick(t.samples);
    const file = s.target.slice(s.target.lastIndexOf('/') + 1);
    const len = Math.min(file.length, 8 + Math.floor(r() * 13));
    const at = Math.floor(r() * (file.length - len + 1));
    const until = Math.min(t.to, s.createdAt + Math.floor(r() * 7 * DAY));
    b.push(
      signedRequest(port, 'DescribePurgeTasks', {
        ZoneId: s.zoneId,
        StartTime: iso(until - 7 * DAY + 1000),
        EndTime: iso(until),
        Filters: [{ Name: 'target', Values: [file.slice(at, at + len)], Fuzzy: true }],
        Offset: 0,
        Limit: 20,
      }),
    );
  }
  return [
    { name: '(a) zone + 7 days + statuses + domain', requests: a },
    { name: '(b) fuzzy target + zone + 7 days', requests: b },
  ];
}

/** CreatePurgeTask bodies: `urls` distinct URLs per request on the tenant's domains, `variants` different bodies. */
export function createRequests(port: number, t: SeededTenant, urls: number, variants: number): LoadRequest[] {
  const r = prng(urls);
  const zoneList = [...t.zones];
  const out: LoadRequest[] = [];
  for (let v = 0; v < variants; v++) {
    const [zoneId, hosts] = zoneList[v % zoneList.length]!;
    const targets = Array.from({ length: urls }, () => `https://${hosts[Math.floor(r() * hosts.length)]}/bench/${v}/${Math.floor(r() * 1e9).toString(36)}.js`);
    out.push(signedRequest(port, 'CreatePurgeTask', { ZoneId: zoneId, Type: 'purge_url', Targets: targets }));
  }
  return out;
}

const API_ERROR = '"Error":';

function throughput(urls: number, connections: number, res: LoadResult, serverCpuPct: number): ThroughputFigure {
  const rps = median(res.rounds.map((x) => x.rps));
  return {
    urlsPerRequest: urls,
    connections,
    rounds: res.rounds,
    rps,
    urlsPerSecond: rps * urls,
    p50Ms: median(res.rounds.map((x) => x.p50Ms)),
    p99Ms: median(res.rounds.map((x) => x.p99Ms)),
    errors: res.rounds.reduce((s, x) => s + x.errors, 0),
    errorSamples: res.errorSamples,
    serverCpuPct,
  };
}

export async function runApiBench(o: ApiBenchOptions): Promise<ApiBenchResult> {
  const log = o.log ?? (() => {});
  const connections = o.connections ?? 32;
  const edgeNodes = o.edgeNodes ?? 0;
  const nodes = Array.from({ length: edgeNodes }, (_, i) => ({ id: `bench-node-${i + 1}`, token: `bench-node-token-${i + 1}-xxxxxxxx` }));
  const server = await BenchChild.start({ role: 'control-plane', config: benchConfig(o.dbPath, o.tenant, nodes) }, o.serverCpu, o.serverExecArgv);
  let agents: BenchChild | undefined;
  try {
    if (nodes.length) {
      const domains = [...o.tenant.zones.values()].flat().map((host) => ({ host, origin: 'http://127.0.0.1:9' }));
      agents = await BenchChild.start({ role: 'agents', controlPlane: `http://127.0.0.1:${server.port}`, nodes, domains });
    }
    const cpu = o.loadCpu === undefined ? {} : { cpu: o.loadCpu };

    const describe: LatencyFigure[] = [];
    for (const sc of o.describe === false ? [] : describeRequests(server.port, o.tenant, o.describeRequests ?? 300)) {
      log(`  DescribePurgeTasks ${sc.name} …`);
      // Sequential queries on one connection (latency, not throughput), after a second of warm-up.
      const res = await runLoad({ host: '127.0.0.1', port: server.port, requests: sc.requests, connections: 1, warmupMs: 1000, count: sc.requests.length, check: { bodyExcludes: API_ERROR }, ...cpu });
      const round = res.rounds[0]!;
      describe.push({ name: sc.name, requests: round.requests, p50Ms: round.p50Ms, p99Ms: round.p99Ms, maxMs: round.maxMs, errors: round.errors, errorSamples: res.errorSamples });
    }

    const create: ThroughputFigure[] = [];
    for (const urls of [1, 1000]) {
      log(`  CreatePurgeTask, ${urls} URL(s) per request, ${connections} connections, ${o.rounds ?? 3} × ${(o.roundMs ?? 10_000) / 1000} s …`);
      const requests = createRequests(server.port, o.tenant, urls, urls === 1 ? 2000 : 40);
      const [cpu0, t0] = [server.cpuSeconds(), performance.now()];
      const res = await runLoad({
        host: '127.0.0.1',
        port: server.port,
        requests,
        connections,
        warmupMs: 3000,
        durationMs: o.roundMs ?? 10_000,
        rounds: o.rounds ?? 3,
        check: { bodyExcludes: API_ERROR },
        ...cpu,
      });
      const cpuPct = ((server.cpuSeconds() - cpu0) / ((performance.now() - t0) / 1000)) * 100;
      create.push(throughput(urls, connections, res, cpuPct));
    }
    if (agents) {
      // The connected nodes kept up (they applied the whole log): the purges really were fanned out.
      const applied = await agents.applied();
      log(`  edge nodes applied up to seq ${applied.join(', ')}`);
    }
    return {
      create,
      describe,
      peakRssBytes: server.peakRss(),
      edgeNodes,
      startupMs: server.ready.startupMs ?? Number.NaN,
      settledAtStartup: server.ready.settledAtStartup ?? 0,
    };
  } finally {
    await agents?.stop();
    await server.stop();
  }
}
