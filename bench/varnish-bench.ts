// Varnish driver figures (issue 8), against real varnishd processes on this machine:
//   purge  URL purges applied per second by the driver (sequential apply, and applyBatch) vs one HTTP
//          PURGE per URL from a sequential loop against a conventional `return (purge)` VCL.
//   prefix a prefix purge on a Varnish holding 100,000 objects: time to apply as a lurker-friendly ban,
//          hit throughput before / right after / once the ban lurker is done (also with 1,000 bans), and
//          the same purge through xkey keys per path segment (the alternative), with xkey's memory.
//   hit    hit throughput with edgepurge.vcl vs a plain VCL (bar ≥ 0.95), alternating 1 s turns.
// Part `varnish` of `npm run bench`; alone: npx node bench/varnish-bench.ts [--only hit,purge,prefix] [--objects N]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { DriverCommand } from '../src/drivers/edge-driver.ts';
import { EDGEPURGE_VCL_PATH } from '../src/drivers/varnish/edgepurge-vcl.ts';
import { VarnishAdmin } from '../src/drivers/varnish/varnish-admin.ts';
import { VarnishDriver } from '../src/drivers/varnish/varnish-driver.ts';
import { startVarnishd, varnishdMissing, type Varnishd } from '../test/drivers/varnishd.ts';
import { runAlternatingLoad, runLoad, type AlternatingTurn, type LoadRequest } from './load.ts';
import { median } from './stats.ts';

const HOST = 'bench.varnish.test';
const PARTS = ['hit', 'purge', 'prefix'] as const;
const { values } = parseArgs({ options: { only: { type: 'string' }, objects: { type: 'string' }, rounds: { type: 'string' } } });
const only = (values.only ?? PARTS.join(',')).split(',').map((s) => s.trim());
const OBJECTS = Number(values.objects ?? 100_000);
const ROUNDS = Number(values.rounds ?? 3);
/** Pairs of hit-throughput turns (0.5 s each side): 40 gave the same ratio ±0.01 twice on a machine at load 5–10. */
const HIT_PAIRS = 40;
const canPin = process.platform === 'linux' && cpus().length >= 2 && spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
const SERVER_CPU = canPin ? 0 : undefined;
const LOAD_CPU = canPin ? 1 : undefined;

const log = (s: string) => console.log(s);
const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d }) : 'n/a');

// ---- the origin: any path is a small cacheable object; /p/K/I objects carry xkey-able segment tags ----

function startOrigin(): Promise<{ port: number; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const body = Buffer.alloc(100, 'x');
  const server = http.createServer((req, res) => {
    requests++;
    const headers: Record<string, string | number> = { 'content-type': 'text/plain', 'cache-control': 'public, max-age=3600', etag: '"b"', 'content-length': body.length };
    const m = /^\/p\/(\d+)\//.exec(req.url ?? '');
    // The xkey alternative to bans: one key per path segment (`s:/p/`, `s:/p/K/`).
    if (m) headers['cache-tag'] = `s:/p/, s:/p/${m[1]}/`;
    res.writeHead(200, headers);
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as AddressInfo).port,
        requests: () => requests,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }),
    ),
  );
}

const shippedVcl = (port: number) =>
  `vcl 4.1;\ninclude "${EDGEPURGE_VCL_PATH}";\nbackend origin { .host = "127.0.0.1"; .port = "${port}"; }\n`;

/** What people run today: the Varnish book's PURGE block (ACL + return (purge)), nothing else. */
const plainVcl = (port: number) => `vcl 4.1;
backend origin { .host = "127.0.0.1"; .port = "${port}"; }
acl purgers { "127.0.0.1"; }
sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) { return (synth(405)); }
        return (purge);
    }
}
`;

const VARNISHD_ARGS = ['-t', '3600', '-p', 'ban_lurker_sleep=0.01', '-p', 'ban_lurker_age=1', '-p', 'thread_pools=1', '-p', 'thread_pool_min=50', '-p', 'thread_pool_max=500'];

function adminOf(v: Varnishd): VarnishAdmin {
  return new VarnishAdmin({ host: '127.0.0.1', port: Number(v.admin.split(':')[1]), secret: readFileSync(v.secretFile), timeoutMs: 60_000 });
}

/** GETs every path once through `v`, `parallel` at a time, on kept-alive connections. */
async function warm(v: Varnishd, paths: readonly string[], parallel = 16): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: parallel });
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const path = paths[next++]!;
      await new Promise<void>((resolve, reject) =>
        http
          .get({ host: '127.0.0.1', port: v.port, path, headers: { host: HOST }, agent }, (res) => {
            res.resume();
            res.on('end', () => resolve());
          })
          .on('error', reject),
      );
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  agent.destroy();
}

/** Hit throughput over `paths` for `ms` (a load process on its own CPU, 16 connections). */
async function hits(v: Varnishd, paths: readonly string[], ms: number): Promise<{ rps: number; p99Ms: number; errors: number }> {
  const requests: LoadRequest[] = paths.map((path) => ({ method: 'GET', path, headers: { Host: HOST } }));
  const r = await runLoad({ host: '127.0.0.1', port: v.port, requests, connections: 16, warmupMs: 300, durationMs: ms, ...(LOAD_CPU === undefined ? {} : { cpu: LOAD_CPU }) });
  const round = r.rounds[0]!;
  return { rps: round.rps, p99Ms: round.p99Ms, errors: round.errors };
}

async function pendingBans(admin: VarnishAdmin): Promise<number> {
  const list = (await admin.command('ban.list')).body.split('\n');
  return list.filter((l) => /obj\./.test(l) && !/\sC\s/.test(l)).length;
}

async function waitLurker(admin: VarnishAdmin, limitMs = 300_000): Promise<number> {
  const t0 = performance.now();
  while ((await pendingBans(admin)) > 0 && performance.now() - t0 < limitMs) await new Promise((r) => setTimeout(r, 50));
  return performance.now() - t0;
}

function varnishstat(v: Varnishd, fields: readonly string[]): Record<string, number> {
  const r = spawnSync('varnishstat', ['-n', join(v.dir, 'work'), '-1', '-j', ...fields.flatMap((f) => ['-f', f])], { encoding: 'utf8' });
  const out: Record<string, number> = {};
  try {
    const j = JSON.parse(r.stdout) as { counters?: Record<string, { value: number }> } & Record<string, { value?: number }>;
    const counters = j.counters ?? j;
    for (const [k, c] of Object.entries(counters)) if (typeof c === 'object' && c !== null && typeof c.value === 'number') out[k] = c.value;
  } catch {
    // varnishstat unavailable: figures stay empty
  }
  return out;
}

let seq = 0;
const command = (c: Omit<DriverCommand, 'seq'>): DriverCommand => ({ ...c, seq: ++seq });

// ---- parts ----

/**
 * One load process alternates between the two Varnishes in turns of 0.5 s (shipped, plain | plain,
 * shipped | …; 16 kept-alive connections to each, only the active side's busy, 100 ms unrecorded after
 * each switch), so a loaded moment of the machine lands on both sides of a pair. Each side's figures
 * are totals over its turns: req/s, and hits per second of varnishd CPU (its threads' run time). req/s
 * moves with how much CPU the rest of the machine leaves varnishd; hits per CPU-second is what one core
 * of it serves, and the bar applies to it (to req/s where /proc is not there to read).
 */
async function hitPart(shipped: Varnishd, plain: Varnishd): Promise<void> {
  log('\n== hit throughput: edgepurge.vcl vs a plain VCL (bar ≥ 0.95) ==');
  const paths = Array.from({ length: 4 }, (_, i) => `/obj/${i}`);
  for (const v of [shipped, plain]) for (let k = 0; k < 2; k++) await warm(v, paths, 4);
  const pairs = HIT_PAIRS;
  const r = await runAlternatingLoad({
    targets: [shipped, plain].map((v) => ({ host: '127.0.0.1', port: v.port, ...(v.pid() === undefined ? {} : { cpuPid: v.pid()! }) })),
    requests: paths.map((path) => ({ method: 'GET', path, headers: { Host: HOST } })),
    connections: 16,
    warmupMs: 500,
    turns: pairs,
    settleMs: 100,
    turnMs: 500,
    ...(LOAD_CPU === undefined ? {} : { cpu: LOAD_CPU }),
  });
  const [a, b] = r.turns as [readonly AlternatingTurn[], readonly AlternatingTurn[]];
  const total = (ts: readonly AlternatingTurn[], f: (t: AlternatingTurn) => number) => ts.reduce((sum, t) => sum + f(t), 0);
  const rps = (ts: readonly AlternatingTurn[]) => total(ts, (t) => t.requests) / total(ts, (t) => t.seconds);
  const perCpu = (ts: readonly AlternatingTurn[]) => total(ts, (t) => t.requests) / total(ts, (t) => t.serverCpuSeconds);
  const pairRange = (f: (ts: readonly AlternatingTurn[]) => number) => {
    const xs = a.map((t, k) => f([t]) / f([b[k]!]));
    return `pairs ${fmt(Math.min(...xs), 2)}–${fmt(Math.max(...xs), 2)}, median ${fmt(median(xs), 3)}`;
  };
  const errors = total([...a, ...b], (t) => t.errors);
  log(`  ${pairs} pairs of 0.5 s turns, one load process (16 connections to each), load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}; ${errors} errors${r.errorSamples.length ? ` (${r.errorSamples.join('; ')})` : ''}`);
  log(`  req/s: edgepurge.vcl ${fmt(rps(a))} (p99 median ${fmt(median(a.map((t) => t.p99Ms)), 2)} ms), plain ${fmt(rps(b))} (${fmt(median(b.map((t) => t.p99Ms)), 2)} ms); ratio ${fmt(rps(a) / rps(b), 3)} (${pairRange(rps)})`);
  const byCpu = Number.isFinite(perCpu(a)) && Number.isFinite(perCpu(b));
  if (byCpu) {
    log(`  hits per varnishd CPU-second: edgepurge.vcl ${fmt(perCpu(a))} (${fmt(1e6 / perCpu(a), 1)} µs per hit), plain ${fmt(perCpu(b))} (${fmt(1e6 / perCpu(b), 1)} µs); ratio ${fmt(perCpu(a) / perCpu(b), 3)} (${pairRange(perCpu)})`);
  }
  const ratio = byCpu ? perCpu(a) / perCpu(b) : rps(a) / rps(b);
  log(`  result: edgepurge.vcl / plain ${byCpu ? 'hits per varnishd CPU-second' : 'req/s'} ${fmt(ratio, 3)} → ${ratio >= 0.95 ? 'PASS' : 'FAIL'}`);
}

async function purgePart(shipped: Varnishd, plain: Varnishd, driver: VarnishDriver): Promise<void> {
  log('\n== URL purges per second on one Varnish: the driver vs a sequential PURGE loop (bar ≥ 1) ==');
  const N = 2000;
  const paths = Array.from({ length: N }, (_, i) => `/u/${i}`);
  const rates: Record<'loop' | 'loopHttp' | 'apply' | 'batch', number[]> = { loop: [], loopHttp: [], apply: [], batch: [] };
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < ROUNDS; i++) {
    // Today: one PURGE per URL, one after the other (keep-alive fetch), against `return (purge)`.
    await warm(plain, paths);
    let t0 = performance.now();
    for (const p of paths) {
      const r = await fetch(`${plain.url}${p}`, { method: 'PURGE', headers: { host: HOST } });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`PURGE answered ${r.status}`);
    }
    rates.loop.push(N / ((performance.now() - t0) / 1000));
    // The same loop on node:http with one kept-alive socket (as cheap a client as the driver's).
    await warm(plain, paths);
    t0 = performance.now();
    for (const p of paths) {
      const status = await new Promise<number>((resolve, reject) =>
        http
          .request({ host: '127.0.0.1', port: plain.port, method: 'PURGE', path: p, headers: { host: HOST }, agent: keepAlive }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          })
          .on('error', reject)
          .end(),
      );
      if (status !== 200) throw new Error(`PURGE answered ${status}`);
    }
    rates.loopHttp.push(N / ((performance.now() - t0) / 1000));
    const cmds = paths.map((p) => command({ type: 'purge_url', method: 'delete', hosts: [HOST], target: `http://${HOST}${p}` }));
    // The driver, one apply() at a time (what an agent without applyBatch does).
    await warm(shipped, paths);
    t0 = performance.now();
    for (const c of cmds) await driver.apply(c);
    rates.apply.push(N / ((performance.now() - t0) / 1000));
    // The driver's applyBatch: 8 requests in flight.
    await warm(shipped, paths);
    t0 = performance.now();
    const reports = await driver.applyBatch(cmds);
    rates.batch.push(N / ((performance.now() - t0) / 1000));
    if (reports.some((r) => r.matched !== 1)) log('  (some purges matched ≠ 1 object)');
    log(`  round ${i + 1}: loop (fetch) ${fmt(rates.loop.at(-1)!)} /s · loop (node:http keep-alive) ${fmt(rates.loopHttp.at(-1)!)} /s · apply ${fmt(rates.apply.at(-1)!)} /s · applyBatch ${fmt(rates.batch.at(-1)!)} /s`);
  }
  keepAlive.destroy();
  const [loop, loopHttp, apply, batch] = [median(rates.loop), median(rates.loopHttp), median(rates.apply), median(rates.batch)];
  log(
    `  median: loop (fetch) ${fmt(loop)} /s, loop (node:http) ${fmt(loopHttp)} /s, driver apply ${fmt(apply)} /s, driver applyBatch ${fmt(batch)} /s` +
      ` → applyBatch / loop ×${fmt(batch / loop, 2)} (×${fmt(batch / loopHttp, 2)} vs the node:http loop) → ${batch / Math.max(loop, loopHttp) >= 1 ? 'PASS' : 'FAIL'}`,
  );
}

async function prefixPart(v: Varnishd, driver: VarnishDriver, origin: { requests: () => number }): Promise<void> {
  log(`\n== prefix purge with ${fmt(OBJECTS)} cached objects ==`);
  const admin = adminOf(v);
  try {
    const groups = 100;
    const path = (i: number) => `/p/${i % groups}/${i}`;
    const all: LoadRequest[] = Array.from({ length: OBJECTS }, (_, i) => ({ method: 'GET', path: path(i), headers: { Host: HOST } }));
    let t0 = performance.now();
    await runLoad({ host: '127.0.0.1', port: v.port, requests: all, connections: 32, count: OBJECTS, ...(LOAD_CPU === undefined ? {} : { cpu: LOAD_CPU }) });
    const stats0 = varnishstat(v, ['MAIN.n_object', 'SMA.s0.g_bytes', 'XKEY.*']);
    log(`  filled in ${fmt((performance.now() - t0) / 1000, 1)} s: ${fmt(stats0['MAIN.n_object'] ?? Number.NaN)} objects, storage ${fmt((stats0['SMA.s0.g_bytes'] ?? Number.NaN) / 2 ** 20)} MiB, xkey ${fmt((stats0['XKEY.g_bytes'] ?? Number.NaN) / 2 ** 20, 1)} MiB for ${fmt(stats0['XKEY.g_keys'] ?? Number.NaN)} keys (2 segment keys per object)`);
    // Lookups over objects no purge below touches (groups 50..99), each object once per 50,000 requests.
    const outside = Array.from({ length: OBJECTS / 2 }, (_, k) => path(k - (k % groups) + 50 + (k % 50))).filter((p) => !/^\/p\/(7|8)\//.test(p));
    const before = await hits(v, outside, 3000);
    log(`  hits before any ban:                     ${fmt(before.rps)} req/s, p99 ${fmt(before.p99Ms, 2)} ms`);

    t0 = performance.now();
    await driver.apply(command({ type: 'purge_prefix', method: 'delete', hosts: [HOST], target: `http://${HOST}/p/7/` }));
    const applyMs = performance.now() - t0;
    // The lurker is timed from the apply, while the hits run.
    const [during, lurk1] = await Promise.all([hits(v, outside, 3000), waitLurker(admin)]);
    log(`  1 prefix ban (/p/7/, ${fmt(OBJECTS / groups)} objects): applied in ${fmt(applyMs, 2)} ms; hits right after ${fmt(during.rps)} req/s (p99 ${fmt(during.p99Ms, 2)} ms); ban lurker done after ${fmt(lurk1 / 1000, 1)} s (ban_lurker_age=1 s)`);

    t0 = performance.now();
    for (let i = 0; i < 1000; i++) await driver.apply(command({ type: 'purge_prefix', method: 'delete', hosts: [HOST], target: `http://${HOST}/none/${i}/` }));
    const apply1000 = performance.now() - t0;
    const lurking = waitLurker(admin);
    const piled = await hits(v, outside, 3000);
    const lurk1000 = await lurking;
    const after = await hits(v, outside, 3000);
    log(`  1,000 more prefix bans: applied in ${fmt(apply1000)} ms (${fmt(apply1000 / 1000, 2)} ms each); hits with them pending ${fmt(piled.rps)} req/s (p99 ${fmt(piled.p99Ms, 2)} ms); ban lurker done after ${fmt(lurk1000 / 1000, 1)} s; hits then ${fmt(after.rps)} req/s (p99 ${fmt(after.p99Ms, 2)} ms)`);

    // The xkey alternative: the same prefix as a segment key, then a whole-host purge as one key.
    t0 = performance.now();
    const seg = await driver.apply(command({ type: 'purge_cache_tag', method: 'delete', hosts: [HOST], target: 's:/p/8/' }));
    const segMs = performance.now() - t0;
    t0 = performance.now();
    const host = await driver.apply(command({ type: 'purge_cache_tag', method: 'delete', hosts: [HOST], target: 's:/p/' }));
    const hostMs = performance.now() - t0;
    log(`  xkey per segment instead: /p/8/ purged ${fmt(seg.matched ?? Number.NaN)} objects in ${fmt(segMs, 1)} ms; the whole host (one key) ${fmt(host.matched ?? Number.NaN)} objects in ${fmt(hostMs, 1)} ms`);
    t0 = performance.now();
    await driver.apply(command({ type: 'purge_host', method: 'delete', hosts: [HOST], target: HOST }));
    log(`  a host ban for comparison: applied in ${fmt(performance.now() - t0, 2)} ms (origin requests so far: ${fmt(origin.requests())})`);
  } finally {
    await admin.close();
  }
}

// ---- main ----

async function main(): Promise<void> {
  const missing = varnishdMissing();
  if (missing) {
    console.error(`varnish bench skipped: ${missing}`);
    process.exitCode = 1;
    return;
  }
  log(`Varnish driver bench — ${cpus().length} CPUs (${canPin ? 'varnishd pinned to CPU 0, load on CPU 1' : 'not pinned'}), load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const origin = await startOrigin();
  const storage = `malloc,${Math.max(256, Math.ceil((OBJECTS * 3) / 1024))}m`;
  const shipped = await startVarnishd({ vcl: shippedVcl(origin.port), args: VARNISHD_ARGS, storage, ...(SERVER_CPU === undefined ? {} : { cpu: SERVER_CPU }) });
  // The same storage as the shipped one: the two differ by their VCL only.
  const plain = await startVarnishd({ vcl: plainVcl(origin.port), args: VARNISHD_ARGS, storage, ...(SERVER_CPU === undefined ? {} : { cpu: SERVER_CPU }) });
  const driver = new VarnishDriver({ url: shipped.url, admin: shipped.admin, adminSecretFile: shipped.secretFile, timeoutMs: 30_000 });
  try {
    await driver.start();
    await driver.renewLease(Date.now() + 3_600_000);
    if (only.includes('hit')) await hitPart(shipped, plain);
    if (only.includes('purge')) await purgePart(shipped, plain, driver);
    if (only.includes('prefix')) await prefixPart(shipped, driver, origin);
  } finally {
    await driver.close();
    await shipped.close();
    await plain.close();
    await origin.close();
  }
}

await main();
