// Soak (hardening issue, finding 3): the whole system under a steady mixed load for N minutes — the
// control plane (`edgepurge serve`), two edge nodes (`edgepurge edge`), an origin and the load
// generator, each its own process — sampling every process's RSS to see whether memory levels off.
//
// `npm run bench -- --only soak`; EDGEPURGE_SOAK_MINUTES sets the minutes measured after the warm-up
// (default 10), EDGEPURGE_SOAK_WARMUP_MINUTES the warm-up (default 7, see soakSection) and
// EDGEPURGE_SOAK_RPS the offered load (default 300). This file is also the entry point of the origin
// and load-generator children (forked with a role message, like bench/load.ts).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { stringify } from 'yaml';
import type { ConfigInput } from '../src/config/schema.ts';
import { missingNodeFlags } from '../src/cli/node-flags.ts';
import { hmacSign, hmacStringToSign } from '../src/protocols/hmac-signature.ts';
import { signTc3Request } from '../src/protocols/tc3/tc3-signature.ts';
import { Client, heavyAccount, heavyQueries } from './query-load-bench.ts';
import { seedQueryTenant, type QuerySeed } from './query-seed.ts';
import { prng, quantile } from './stats.ts';
// (The config refuses two `:0` listen addresses, so each process gets a free port of its own.)
import { freePort } from '../test/e2e/helpers.ts';

const CLI = join(import.meta.dirname, '../src/cli/main.ts');
const PROBE = join(import.meta.dirname, 'soak-heap-probe.ts');
const MB = 1e6;
const CREDENTIAL = { secretId: 'AKIDsoaksoaksoaksoaksoaksoak0001', secretKey: 'soakSecretKeysoakSecretKey000001' } as const;
const ZONES = [
  { zoneId: 'zone-soak1', name: 'soak1.test', hosts: ['a.soak1.test', 'b.soak1.test'] },
  { zoneId: 'zone-soak2', name: 'soak2.test', hosts: ['c.soak2.test'] },
] as const;
/** edge-1 serves every domain; edge-2 only the second zone's (a node with a host filter). */
const NODES = [
  { id: 'edge-1', token: 'soak-edge-1-token-0123456789', hosts: undefined },
  { id: 'edge-2', token: 'soak-edge-2-token-0123456789', hosts: ['c.soak2.test'] },
] as const;
/** A bounded but realistic key set: 20 directories × 100 objects per host, requested with a skew. */
const DIRS = 20;
const PER_DIR = 100;

export interface SoakOptions {
  /** The whole run, warm-up included. */
  readonly minutes: number;
  /** Samples before this are left out of the slope (start-up, caches and the JIT filling up). */
  readonly warmupMinutes: number;
  readonly rps: number;
  readonly sampleMs: number;
  readonly log: (line: string) => void;
}

export interface RssSeries {
  readonly name: string;
  readonly pid: number;
  /** [seconds since the load started, RSS bytes]. */
  readonly samples: ReadonlyArray<readonly [number, number]>;
  /** Least-squares slope after warm-up, and over the second half alone, in MB per minute. */
  readonly slopeMbPerMin: number;
  readonly lateSlopeMbPerMin: number;
  /**
   * [seconds, live V8 heap after the latest major GC, bytes] from the process's own probe, summed over
   * its isolates (the main thread and every worker thread; heap in use for one without a major GC yet).
   */
  readonly heap: ReadonlyArray<readonly [number, number]>;
  readonly heapSlopeMbPerMin: number;
  /** [seconds, V8 heap reserved + external (heapTotal + external), bytes], summed over the isolates: RSS less this is native memory. */
  readonly v8: ReadonlyArray<readonly [number, number]>;
  /** The same per isolate ('main', 'sqlite-read #2', …): [seconds, heapTotal + external, bytes]. */
  readonly isolates: ReadonlyMap<string, ReadonlyArray<readonly [number, number]>>;
  /** Major GCs the main thread ran during the soak (the live-heap figure is as fresh as the last one). */
  readonly majorGcs: number;
}

export interface LoadStats {
  readonly seconds: number;
  /** Per request kind: sent, answered as expected, failed, latency p50/p99 (ms). */
  readonly kinds: Readonly<Record<string, { sent: number; ok: number; failed: number; p50Ms: number; p99Ms: number }>>;
  /** Requests not sent because too many were in flight (the system fell behind the offered rate). */
  readonly skipped: number;
  /** GETs sent again after a reset on a reused keep-alive socket (each counted once, by its outcome). */
  readonly retries: number;
  readonly xcache: Readonly<Record<string, number>>;
  readonly errorSamples: readonly string[];
}

export interface SoakResult {
  readonly series: readonly RssSeries[];
  /** Per process at the end: RssAnon / RssFile / RssShmem (what the resident memory is), bytes. */
  readonly breakdown: ReadonlyArray<{ readonly name: string; readonly anon: number; readonly file: number; readonly shmem: number }>;
  /** The control plane's SQLite files (database + WAL) at each sample: its page cache grows with them. */
  readonly storeBytes: ReadonlyArray<readonly [number, number]>;
  readonly load: LoadStats;
  readonly originRequests: number;
}

// ---- RSS ----

/** Resident set size of `pid` (VmRSS), bytes; NaN once it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** RssAnon, RssFile, RssShmem of `pid`, bytes (NaN once it is gone). */
function rssBreakdown(pid: number): { anon: number; file: number; shmem: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? Number.NaN) * 1024;
    return { anon: kb('RssAnon'), file: kb('RssFile'), shmem: kb('RssShmem') };
  } catch {
    return { anon: Number.NaN, file: Number.NaN, shmem: Number.NaN };
  }
}

/** One thread's latest probe line (see soak-heap-probe.ts). */
interface ThreadProbe {
  readonly label: string;
  /** Live heap after the thread's latest major GC, or its heap in use before it had one. */
  readonly live: number;
  /** heapTotal + external: what V8 has reserved for this isolate, and the Buffers it accounts. */
  readonly v8: number;
  readonly majorGcs: number;
}

/**
 * The latest line of every thread still writing to `file` (a thread silent for 15 s has ended): the
 * main thread and each worker thread are isolates with heaps of their own, all in the process's RSS.
 */
function lastProbes(file: string): ThreadProbe[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const latest = new Map<number, { thread: number; name?: string; at: number; heapAfterMajorGc: number | null; heapUsed: number; heapTotal: number; external: number; majorGcs: number }>();
  for (const line of text.trimEnd().split('\n')) {
    if (!line) continue;
    try {
      const v = JSON.parse(line) as NonNullable<ReturnType<typeof latest.get>>;
      latest.set(v.thread, v);
    } catch {
      // a line being written as we read: the next sample has it
    }
  }
  const newest = Math.max(...[...latest.values()].map((v) => v.at));
  return [...latest.values()]
    .filter((v) => v.at >= newest - 15_000)
    .sort((a, b) => a.thread - b.thread)
    .map((v) => ({
      label: v.thread === 0 ? 'main' : `${v.name ?? 'worker'} #${v.thread}`,
      live: typeof v.heapAfterMajorGc === 'number' ? v.heapAfterMajorGc : v.heapUsed,
      v8: v.heapTotal + v.external,
      majorGcs: v.majorGcs,
    }));
}

const fileBytes = (path: string): number => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

/** Least-squares slope of y over x; NaN with fewer than two points. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return Number.NaN;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

// ---- processes ----

interface Proc {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

/** Spawns `edgepurge ARGS` and resolves with the port of the first stdout line matching `ready`. */
async function startCli(name: string, args: readonly string[], ready: RegExp, probe: string): Promise<Proc & { port: number }> {
  // With the V8 flags serve/edge run with, given here rather than by main.ts's re-exec (node-flags.ts).
  const child = spawn(process.execPath, [...missingNodeFlags([], process.env.NODE_OPTIONS), '--import', PROBE, CLI, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    // Warnings still show (a lost stream, a failed ack); per-request info lines would drown the output.
    env: { ...process.env, EDGEPURGE_LOG_LEVEL: 'warn', EDGEPURGE_SOAK_PROBE: probe },
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const onData = (c: Buffer) => {
      out += c.toString('utf8');
      const m = ready.exec(out);
      if (m) {
        child.stdout?.off('data', onData);
        // Keep draining stdout so the child never blocks on a full pipe.
        child.stdout?.on('data', (d: Buffer) => process.stdout.write(`  [${name}] ${d.toString('utf8')}`));
        resolve(Number(m[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${name} exited with code ${code} before it was ready: ${out.trim()}`)));
  });
  return { name, child, exited, port };
}

/** Forks this file in `role`; resolves with the child and its first message. */
async function forkRole<T>(name: string, init: object, probe: string): Promise<Proc & { first: T }> {
  // The harness runs with the same flags, so that its own figures are comparable.
  const child = fork(import.meta.filename, [], { execArgv: [...missingNodeFlags([], process.env.NODE_OPTIONS), '--import', PROBE], env: { ...process.env, EDGEPURGE_SOAK_PROBE: probe }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const first = await new Promise<T>((resolve, reject) => {
    child.once('message', (m: T) => resolve(m));
    child.once('exit', (code) => reject(new Error(`${name} exited with code ${code} before it was ready`)));
    child.send(init);
  });
  return { name, child, exited, first };
}

async function stop(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const kill = setTimeout(() => p.child.kill('SIGKILL'), 15_000);
  p.child.kill('SIGTERM');
  await p.exited;
  clearTimeout(kill);
}


async function soakConfig(dir: string, originPort: number): Promise<ConfigInput> {
  const origin = `http://127.0.0.1:${originPort}`;
  const lots = { batch: 1000, daily: 100_000_000 };
  return {
    server: { listen: `127.0.0.1:${await freePort()}` },
    store: { driver: 'sqlite', path: join(dir, 'soak.db') },
    accounts: [
      {
        appId: 1250009999,
        name: 'soak',
        credentials: [CREDENTIAL],
        // Throttling stays on (its buckets are part of what is soaked), far above the offered rate.
        rateLimit: { perSecond: 2000, burst: 4000 },
        quotas: { purge_url: lots, purge_prefix: lots, purge_host: lots, purge_all: lots, purge_cache_tag: lots, prefetch_url: lots },
        zones: ZONES.map((z) => ({ zoneId: z.zoneId, name: z.name, domains: z.hosts.map((host) => ({ host, origin })) })),
      },
      // The tenant whose month of history is seeded before the start (see runSoakBench).
      heavyAccount(),
    ],
    nodes: await Promise.all(NODES.map(async (n) => ({ id: n.id, token: n.token, listen: `127.0.0.1:${await freePort()}`, ...(n.hosts ? { hosts: [...n.hosts] } : {}) }))),
  };
}

export async function runSoakBench(o: SoakOptions): Promise<SoakResult> {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-soak-'));
  const procs: Proc[] = [];
  try {
    const probe = (name: string) => join(dir, `${name}.probe.jsonl`);
    const origin = await forkRole<{ port: number }>('origin', { role: 'origin' }, probe('origin'));
    procs.push(origin);
    // A control plane that has run for a while holds a history larger than its SQLite page caches
    // (16 MiB for the writer and per read worker: bounded, but they fill as pages are first read),
    // and the caches are full. Starting from an empty store would measure the caches filling, not a
    // leak: seed a month of history, which a tenant reads throughout (see historyReads).
    const seed = await seedQueryTenant(join(dir, 'soak.db'), Date.now());
    o.log(`  seeded ${seed.jobs.toLocaleString('en')} jobs (${seed.tasks.toLocaleString('en')} tasks) in ${seed.seconds.toFixed(0)} s; store ${fmtMb(fileBytes(join(dir, 'soak.db')))} MB`);
    const configPath = join(dir, 'edgepurge.yaml');
    writeFileSync(configPath, stringify(await soakConfig(dir, origin.first.port)));
    const cp = await startCli('control-plane', ['serve', '--config', configPath], /control plane on http:\/\/[^\s:]+:(\d+)/, probe('control-plane'));
    procs.push(cp);
    const edges: Array<{ port: number; hosts: readonly string[] }> = [];
    for (const n of NODES) {
      const e = await startCli(n.id, ['edge', '--config', configPath, '--node', n.id, '--control-plane', `http://127.0.0.1:${cp.port}`], /edge node \S+ on http:\/\/[^\s:]+:(\d+)/, probe(n.id));
      procs.push(e);
      edges.push({ port: e.port, hosts: n.hosts ?? ZONES.flatMap((z) => z.hosts) });
    }
    const durationMs = o.minutes * 60_000;
    const history = historyReads(cp.port, seed, durationMs);
    const load = await forkRole<{ started: true }>('load', { role: 'load', spec: { cpPort: cp.port, edges, rps: o.rps } satisfies LoadGenSpec }, probe('load'));
    procs.push(load);
    const loadStats = new Promise<LoadStats>((resolve) => load.child.on('message', (m: { stats?: LoadStats }) => m.stats && resolve(m.stats)));

    const measured = procs.map((p) => ({
      name: p.name, pid: p.child.pid ?? -1, samples: [] as Array<readonly [number, number]>, heap: [] as Array<readonly [number, number]>, v8: [] as Array<readonly [number, number]>,
      isolates: new Map<string, Array<readonly [number, number]>>(), majorGcs: 0,
    }));
    const storeBytes: Array<readonly [number, number]> = [];
    const t0 = performance.now();
    let nextReport = 60;
    for (;;) {
      const t = (performance.now() - t0) / 1000;
      for (const m of measured) {
        m.samples.push([t, rssBytes(m.pid)] as const);
        const threads = lastProbes(probe(m.name));
        const sum = (xs: readonly number[]) => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) : Number.NaN);
        m.heap.push([t, sum(threads.map((p) => p.live))] as const);
        m.v8.push([t, sum(threads.map((p) => p.v8))] as const);
        // One column per sample for every isolate (— before it started and after it ended).
        for (const p of threads) if (!m.isolates.has(p.label)) m.isolates.set(p.label, m.samples.slice(0, -1).map(([x]) => [x, Number.NaN] as const));
        for (const [label, series] of m.isolates) series.push([t, threads.find((p) => p.label === label)?.v8 ?? Number.NaN] as const);
        m.majorGcs = threads.find((p) => p.label === 'main')?.majorGcs ?? 0;
      }
      storeBytes.push([t, fileBytes(join(dir, 'soak.db')) + fileBytes(join(dir, 'soak.db-wal'))] as const);
      if (t >= nextReport) {
        o.log(`  ${Math.round(t / 60)} min: ${measured.map((m) => `${m.name} ${fmtMb(m.samples.at(-1)?.[1] ?? Number.NaN)}`).join(', ')} MB`);
        nextReport += 60;
      }
      if (t * 1000 >= durationMs) break;
      await new Promise((r) => setTimeout(r, Math.min(o.sampleMs, durationMs - t * 1000 + 1)));
    }
    const reads = await history;
    o.log(`  history reads (heaviest query of every action, one at a time, at most one a second, warm-up included): ${reads.queries} (${reads.failed} failed)`);
    const breakdown = measured.map((m) => ({ name: m.name, ...rssBreakdown(m.pid) }));
    load.child.send({ stop: true });
    const stats = await loadStats;
    origin.child.send({ ask: 'requests' });
    const originRequests = await new Promise<number>((r) => origin.child.once('message', (m: { requests: number }) => r(m.requests)));
    const warm = o.warmupMinutes * 60;
    const series: RssSeries[] = measured.map((m) => {
      const perMin = (pts: ReadonlyArray<readonly [number, number]>) => slope(pts.filter(([, y]) => Number.isFinite(y)).map(([x, y]) => [x / 60, y / MB] as const));
      return {
        ...m,
        slopeMbPerMin: perMin(m.samples.filter(([x]) => x >= warm)),
        lateSlopeMbPerMin: perMin(m.samples.filter(([x]) => x >= (warm + o.minutes * 60) / 2)),
        heapSlopeMbPerMin: perMin(m.heap.filter(([x]) => x >= warm)),
      };
    });
    return { series, breakdown, storeBytes, load: stats, originRequests };
  } finally {
    for (const p of procs.reverse()) await stop(p);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * For the whole soak, warm-up included: the heaviest history queries of every action over the seeded
 * month, one at a time and at most one a second, so that every read worker's page cache and the
 * writer's (job and log reads) reach their bound, and the read path's biggest answers are soaked too.
 * The pace is the same from start to end on purpose: each read worker is an isolate whose heap grows
 * to ~50 MB on these answers, and V8 gives most of it back a minute after they stop. Run during the
 * warm-up only (as it was), that give-back showed as a 50 MB drop after the warm-up and a climb after
 * it: the soak measured the load changing, not the system (issue 7's failed 10-minute run).
 */
async function historyReads(port: number, seed: QuerySeed, forMs: number): Promise<{ queries: number; failed: number }> {
  const client = new Client(port);
  const queries = heavyQueries(port, Date.now(), seed);
  const until = performance.now() + forMs;
  let n = 0;
  let failed = 0;
  try {
    while (performance.now() < until) {
      const started = performance.now();
      const q = queries[n++ % queries.length]!;
      const r = await client.send(q.call());
      if (q.check(r.status, r.body).error !== undefined) failed++;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(started + 1000, until) - performance.now())));
    }
  } finally {
    client.close();
  }
  return { queries: n, failed };
}

/** Width of the windows whose slopes the soak prints (minutes). */
const WINDOW_MIN = 2;
const fmtMb = (b: number): string => (Number.isFinite(b) ? (b / MB).toFixed(0) : '—');
const signed = (x: number): string => (!Number.isFinite(x) ? 'n/a' : `${x >= 0 ? '+' : ''}${x.toFixed(2)}`);

interface Row {
  figure: string;
  measured: string;
  bar?: string;
  verdict?: string;
}

/** The `soak` part of `npm run bench`: runs, prints the series and returns the rows with a bar. */
export async function soakSection(heading: (title: string) => void, table: (rows: Row[]) => void): Promise<Row[]> {
  const measuredMinutes = Number(process.env.EDGEPURGE_SOAK_MINUTES ?? 10);
  // The warm-up: the control plane's RSS climbs 10–20 MB/min for its first 4 minutes (isolate heaps,
  // malloc arenas, page caches filling) and 2–7 MB/min to about minute 7; a 3-minute warm-up put that
  // climb into the slope. Past minute 7, two 10-minute runs held within 3 MB for their last 3–4 minutes,
  // but two 17-minute runs (side by side, load ~19) still rose 1.4–1.9 MB/min with every live heap flat:
  // 10 measured minutes after 7 of warm-up is the honest test of it (docs/operator-guide.md "Memory").
  const warmupMinutes = Number(process.env.EDGEPURGE_SOAK_WARMUP_MINUTES ?? 7);
  const rps = Number(process.env.EDGEPURGE_SOAK_RPS ?? 300);
  if (!(measuredMinutes > 0) || !(warmupMinutes >= 0) || !(rps > 0)) {
    throw new Error('EDGEPURGE_SOAK_MINUTES and EDGEPURGE_SOAK_RPS must be positive numbers, EDGEPURGE_SOAK_WARMUP_MINUTES zero or more');
  }
  const minutes = warmupMinutes + measuredMinutes;
  heading(`Hardening 3: soak, ${warmupMinutes} min warm-up + ${measuredMinutes} min measured at ${rps} req/s, RSS of every process (bench/soak-bench.ts)`);
  const log = (l: string) => console.log(l);
  log('  processes: control plane (edgepurge serve, SQLite), edge-1 (all domains), edge-2 (one domain), origin, load generator');
  const flags = missingNodeFlags([], process.env.NODE_OPTIONS);
  log(`  control plane and edges run with ${flags.length > 0 ? flags.join(' ') : `NODE_OPTIONS=${process.env.NODE_OPTIONS ?? ''}`} (what edgepurge serve|edge run with unless NODE_OPTIONS sets its own)`);
  log('  load: ~23 % API (purge url/prefix/tag/host/all, prefetch, legacy RefreshCdnUrl, DescribePurge/PrefetchTasks), ~77 % edge GETs;');
  log('    and from the start, warm-up included, a tenant reading its seeded month of history: the heaviest query of every action, one at a time, at most one a second');
  const r = await runSoakBench({ minutes, warmupMinutes, rps, sampleMs: 5000, log });
  const every = Math.max(1, Math.round(30_000 / 5000));
  log(`  RSS in MB every 30 s (sampled every 5 s; slope = least squares over the samples after ${warmupMinutes.toFixed(1)} min):`);
  for (const s of r.series) {
    const pts = s.samples.filter((_, i) => i % every === 0).map(([, y]) => fmtMb(y));
    log(`    ${s.name.padEnd(14)} ${pts.join(' ')}`);
  }
  // Where the settling ends: a leak keeps every window's slope up, settling memory brings them to ~0.
  // Windows laid from the end of the warm-up, back to the start and on to the end (a shorter one first).
  const bounds: number[] = [warmupMinutes];
  while (bounds[0]! > 0) bounds.unshift(Math.max(0, bounds[0]! - WINDOW_MIN));
  while (bounds.at(-1)! < minutes) bounds.push(Math.min(minutes, bounds.at(-1)! + WINDOW_MIN));
  log(`  RSS slope in ${WINDOW_MIN}-minute windows from the end of the warm-up (|), MB/min:`);
  for (const s of r.series) {
    const windows: string[] = [];
    for (let i = 1; i < bounds.length; i++) {
      const [from, to] = [bounds[i - 1]!, bounds[i]!];
      const pts = s.samples.filter(([x, y]) => x >= from * 60 && x <= to * 60 && Number.isFinite(y)).map(([x, y]) => [x / 60, y / MB] as const);
      if (from === warmupMinutes && from > 0) windows.push('|');
      windows.push(signed(slope(pts)));
    }
    log(`    ${s.name.padEnd(14)} ${windows.join(' ')}`);
  }
  log('  live V8 heap after the latest major GC, all isolates of the process, MB every 30 s (what leaked JS objects would raise; garbage does not):');
  for (const s of r.series) {
    log(`    ${s.name.padEnd(14)} ${s.heap.filter((_, i) => i % every === 0).map(([, y]) => fmtMb(y)).join(' ')}`);
  }
  log('  V8 heap reserved + external (heapTotal + external), all isolates, MB every 30 s: RSS less this is native memory (SQLite page caches, malloc arenas, code):');
  for (const s of r.series) {
    log(`    ${s.name.padEnd(14)} ${s.v8.filter((_, i) => i % every === 0).map(([, y]) => fmtMb(y)).join(' ')}`);
    // A process with worker threads: each isolate's share (a worker's heap is in the RSS, not in the main thread's figures).
    if (s.isolates.size > 1) {
      for (const [label, pts] of s.isolates) log(`      ${label.padEnd(18)} ${pts.filter((_, i) => i % every === 0).map(([, y]) => fmtMb(y)).join(' ')}`);
    }
  }
  log(`    ${'(store files)'.padEnd(14)} ${r.storeBytes.filter((_, i) => i % every === 0).map(([, y]) => fmtMb(y)).join(' ')}   ← the control plane's SQLite database + WAL`);
  log(`  at the end, resident memory by kind (MB, anon / file / shmem): ${r.breakdown.map((b) => `${b.name} ${fmtMb(b.anon)} / ${fmtMb(b.file)} / ${fmtMb(b.shmem)}`).join('; ')}`);
  const l = r.load;
  const total = Object.values(l.kinds).reduce((a, k) => a + k.sent, 0);
  log(`  offered ${(total / l.seconds).toFixed(0)} req/s for ${(l.seconds / 60).toFixed(1)} min; skipped (too many in flight) ${l.skipped}; GETs retried after a reset on a reused socket ${l.retries}; origin requests ${r.originRequests}`);
  for (const [kind, k] of Object.entries(l.kinds)) {
    log(`    ${kind.padEnd(18)} ${(k.sent / l.seconds).toFixed(1).padStart(6)}/s  ok ${k.ok}  failed ${k.failed}  p50 ${k.p50Ms.toFixed(1)} ms  p99 ${k.p99Ms.toFixed(1)} ms`);
  }
  log(`    edge x-cache: ${Object.entries(l.xcache).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const e of l.errorSamples) log(`    error: ${e}`);
  const rows: Row[] = r.series.map((s) => {
    const first = s.samples.find(([x]) => x >= warmupMinutes * 60)?.[1] ?? Number.NaN;
    // The origin and the load generator are the harness: shown for context, without a bar.
    const system = s.name === 'control-plane' || s.name.startsWith('edge-');
    return {
      figure: `soak RSS slope after warm-up: ${s.name}${system ? '' : ' (harness)'}`,
      measured: `${signed(s.slopeMbPerMin)} MB/min (${fmtMb(s.samples[0]?.[1] ?? Number.NaN)} → ${fmtMb(first)} → ${fmtMb(s.samples.at(-1)?.[1] ?? Number.NaN)} MB; second half ${signed(s.lateSlopeMbPerMin)})`,
      ...(system ? { bar: '≤ 1 MB/min (after warm-up and over the second half)', verdict: s.slopeMbPerMin <= 1 && s.lateSlopeMbPerMin <= 1 ? 'PASS' : 'FAIL' } : {}),
    };
  });
  for (const s of r.series) {
    const first = s.heap.find(([x, y]) => x >= warmupMinutes * 60 && Number.isFinite(y))?.[1] ?? Number.NaN;
    rows.push({ figure: `  live heap after major GC, slope after warm-up: ${s.name}`, measured: `${signed(s.heapSlopeMbPerMin)} MB/min (${fmtMb(first)} → ${fmtMb(s.heap.at(-1)?.[1] ?? Number.NaN)} MB; ${s.majorGcs} major GCs)` });
  }
  table(rows);
  return rows.filter((x) => x.bar);
}

// ---- children: origin ----

/** /dN/oK.js: cacheable, ETag, Cache-Tag dN,kM; one in four expires after 30 s (revalidations); /missing/ → 404. */
async function runOrigin(): Promise<{ port: number; requests: () => number }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    const m = /^\/d(\d+)\/o(\d+)\.js$/.exec((req.url ?? '').split('?', 1)[0] ?? '');
    if (!m) return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    const [d, k] = [Number(m[1]), Number(m[2])];
    const body = Buffer.alloc(200 + ((d * PER_DIR + k) % 40) * 200, 'x');
    const etag = `"o-${d}-${k}"`;
    const headers = { 'Content-Type': 'application/javascript', 'Cache-Control': `public, max-age=${k % 4 === 0 ? 30 : 3600}`, ETag: etag, 'Cache-Tag': `d${d},k${k % 50}` };
    if (req.headers['if-none-match'] === etag) return void res.writeHead(304, headers).end();
    res.writeHead(200, { ...headers, 'Content-Length': body.length }).end(req.method === 'HEAD' ? undefined : body);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as { port: number }).port, requests: () => requests };
}

// ---- children: load generator ----

interface LoadGenSpec {
  readonly cpPort: number;
  readonly edges: ReadonlyArray<{ readonly port: number; readonly hosts: readonly string[] }>;
  readonly rps: number;
}

interface Req {
  readonly port: number;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Record<string, string | number>;
  readonly body?: string;
  /** undefined: as expected; otherwise what was wrong. */
  readonly check: (status: number, headers: http.IncomingHttpHeaders, body: string) => string | undefined;
  /** The check reads the body (API answers); edge bodies are only drained, to keep the generator light. */
  readonly readBody?: boolean;
}

const TEO = '2022-09-01';
const API_CHECK = (status: number, _h: http.IncomingHttpHeaders, body: string) => (status !== 200 || body.includes('"Error":') ? `HTTP ${status} ${body.slice(0, 200)}` : undefined);
const V2_CHECK = (status: number, _h: http.IncomingHttpHeaders, body: string) => (status !== 200 || !body.includes('"code":0') ? `HTTP ${status} ${body.slice(0, 200)}` : undefined);
const iso = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

/** Builds one request of each kind (fresh signatures: the soak outlives the 300 s signature window). */
class Mix {
  readonly #s: LoadGenSpec;
  readonly #r = prng(42);
  constructor(spec: LoadGenSpec) {
    this.#s = spec;
  }
  #pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.#r() * xs.length)]!;
  }
  /** A key of the bounded set, skewed towards the first ones (a long tail gets fewer requests). */
  #key(): string {
    const i = Math.floor(DIRS * PER_DIR * this.#r() ** 2);
    return `/d${Math.floor(i / PER_DIR)}/o${i % PER_DIR}.js`;
  }
  #zone() {
    return this.#pick(ZONES);
  }
  #api(action: string, params: unknown): Omit<Req, 'check'> {
    const host = `127.0.0.1:${this.#s.cpPort}`;
    const body = JSON.stringify(params);
    const headers = signTc3Request({ ...CREDENTIAL, host, service: 'teo', action, version: TEO, timestamp: Math.floor(Date.now() / 1000), body, method: 'POST', contentType: 'application/json' });
    return { port: this.#s.cpPort, method: 'POST', path: '/', headers, body };
  }

  /** Kinds with their share of the offered load; edge GETs take what is left. */
  readonly kinds: ReadonlyArray<readonly [name: string, perMille: number, make: () => Req]> = [
    ['purge_url', 100, () => {
      const z = this.#zone();
      const targets = Array.from({ length: 1 + Math.floor(this.#r() * 3) }, () => `http://${this.#pick(z.hosts)}${this.#key()}`);
      return { ...this.#api('CreatePurgeTask', { ZoneId: z.zoneId, Type: 'purge_url', Targets: targets }), check: API_CHECK, readBody: true };
    }],
    ['purge_prefix', 20, () => {
      const z = this.#zone();
      return { ...this.#api('CreatePurgeTask', { ZoneId: z.zoneId, Type: 'purge_prefix', Targets: [`http://${this.#pick(z.hosts)}/d${Math.floor(this.#r() * DIRS)}/`] }), check: API_CHECK, readBody: true };
    }],
    ['purge_cache_tag', 12, () => {
      const z = this.#zone();
      const tag = this.#r() < 0.5 ? `d${Math.floor(this.#r() * DIRS)}` : `k${Math.floor(this.#r() * 50)}`;
      return { ...this.#api('CreatePurgeTask', { ZoneId: z.zoneId, Type: 'purge_cache_tag', Targets: [tag], CacheTag: { Domains: [...z.hosts] } }), check: API_CHECK, readBody: true };
    }],
    ['purge_host', 0.2, () => {
      const z = this.#zone();
      return { ...this.#api('CreatePurgeTask', { ZoneId: z.zoneId, Type: 'purge_host', Targets: [this.#pick(z.hosts)], Method: 'invalidate' }), check: API_CHECK, readBody: true };
    }],
    ['purge_all', 0.05, () => ({ ...this.#api('CreatePurgeTask', { ZoneId: this.#zone().zoneId, Type: 'purge_all' }), check: API_CHECK, readBody: true })],
    ['prefetch', 25, () => {
      const z = this.#zone();
      // One in five is missing at the origin: the task ends `failed` (results travel back in acks).
      const path = this.#r() < 0.2 ? `/missing/${randomInt(1e9)}.js` : this.#key();
      return { ...this.#api('CreatePrefetchTask', { ZoneId: z.zoneId, Targets: [`http://${this.#pick(z.hosts)}${path}`] }), check: API_CHECK, readBody: true };
    }],
    ['v2_RefreshCdnUrl', 15, () => {
      const host = `127.0.0.1:${this.#s.cpPort}`;
      const params: Record<string, string> = {
        Action: 'RefreshCdnUrl',
        Region: '',
        SecretId: CREDENTIAL.secretId,
        Timestamp: String(Math.floor(Date.now() / 1000)),
        Nonce: String(randomInt(1, 2 ** 47)),
        SignatureMethod: 'HmacSHA256',
        'urls.0': `http://${this.#pick(this.#zone().hosts)}${this.#key()}`,
      };
      params['Signature'] = hmacSign(CREDENTIAL.secretKey, hmacStringToSign('POST', host, '/v2/index.php', params, 'HmacSHA256'), 'HmacSHA256');
      const body = new URLSearchParams(params).toString();
      return { port: this.#s.cpPort, method: 'POST', path: '/v2/index.php', headers: { Host: host, 'Content-Type': 'application/x-www-form-urlencoded' }, body, check: V2_CHECK, readBody: true };
    }],
    ['DescribePurgeTasks', 45, () => {
      const z = this.#zone();
      const now = Date.now();
      const filters = [
        [{ Name: 'statuses', Values: [this.#pick(['processing', 'success', 'failed', 'timeout'])] }],
        [{ Name: 'domains', Values: [this.#pick(z.hosts)] }],
        [{ Name: 'target', Values: [`o${Math.floor(this.#r() * PER_DIR)}.js`], Fuzzy: true }],
        [],
      ];
      return {
        ...this.#api('DescribePurgeTasks', { ZoneId: z.zoneId, StartTime: iso(now - 3_600_000), EndTime: iso(now + 60_000), Filters: this.#pick(filters), Offset: 0, Limit: 20 }),
        check: API_CHECK, readBody: true,
      };
    }],
    ['DescribePrefetch', 10, () => {
      const now = Date.now();
      return { ...this.#api('DescribePrefetchTasks', { ZoneId: this.#zone().zoneId, StartTime: iso(now - 3_600_000), EndTime: iso(now + 60_000), Offset: 0, Limit: 20 }), check: API_CHECK, readBody: true };
    }],
  ];

  edgeGet(): Req {
    const e = this.#pick(this.#s.edges);
    return {
      port: e.port,
      method: 'GET',
      path: this.#key(),
      headers: { Host: this.#pick(e.hosts) },
      check: (status) => (status === 200 ? undefined : `edge HTTP ${status}`),
    };
  }

  next(): [string, Req] {
    let x = this.#r() * 1000;
    for (const [name, share, make] of this.kinds) {
      if (x < share) return [name, make()];
      x -= share;
    }
    return ['edge GET', this.edgeGet()];
  }
}

/** Open-loop load at `rps` (requests go out on schedule whether or not earlier ones were answered). */
function runLoadGen(spec: LoadGenSpec): { stop: () => Promise<LoadStats> } {
  // Idle sockets are closed well before the servers' keep-alive timeouts (edge 5 s, control plane 65 s),
  // so the generator does not send on a socket the server is closing (a reset counted as the system's).
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32, timeout: 2000 });
  const mix = new Mix(spec);
  const kinds = new Map<string, { sent: number; answered: number; ok: number; failed: number; lat: number[] }>();
  const xcache: Record<string, number> = {};
  const errorSamples: string[] = [];
  const MAX_IN_FLIGHT = 256;
  let inFlight = 0;
  let skipped = 0;
  let retries = 0;
  let issued = 0;
  const t0 = performance.now();
  const send = (kind: string, r: Req) => {
    let k = kinds.get(kind);
    if (!k) kinds.set(kind, (k = { sent: 0, answered: 0, ok: 0, failed: 0, lat: [] }));
    k.sent++;
    inFlight++;
    const started = performance.now();
    let retried = false;
    const done = (err: string | undefined) => {
      inFlight--;
      // A fixed-size uniform sample of latencies (reservoir): the load generator's own RSS is measured too.
      const ms = performance.now() - started;
      k.answered++;
      if (k.lat.length < 20_000) k.lat.push(ms);
      else if (Math.random() < 20_000 / k.answered) k.lat[randomInt(20_000)] = ms;
      if (err === undefined) k.ok++;
      else {
        k.failed++;
        if (errorSamples.length < 8) errorSamples.push(`${kind}: ${err}`);
      }
    };
    const body = r.body === undefined ? undefined : Buffer.from(r.body);
    const attempt = (): void => {
      const req = http.request(
        { host: '127.0.0.1', port: r.port, method: r.method, path: r.path, agent, headers: body ? { ...r.headers, 'Content-Length': body.length } : r.headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => r.readBody && chunks.push(c));
          res.on('end', () => {
            const x = res.headers['x-cache'];
            if (typeof x === 'string') xcache[x] = (xcache[x] ?? 0) + 1;
            done(r.check(res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString('utf8')));
          });
          res.on('error', (e) => done(`response: ${e.message}`));
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error('timed out after 30 s')));
      req.on('error', (e: NodeJS.ErrnoException) => {
        // A GET on a kept-alive socket the server closed as it went out: sent again once, as a browser does.
        if (req.reusedSocket && e.code === 'ECONNRESET' && r.method === 'GET' && !retried) {
          retried = true;
          retries++;
          return attempt();
        }
        done(`request: ${e.message}`);
      });
      req.end(body);
    };
    attempt();
  };
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * spec.rps);
    for (; issued < due; issued++) {
      if (inFlight >= MAX_IN_FLIGHT) {
        skipped++;
        continue;
      }
      const [kind, r] = mix.next();
      send(kind, r);
    }
  }, 10);
  return {
    stop: async () => {
      clearInterval(timer);
      const seconds = (performance.now() - t0) / 1000;
      for (let i = 0; inFlight > 0 && i < 100; i++) await new Promise((r) => setTimeout(r, 100));
      agent.destroy();
      const out: Record<string, { sent: number; ok: number; failed: number; p50Ms: number; p99Ms: number }> = {};
      for (const [name, k] of kinds) out[name] = { sent: k.sent, ok: k.ok, failed: k.failed, p50Ms: quantile(k.lat, 0.5), p99Ms: quantile(k.lat, 0.99) };
      return { seconds, kinds: out, skipped, retries, xcache, errorSamples };
    },
  };
}

if (import.meta.main && process.send) {
  process.once('message', (init: { role: 'origin' } | { role: 'load'; spec: LoadGenSpec }) => {
    if (init.role === 'origin') {
      void runOrigin().then((o) => {
        process.on('message', (m: { ask?: string }) => m.ask === 'requests' && process.send?.({ requests: o.requests() }));
        process.send?.({ port: o.port });
      });
    } else {
      const gen = runLoadGen(init.spec);
      process.on('message', (m: { stop?: boolean }) => {
        if (m.stop) void gen.stop().then((stats) => process.send?.({ stats }, () => process.exit(0)));
      });
      process.send?.({ started: true });
    }
  });
  process.on('disconnect', () => process.exit(0));
}
