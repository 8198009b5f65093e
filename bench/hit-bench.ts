// Cache-hit throughput (issue 4): one built-in edge node vs Varnish in front of the same origin, side
// by side, with the same load (keep-alive GETs of a few small cached objects) from a separate process.
// Each server gets one CPU and the load generator the other, so the figures compare one core's worth.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { freePort } from '../test/e2e/helpers.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runLoad, type LoadCheck, type LoadRequest, type LoadRound } from './load.ts';
import { BenchChild, treeCpuSeconds } from './processes.ts';
import { median } from './stats.ts';

const HOST = 'hit.bench.test';

export interface HitBenchOptions {
  readonly objects?: number;
  readonly objectBytes?: number;
  readonly connections?: number;
  readonly roundMs?: number;
  readonly rounds?: number;
  /** CPU for the server under test and for the load generator (Linux taskset); omitted: not pinned. */
  readonly serverCpu?: number;
  readonly loadCpu?: number;
  readonly log?: (line: string) => void;
}

export interface HitFigure {
  readonly server: string;
  readonly rounds: readonly LoadRound[];
  /** Medians over the rounds. */
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errors: number;
  readonly errorSamples: readonly string[];
  /** Requests that reached the origin during the measured load (0: every one was a hit). */
  readonly originRequests: number;
  /** The server's CPU time over wall time during the load (warm-up included), % of one core. */
  readonly serverCpuPct: number;
}

export interface HitBenchResult {
  readonly objects: number;
  readonly objectBytes: number;
  readonly connections: number;
  readonly edge: HitFigure;
  readonly varnish: HitFigure | { readonly skipped: string };
  /** Median over pairs of rounds of edge rps / varnish rps (NaN when Varnish was skipped). */
  readonly ratio: number;
  readonly ratios: readonly number[];
}

/** A cacheable origin: /obj/N answers `bytes` bytes with max-age=3600, and counts requests. */
async function startOrigin(bytes: number): Promise<{ port: number; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const body = Buffer.alloc(bytes, 'x');
  const server = http.createServer((req, res) => {
    requests++;
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'public, max-age=3600', ETag: '"bench"', 'Content-Length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    requests: () => requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function get(port: number, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers: { host: HOST }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      })
      .on('error', reject);
  });
}

/** Why varnishd cannot be used here, or undefined when it can. */
export function varnishMissing(): string | undefined {
  const r = spawnSync('varnishd', ['-V'], { encoding: 'utf8' });
  if (r.error) return `varnishd not found on PATH (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}); install it with: apt-get install -y varnish`;
  if (r.status !== 0) return `varnishd -V exited with ${r.status}: ${(r.stderr || r.stdout).trim().split('\n')[0]}`;
  return undefined;
}

interface Varnish {
  readonly port: number;
  readonly pid: number | undefined;
  readonly version: string;
  stop(): Promise<void>;
}

/** Starts varnishd in the foreground on a free port in front of `originPort`; resolves once it answers. */
async function startVarnish(originPort: number, cpu: number | undefined): Promise<Varnish> {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-varnish-'));
  const port = await freePort();
  const vcl = join(dir, 'bench.vcl');
  // The builtin VCL does the caching; this only names the backend (same as -b).
  writeFileSync(vcl, `vcl 4.1;\nbackend origin { .host = "127.0.0.1"; .port = "${originPort}"; }\n`);
  const args = ['-F', '-a', `127.0.0.1:${port}`, '-f', vcl, '-n', join(dir, 'work'), '-s', 'malloc,256m', '-j', 'none'];
  const cmd = cpu === undefined ? 'varnishd' : 'taskset';
  const child: ChildProcess = spawn(cmd, cpu === undefined ? args : ['-c', String(cpu), 'varnishd', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = performance.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`varnishd exited with ${child.exitCode}: ${output.trim().slice(-500)}`);
    }
    try {
      const r = await get(port, '/obj/0');
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) {
      await stop();
      throw new Error(`varnishd did not answer within 20 s: ${output.trim().slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const version = /varnish-[\d.]+/.exec(spawnSync('varnishd', ['-V'], { encoding: 'utf8' }).stderr ?? '')?.[0] ?? 'varnish';
  return { port, pid: child.pid, version, stop };
}

interface Target {
  readonly name: string;
  readonly port: number;
  readonly check: LoadCheck;
  readonly cpuSeconds: () => number;
  readonly rounds: LoadRound[];
  errorSamples: readonly string[];
  originRequests: number;
  cpu: number;
  wall: number;
}

/** One measured round against `t`: a fresh load process, 1 s of warm-up, then `roundMs`. */
async function round(t: Target, origin: { requests: () => number }, requests: LoadRequest[], o: HitBenchOptions): Promise<void> {
  const before = origin.requests();
  const [cpu0, t0] = [t.cpuSeconds(), performance.now()];
  const res = await runLoad({
    host: '127.0.0.1',
    port: t.port,
    requests,
    connections: o.connections ?? 32,
    warmupMs: 1000,
    durationMs: o.roundMs ?? 5000,
    check: t.check,
    ...(o.loadCpu === undefined ? {} : { cpu: o.loadCpu }),
  });
  t.cpu += t.cpuSeconds() - cpu0;
  t.wall += (performance.now() - t0) / 1000;
  t.rounds.push(...res.rounds);
  if (t.errorSamples.length === 0) t.errorSamples = res.errorSamples;
  t.originRequests += origin.requests() - before;
}

function figure(t: Target): HitFigure {
  return {
    server: t.name,
    rounds: t.rounds,
    rps: median(t.rounds.map((r) => r.rps)),
    p50Ms: median(t.rounds.map((r) => r.p50Ms)),
    p99Ms: median(t.rounds.map((r) => r.p99Ms)),
    errors: t.rounds.reduce((s, r) => s + r.errors, 0),
    errorSamples: t.errorSamples,
    originRequests: t.originRequests,
    serverCpuPct: (t.cpu / t.wall) * 100,
  };
}

const target = (name: string, port: number, check: LoadCheck, cpuSeconds: () => number): Target => ({
  name, port, check, cpuSeconds, rounds: [], errorSamples: [], originRequests: 0, cpu: 0, wall: 0,
});

/**
 * Both servers run side by side; their rounds alternate (edge, varnish, edge, …) so that noise from
 * the rest of the machine lands on both alike. Ratios are taken per pair of rounds.
 */
export async function runHitBench(o: HitBenchOptions = {}): Promise<HitBenchResult> {
  const log = o.log ?? (() => {});
  const objects = o.objects ?? 4;
  const objectBytes = o.objectBytes ?? 1024;
  const requests: LoadRequest[] = Array.from({ length: objects }, (_, i) => ({ method: 'GET', path: `/obj/${i}`, headers: { Host: HOST } }));
  const origin = await startOrigin(objectBytes);
  let edge: BenchChild | undefined;
  let v: Varnish | undefined;
  try {
    edge = await BenchChild.start({ role: 'edge', domains: [{ host: HOST, origin: `http://127.0.0.1:${origin.port}` }] }, o.serverCpu);
    const child = edge;
    const targets: Target[] = [target('EdgePurge edge node', edge.port, { header: ['x-cache', 'HIT'] }, () => child.cpuSeconds())];
    let skipped = varnishMissing();
    if (!skipped) {
      try {
        v = await startVarnish(origin.port, o.serverCpu);
        const pid = v.pid;
        targets.push(target(v.version, v.port, {}, () => treeCpuSeconds(pid)));
      } catch (e) {
        skipped = `varnishd could not be run: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
    // Fill both caches (two GETs per object), so that every measured request is a hit.
    for (const t of targets) for (let k = 0; k < 2; k++) for (const r of requests) await get(t.port, r.path);
    for (let i = 0; i < (o.rounds ?? 3); i++) {
      for (const t of targets) {
        log(`  round ${i + 1}: ${t.name} …`);
        await round(t, origin, requests, o);
      }
    }
    const [e, vt] = targets;
    const edgeFigure = figure(e!);
    const varnish = vt ? figure(vt) : { skipped: skipped ?? 'unknown' };
    const ratios = vt ? e!.rounds.map((r, k) => r.rps / (vt.rounds[k]?.rps ?? Number.NaN)) : [];
    return { objects, objectBytes, connections: o.connections ?? 32, edge: edgeFigure, varnish, ratio: ratios.length ? median(ratios) : Number.NaN, ratios };
  } finally {
    await v?.stop();
    await edge?.stop();
    await origin.close();
  }
}
