// Submit throughput (issue 11): signed CreatePurgeTask over HTTP with 1 and 1,000 URLs per request, on an
// empty store and on one holding 1,000,000 tasks, next to a bare node:http server answering a fixed JSON
// body on the same pinned core, all in one run so that the ratios compare like with like.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchConfig, createRequests, type SeededTenant } from './api-bench.ts';
import { runLoad, whilePinned, type LoadRequest, type LoadResult } from './load.ts';
import { BenchChild } from './processes.ts';
import { median } from './stats.ts';
import { runStormBench, type StormBenchResult } from './storm-bench.ts';
import { DOMAINS, zoneOf } from './store-bench.ts';

export interface SubmitFigure {
  /** Median over the rounds. */
  readonly rps: number;
  readonly urlsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly roundRps: readonly number[];
  readonly errors: number;
  readonly errorSample?: string;
  /** Server CPU over wall time during the figure (warm-up included), % of one core. */
  readonly serverCpuPct: number;
}

export interface SubmitBenchResult {
  /** Absent with bare: false. */
  readonly bare?: SubmitFigure;
  /** Keyed by store ('empty' | 'memory' | 'seeded') and URLs per request (1 | 1000). */
  readonly create: ReadonlyMap<string, SubmitFigure>;
  readonly connections: { readonly one: number; readonly many: number };
  /** A storm at 10× an account's rate limit beside a steady account (bench/storm-bench.ts); absent with storm: false. */
  readonly storm?: StormBenchResult;
}

export interface SubmitBenchOptions {
  /** The store-bench database holding 1,000,000 tasks; omitted: only the empty store is measured. */
  readonly seededDbPath?: string;
  readonly seededTenant?: SeededTenant;
  readonly rounds?: number;
  readonly roundMs?: number;
  readonly serverCpu?: number;
  readonly loadCpu?: number;
  /** Node flags for the control-plane child (e.g. --cpu-prof). */
  readonly serverExecArgv?: readonly string[];
  /** false: skip the storm part. */
  readonly storm?: boolean;
  /** URLs per request of the shapes to measure; default both (1 and 1,000). */
  readonly shapes?: ReadonlyArray<1 | 1000>;
  /** false: skip the bare node:http figure (it is only compared with the 1-URL shape). */
  readonly bare?: boolean;
  /**
   * false: skip the ceiling figure, the same control plane on an in-memory SQLite store (`:memory:`: no
   * WAL, no fsync, no checkpoint, no read workers). Not a way to run EdgePurge (nothing survives a
   * restart): what the API and SQLite's own row and index writes cost without durability, beside the
   * durable figures of the same run.
   */
  readonly ceiling?: boolean;
  readonly log?: (line: string) => void;
}

/** The store-bench tenant without its history: the same zones and domains. */
export function emptyTenant(appId: number): SeededTenant {
  const zones = new Map<string, string[]>();
  DOMAINS.forEach((host, i) => zones.set(zoneOf(i), [...(zones.get(zoneOf(i)) ?? []), host]));
  return { appId, zones, from: 0, to: 0, samples: [] };
}

const API_ERROR = '"Error":';

async function measure(
  port: number,
  requests: readonly LoadRequest[],
  connections: number,
  o: SubmitBenchOptions,
  server: BenchChild,
  urls: number,
  check = true,
): Promise<SubmitFigure> {
  const [cpu0, t0] = [server.cpuSeconds(), performance.now()];
  const res: LoadResult = await runLoad({
    host: '127.0.0.1',
    port,
    requests,
    connections,
    warmupMs: 2000,
    durationMs: o.roundMs ?? 5000,
    rounds: o.rounds ?? 3,
    ...(check ? { check: { bodyExcludes: API_ERROR } } : {}),
    ...(o.loadCpu === undefined ? {} : { cpu: o.loadCpu }),
  });
  const serverCpuPct = ((server.cpuSeconds() - cpu0) / ((performance.now() - t0) / 1000)) * 100;
  const rps = median(res.rounds.map((r) => r.rps));
  return {
    rps,
    urlsPerSecond: rps * urls,
    p50Ms: median(res.rounds.map((r) => r.p50Ms)),
    p99Ms: median(res.rounds.map((r) => r.p99Ms)),
    roundRps: res.rounds.map((r) => r.rps),
    errors: res.rounds.reduce((s, r) => s + r.errors, 0),
    ...(res.errorSamples[0] === undefined ? {} : { errorSample: res.errorSamples[0] }),
    serverCpuPct,
  };
}

/** The submit bench, this process kept on the load generator's CPU meanwhile (whilePinned). */
export function runSubmitBench(o: SubmitBenchOptions): Promise<SubmitBenchResult> {
  return whilePinned(o.loadCpu, () => submitBench(o));
}

async function submitBench(o: SubmitBenchOptions): Promise<SubmitBenchResult> {
  const log = o.log ?? (() => {});
  const one = 32;
  const many = 8;
  const create = new Map<string, SubmitFigure>();

  let bare: SubmitFigure | undefined;
  if (o.bare !== false) {
    log(`bare node:http, fixed JSON body, ${one} connections …`);
    const bareServer = await BenchChild.start({ role: 'bare-http' }, o.serverCpu);
    try {
      // The same signed 1-URL bodies the control plane gets, so both sides read the same bytes.
      bare = await measure(bareServer.port, createRequests(bareServer.port, emptyTenant(1), 1, 2000), one, o, bareServer, 1, false);
    } finally {
      await bareServer.stop();
    }
  }


  const stores: Array<['empty' | 'memory' | 'seeded', string, SeededTenant]> = [];
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-submit-bench-'));
  try {
    // The seeded tenant's zones and domains without its history (or the store-bench tenant's).
    const fresh = { ...(o.seededTenant ?? emptyTenant(1250000001)), from: 0, to: 0, samples: [] };
    stores.push(['empty', join(dir, 'empty.db'), fresh]);
    if (o.ceiling !== false) stores.push(['memory', ':memory:', fresh]);
    if (o.seededDbPath && o.seededTenant) stores.push(['seeded', o.seededDbPath, o.seededTenant]);
    for (const [name, dbPath, t] of stores) {
      const server = await BenchChild.start({ role: 'control-plane', config: benchConfig(dbPath, t) }, o.serverCpu, o.serverExecArgv);
      try {
        for (const [urls, conns] of ([[1, one], [1000, many]] as const).filter(([u]) => o.shapes?.includes(u) ?? true)) {
          log(`CreatePurgeTask on the ${name === 'memory' ? 'in-memory (ceiling)' : name} store, ${urls} URL(s)/request, ${conns} connections …`);
          const requests = createRequests(server.port, t, urls, urls === 1 ? 2000 : 40);
          create.set(`${name} ${urls}`, await measure(server.port, requests, conns, o, server, urls));
        }
      } finally {
        await server.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const base = { ...(bare ? { bare } : {}), create, connections: { one, many } };
  if (o.storm === false) return base;
  const storm = await runStormBench({
    ...(o.serverCpu === undefined ? {} : { serverCpu: o.serverCpu }),
    ...(o.loadCpu === undefined ? {} : { loadCpu: o.loadCpu }),
    log,
  });
  return { ...base, storm };
}

/**
 * EDGEPURGE_BENCH_SUBMIT_URLS=1 (or 1000): that shape only; with 1000 alone, no bare server either (it is
 * compared with the 1-URL shape). EDGEPURGE_BENCH_CEILING=0: no in-memory ceiling. Also read by
 * `npm run bench -- --only submit`.
 */
export function shapesFromEnv(): Pick<SubmitBenchOptions, 'shapes' | 'bare' | 'ceiling'> {
  const ceiling = process.env.EDGEPURGE_BENCH_CEILING === '0' ? { ceiling: false } : {};
  const v = process.env.EDGEPURGE_BENCH_SUBMIT_URLS;
  if (!v) return ceiling;
  return { ...ceiling, ...(Number(v) === 1000 ? { shapes: [1000], bare: false } : { shapes: [1] }) };
}

// `npx node bench/submit-bench.ts [--prof DIR]`: the empty-store half alone, optionally with a CPU profile
// of the control plane (written to DIR when it exits). EDGEPURGE_BENCH_SUBMIT_URLS=1 (or 1000): that shape
// only; EDGEPURGE_BENCH_STORM=0: without the storm part; EDGEPURGE_BENCH_ROUNDS=N: N rounds (default 1);
// EDGEPURGE_BENCH_SERVER_FLAGS: more node flags for the control plane; EDGEPURGE_BENCH_CEILING=0: without the
// in-memory ceiling figure (see shapesFromEnv).
if (import.meta.main) {
  const at = process.argv.indexOf('--prof');
  const profDir = at > 0 ? process.argv[at + 1] : undefined;
  const r = await runSubmitBench({
    serverCpu: 0,
    loadCpu: 1,
    rounds: Number(process.env.EDGEPURGE_BENCH_ROUNDS ?? 1),
    ...shapesFromEnv(),
    ...(process.env.EDGEPURGE_BENCH_STORM === '0' ? { storm: false } : {}),
    // EDGEPURGE_BENCH_SERVER_FLAGS: more node flags for the control plane (e.g. --perf-basic-prof for `perf record`).
    serverExecArgv: [...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), ...(process.env.EDGEPURGE_BENCH_SERVER_FLAGS?.split(' ').filter(Boolean) ?? [])],
    log: (l) => console.log(l),
  });
  const show = (name: string, f: SubmitFigure) =>
    console.log(`${name}: ${Math.round(f.rps)} req/s, ${Math.round(f.urlsPerSecond)} URLs/s, p50 ${f.p50Ms.toFixed(1)} ms, p99 ${f.p99Ms.toFixed(1)} ms, cpu ${f.serverCpuPct.toFixed(0)} % (${Math.round((f.serverCpuPct * 1e4) / f.rps)} µs/request), errors ${f.errors} ${f.errorSample ?? ''}`);
  if (r.bare) show('bare', r.bare);
  for (const [k, f] of r.create) show(k, f);
  if (r.storm) console.log('storm:', JSON.stringify(r.storm));
}
