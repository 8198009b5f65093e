// `npm run bench [-- --only store,api,submit,storm,query,pg,replicas,failover,fanout,edge,hit,varnish,nginx,drivers,soak,metrics,console,webhooks]`: runs the benchmarks of the
// issues on this machine and prints each figure next to its bar. Parts run in the order listed; `api` needs the
// database `store` seeds (it seeds one itself when `store` is not selected); so does `submit` (issue 11).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { printTable } from '../src/cli/table.ts';
import { probeFsync, readSeededTenant, runApiBench, type ApiBenchResult, type ThroughputFigure } from './api-bench.ts';
import { benchHttpLookup, benchLookup, benchPrefixApply } from './edge-bench.ts';
import { runFailoverBench } from './failover-bench.ts';
import { runFanoutBench, type FanoutBenchResult } from './fanout-bench.ts';
import { runFleetFanoutBench } from './fleet-fanout-bench.ts';
import { runHitBench, varnishMissing } from './hit-bench.ts';
import { benchOnOff, benchScrape } from './metrics-bench.ts';
import { runQueryLoadBench } from './query-load-bench.ts';
import { runPgBench } from './pg-bench.ts';
import { runReplicasBench } from './replicas-bench.ts';
import { median } from './stats.ts';
import { runStoreBench } from './store-bench.ts';
import { runSubmitBench, shapesFromEnv, type SubmitBenchResult } from './submit-bench.ts';
import { runStormBench, type StormBenchResult } from './storm-bench.ts';

const PARTS = ['store', 'api', 'submit', 'storm', 'query', 'pg', 'replicas', 'failover', 'fanout', 'edge', 'hit', 'varnish', 'nginx', 'drivers', 'soak', 'metrics', 'console', 'webhooks'] as const;
type Part = (typeof PARTS)[number];

const { values } = parseArgs({ options: { only: { type: 'string' } } });
const only = values.only === undefined ? [...PARTS] : values.only.split(',').map((s) => s.trim()).filter(Boolean);
const unknown = only.filter((p) => !(PARTS as readonly string[]).includes(p));
if (unknown.length) {
  console.error(`unknown part(s): ${unknown.join(', ')}; --only takes a comma-separated list of ${PARTS.join(', ')}`);
  process.exit(2);
}
const selected = (p: Part): boolean => only.includes(p);

// ---- formatting ----
const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en') : 'n/a');
const ms = (n: number): string => (!Number.isFinite(n) ? 'n/a' : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));
const us = (n: number): string => `${n.toFixed(2)} µs`;
const mib = (b: number): string => (Number.isFinite(b) ? `${(b / 2 ** 20).toFixed(0)} MiB` : 'n/a');
const pct = (a: number, b: number): string => `${a >= b ? '+' : ''}${(((a - b) / b) * 100).toFixed(1)} %`;
const verdict = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');

/** Load average and disk fsync latency right now: the machine is shared, and both move every figure. */
function conditions(): string {
  const f = probeFsync(tmpdir());
  return `load average ${load()}; fsync p50 ${ms(f.p50Ms)} ms, p99 ${ms(f.p99Ms)} ms`;
}

function heading(title: string): void {
  console.log(`\n== ${title} ==\n  (${conditions()})`);
}

interface Row {
  figure: string;
  measured: string;
  bar?: string;
  verdict?: string;
}
const table = (rows: Row[]) => printTable(rows as unknown as Array<Record<string, unknown>>, ['figure', 'measured', 'bar', 'verdict']);
const summary: Row[] = [];

// ---- machine ----
const cpuList = cpus();
const canPin = process.platform === 'linux' && cpuList.length >= 2 && spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
const pin = canPin ? { serverCpu: 0, loadCpu: 1 } : {};
const started = performance.now();
console.log('EdgePurge benchmarks');
console.log(`machine: ${cpuList.length} × ${cpuList[0]?.model.trim() ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; Node ${process.version}; parts: ${only.join(', ')}`);
console.log(
  canPin
    ? 'CPU pinning (taskset): the server under test on CPU 0, the load generator on CPU 1.'
    : 'CPU pinning unavailable (needs Linux, taskset and 2 CPUs): server and load generator share the CPUs.',
);
console.log(`at start: ${conditions()}. Other work on the machine shows up as noise in every figure.`);

// ---- store (seeds the 1,000,000 tasks the API part queries) ----
let seedDir: string | undefined;
const dbPath = (): string => join(seedDir!, 'bench.db');
if (selected('store') || selected('api') || selected('submit')) {
  seedDir = mkdtempSync(join(tmpdir(), 'edgepurge-bench-seed-'));
}
try {
  if (selected('store')) {
    heading('store: listTasks in-process on 1,000,000 seeded tasks (bench/store-bench.ts)');
    const r = await runStoreBench({ dir: seedDir!, log: (l) => console.log(`  ${l}`) });
    const b = r.scenarios.find((s) => s.name.startsWith('(b)'));
    if (b) summary.push({ figure: 'store listTasks (b) fuzzy target, in-process p99', measured: `${ms(b.p99)} ms`, bar: 'p99 ≤ 50 ms', verdict: verdict(b.p99 <= 50) });
  } else if (selected('api') || selected('submit')) {
    heading('seeding 1,000,000 tasks for the API and submit parts (bench/store-bench.ts)');
    const r = await runStoreBench({ dir: seedDir!, iterations: 1, log: (l) => (l.startsWith('seeded') ? console.log(`  ${l}`) : undefined) });
    void r;
  }

  if (selected('api')) {
    heading('Issue 2: control plane, signed API 3.0 over HTTP (server child process, load generator child process)');
    const tenant = readSeededTenant(dbPath());
    const log = (l: string) => console.log(l);
    console.log('  primary run: no edge node configured (the accept path: verify TC3, validate, quota, durable commit, answer)');
    const primary = await runApiBench({ dbPath: dbPath(), tenant, edgeNodes: 0, rounds: 3, roundMs: 10_000, ...pin, log });
    console.log('  second run: 1 edge node connected (tasks also go to the purge log, are streamed, acked and settled)');
    const withNode = await runApiBench({ dbPath: dbPath(), tenant, edgeNodes: 1, rounds: 1, roundMs: 10_000, describe: false, ...pin, log });
    // What the bounded young generation (src/cli/node-flags.ts) costs: the primary run again with the
    // 64 MiB semi-space V8 grows to by default under this load.
    console.log('  third run: as the primary, the server with --max-semi-space-size=64 (V8\'s own bound) instead of 8');
    const wideYoung = await runApiBench({ dbPath: dbPath(), tenant, edgeNodes: 0, rounds: 3, roundMs: 10_000, describe: false, serverExecArgv: ['--max-semi-space-size=64'], ...pin, log });
    printApi(primary, withNode, wideYoung);
  }

  if (selected('submit')) {
    heading('Issue 11: submit throughput, signed CreatePurgeTask over HTTP vs bare node:http, empty store vs 1,000,000 tasks (bench/submit-bench.ts)');
    const tenant = readSeededTenant(dbPath());
    // EDGEPURGE_BENCH_SUBMIT_URLS=1000 (or 1) measures one shape only (see shapesFromEnv); the storm runs below.
    printSubmit(await runSubmitBench({ seededDbPath: dbPath(), seededTenant: tenant, rounds: 3, roundMs: 5000, ...shapesFromEnv(), storm: false, ...pin, log: (l) => console.log(`  ${l}`) }));
  }
} finally {
  if (seedDir) rmSync(seedDir, { recursive: true, force: true });
}

// Part of issue 11's goals: run with `submit` too (unless EDGEPURGE_BENCH_STORM=0); `--only storm` runs it
// alone (no seeded store needed).
if ((selected('submit') && process.env.EDGEPURGE_BENCH_STORM !== '0') || selected('storm')) {
  heading('Issue 11: a purge storm at 10× an account\'s rate limit beside another account (bench/storm-bench.ts)');
  printStorm(await runStormBench({ ...pin, log: (l) => console.log(`  ${l}`) }));
}

if (selected('query')) {
  heading('Hardening: one tenant with 300,000 jobs runs the heaviest legal query of every query action (bench/query-load-bench.ts)');
  const r = await runQueryLoadBench({ durationMs: 60_000, concurrency: 2, ...pin, log: (l) => console.log(`  ${l}`) });
  console.log(
    `  control plane (child process${canPin ? ', CPU 0' : ''}) on the seeded store; 1 edge node (child process) holding a ${r.leaseMs / 1000} s lease;` +
      `\n  ${r.heavyRequests.toLocaleString('en')} heavy queries in ${r.durationMs / 1000} s on 2 connections, round robin over the list below;` +
      ' another tenant purges or looks up every 100 ms.',
  );
  const rows: Row[] = [
    {
      figure: 'control-plane event-loop delay p50 / p99 / max',
      measured: `${ms(r.loop.p50Ms)} / ${ms(r.loop.p99Ms)} / ${ms(r.loop.maxMs)} ms (${int(r.loop.samples)} samples of a 5 ms timer, lateness)`,
      bar: 'p99 ≤ 20 ms, max ≤ 100 ms',
      verdict: verdict(r.loop.p99Ms <= 20 && r.loop.maxMs <= 100),
    },
    {
      figure: '  for context: the same with only the other tenant running',
      measured: `${ms(r.idleLoop.p50Ms)} / ${ms(r.idleLoop.p99Ms)} / ${ms(r.idleLoop.maxMs)} ms (what this machine adds right now)`,
    },
    {
      figure: 'edge lease lapses (node checked every 20 ms)',
      measured: `${r.leases.lapses}; least lease left ${ms(r.leases.minHeadroomMs / 1000)} of ${r.leaseMs / 1000} s; node applied up to seq ${r.appliedSeq}`,
      bar: '0',
      verdict: verdict(r.leases.lapses === 0),
    },
  ];
  const errors = r.queries.filter((q) => q.errors > 0);
  for (const q of r.queries) {
    const what = Number.isFinite(q.meanTotal) ? `; total ${int(q.meanTotal)}, ${int(q.meanItems)} in the answer` : Number.isFinite(q.meanItems) ? `; ${int(q.meanItems)} in the answer` : '';
    rows.push({ figure: `  ${q.name}`, measured: `p50 ${ms(q.p50Ms)} / max ${ms(q.maxMs)} ms (${q.requests})${what}${q.errors ? `; ${q.errors} ERRORS: ${q.errorSample}` : ''}` });
  }
  r.probe.forEach((q, i) => {
    const alone = r.idleProbe[i];
    rows.push({
      figure: `${q.name}: p50 / p99 / max`,
      measured:
        `${ms(q.p50Ms)} / ${ms(r.probeP99Ms[i] ?? Number.NaN)} / ${ms(q.maxMs)} ms (${q.requests})${q.errors ? `; ${q.errors} ERRORS: ${q.errorSample}` : ''}` +
        (alone ? `; alone: p50 ${ms(alone.p50Ms)}, max ${ms(alone.maxMs)} ms` : ''),
    });
  });
  if (errors.length) rows.push({ figure: 'queries with errors', measured: errors.map((q) => q.name).join('; '), verdict: 'FAIL' });
  rows.push({ figure: 'server start-up on the seeded store; WAL file at the end', measured: `${ms(r.startupMs)} ms; ${mib(r.walBytes)}` });
  table(rows);
  summary.push(...rows.filter((x) => x.bar));
}

if (selected('pg')) {
  heading('Issue 9: PostgreSQL store (bench/pg-bench.ts; server EDGEPURGE_TEST_PG or 127.0.0.1:5432; a fresh database dropped after, or EDGEPURGE_PG_BENCH_DB kept and reused)');
  const r = await runPgBench({ log: (l) => console.log(`  ${l}`) });
  const size = `${int(r.tasks)} tasks${r.days < 30 ? `, seeding budget reached at ${r.days} of 30 days` : ''}`;
  // Every DescribePurgeTasks shape against the issue's bar (the issue names time + status + domain and fuzzy).
  const rows: Row[] = [
    ...r.scenarios.map((x) => ({
      figure: `PostgreSQL listTasks ${x.name} (${size}; mean total ${int(x.meanTotal)})`,
      measured: `p50 ${ms(x.p50)} ms, p99 ${ms(x.p99)} ms${Number.isFinite(x.cpuP99) ? ` (server CPU p50 ${ms(x.cpuP50)} ms, p99 ${ms(x.cpuP99)} ms)` : ''}`,
      bar: 'p99 ≤ 50 ms',
      verdict: verdict(x.p99 <= 50),
    })),
    { figure: `PostgreSQL prune of one day (${int(r.dropDayTasks)} tasks, DROP of its partitions)`, measured: `${ms(r.dropDayMs)} ms` },
    {
      figure: 'createJob/s, 1 URL, 64 in flight: SQLite | PostgreSQL 1 pool | 2 pools (one process)',
      measured: `${int(r.throughput.sqlite)} | ${int(r.throughput.pg1)} | ${int(r.throughput.pg2)} (PG/SQLite ${(r.throughput.pg1 / r.throughput.sqlite).toFixed(2)}, 2 pools/1 ${(r.throughput.pg2 / r.throughput.pg1).toFixed(2)})`,
    },
  ];
  table(rows);
  summary.push(...rows.filter((x) => x.bar));
}

if (selected('replicas')) {
  heading('Issue 9: replicas on one PostgreSQL (bench/replicas-bench.ts; each control plane a child process; a fresh database, dropped after)');
  const r = await runReplicasBench({ log: (l) => console.log(`  ${l}`) });
  const rows: Row[] = [
    {
      figure: `accept → applied on 10 nodes, 5 on each of 2 replicas: p50 / p99 (${r.applied.samples} purges, seen at the nodes)`,
      measured: `${ms(r.applied.p50Ms)} / ${ms(r.applied.p99Ms)} ms`,
      bar: 'p50 ≤ 10 ms, p99 ≤ 50 ms',
      verdict: verdict(r.applied.p50Ms <= 10 && r.applied.p99Ms <= 50),
    },
    {
      figure: 'accept → every node\'s ack of it answered (durable node progress): p50 / p99',
      measured: `${ms(r.acked.p50Ms)} / ${ms(r.acked.p99Ms)} ms`,
    },
    {
      figure: 'CreatePurgeTask/s, 1 URL, 16 connections per replica: SQLite | PostgreSQL 1 replica | 2 replicas',
      measured: `${int(r.throughput.sqlite)} | ${int(r.throughput.pg1)} | ${int(r.throughput.pg2)} (1 PG/SQLite ${(r.throughput.pg1 / r.throughput.sqlite).toFixed(2)}, 2 PG/1 PG ${(r.throughput.pg2 / r.throughput.pg1).toFixed(2)})`,
    },
    {
      figure: 'duties moved after kill -9 of the leader (3 tries)',
      measured: `${r.dutyMoveMs.map((m) => int(m)).join(', ')} ms`,
      bar: '≤ 5 s',
      verdict: verdict(r.dutyMoveMs.every((m) => m <= 5000)),
    },
  ];
  table(rows);
  summary.push(...rows.filter((x) => x.bar));
}

if (selected('failover')) {
  heading('Issue 9: failover (bench/failover-bench.ts; 3 `edgepurge serve` on one PostgreSQL, 5 `edgepurge edge` all on cp-1; kill -9 of cp-1)');
  const r = await runFailoverBench({ log: (l) => console.log(`  ${l}`) });
  const sorted = [...r.movedMs].sort((a, b) => a - b);
  const p50 = median(sorted);
  const max = sorted.at(-1) ?? Number.NaN;
  const rows: Row[] = [
    {
      figure: `kill -9 → all ${r.edges} edges streaming again, p50 / max (${r.movedMs.length} rounds)`,
      measured: `${int(p50)} / ${int(max)} ms`,
      bar: '≤ 5 s',
      verdict: verdict(max <= 5000),
    },
  ];
  table(rows);
  summary.push(...rows.filter((x) => x.bar));
}

if (selected('fanout')) {
  heading('Issue 4: fan-out, CreatePurgeTask answered → every node applied and acked (hub onSettled)');
  const runs = 3;
  const results: Array<{ nodes: number; runs: FanoutBenchResult[] }> = [];
  for (const nodes of [1, 10, 50]) {
    const rs: FanoutBenchResult[] = [];
    for (let i = 0; i < runs; i++) {
      rs.push(await runFanoutBench({ nodes, samples: 200, warmup: 20, ...(canPin ? { agentsCpu: 1 } : {}) }));
    }
    results.push({ nodes, runs: rs });
    console.log(`  ${String(nodes).padStart(2)} node(s): p50 ${rs.map((r) => ms(r.p50Ms)).join(' / ')} ms, p99 ${rs.map((r) => ms(r.p99Ms)).join(' / ')} ms (${runs} runs × ${rs[0]?.samples} purges)`);
  }
  const rows: Row[] = results.map(({ nodes, runs: rs }) => {
    const p50 = median(rs.map((r) => r.p50Ms));
    const p99 = median(rs.map((r) => r.p99Ms));
    const bad = rs.reduce((s, r) => s + r.notAppliedEverywhere, 0);
    const early = rs.reduce((s, r) => s + r.settledBeforeAnswer, 0);
    const row: Row = {
      figure: `accept → applied on all ${nodes} node(s): p50 / p99`,
      measured: `${ms(p50)} / ${ms(p99)} ms${bad ? ` (${bad} settled without every node!)` : ''}${early ? ` (${early} settled before the answer was read)` : ''}`,
    };
    if (nodes === 10) {
      row.bar = 'p50 ≤ 10 ms, p99 ≤ 50 ms';
      row.verdict = verdict(p50 <= 10 && p99 <= 50 && bad === 0);
    }
    return row;
  });
  const accept = median(results.flatMap((r) => r.runs.map((x) => x.acceptP50Ms)));
  rows.push({ figure: 'for context: CreatePurgeTask request → answer, p50', measured: `${ms(accept)} ms` });
  console.log('  control plane in this process; the N agents (each an EdgeProxy applying the log) in one child process;');
  console.log('  purges sent one at a time, 5 ms apart; medians over 3 runs of p50 and p99.');
  table(rows);
  summary.push(...rows.filter((r) => r.bar));

  heading('Issue 11: fan-out to a fleet, CreatePurgeTask answered → DescribePurgeTasks says success (bench/fleet-fanout-bench.ts)');
  const fleetRows: Row[] = [];
  for (const [nodes, bar] of [[100, 40], [500, 100]] as const) {
    const r = await runFleetFanoutBench({ nodes, samples: 100, warmup: 10, ...(canPin ? { serverCpu: 0, nodesCpu: 1 } : {}) });
    fleetRows.push({
      figure: `${nodes} nodes: accept → success visible, p50 / p99`,
      measured: `${ms(r.p50Ms)} / ${ms(r.p99Ms)} ms`,
      bar: `p99 ≤ ${bar} ms`,
      verdict: verdict(r.p99Ms <= bar),
    });
    fleetRows.push({ figure: `${nodes} nodes: control-plane CPU per purge per node; store writes per purge`, measured: `${r.cpuPerPurgeNodeUs.toFixed(0)} µs; ${r.writesPerPurge.toFixed(1)}` });
  }
  // Side by side: the same fleet acking as agents before the ack channel do, one POST /edge/v1/ack per ack.
  const posted = await runFleetFanoutBench({ nodes: 500, samples: 100, warmup: 10, ackVia: 'post', ...(canPin ? { serverCpu: 0, nodesCpu: 1 } : {}) });
  fleetRows.push({
    figure: 'for context: 500 nodes posting each ack (older agents): p50 / p99; CPU per purge per node',
    measured: `${ms(posted.p50Ms)} / ${ms(posted.p99Ms)} ms; ${posted.cpuPerPurgeNodeUs.toFixed(0)} µs`,
  });
  console.log('  control plane in a child process; simulated nodes (real stream/ack protocol, a report per entry, ack at once over');
  console.log('  their ack channels) in');
  console.log('  a few child processes; purges one at a time, 5 ms apart; CPU includes the CreatePurgeTask and DescribePurgeTasks calls.');
  table(fleetRows);
  summary.push(...fleetRows.filter((r) => r.bar));
}

if (selected('edge')) {
  heading('Issue 4: edge node, purge apply cost and hit lookup with live prefix rules (bench/edge-bench.ts)');
  const apply = [benchPrefixApply(10_000), benchPrefixApply(1_000_000)];
  const lookup = benchLookup();
  const httpLookup = await benchHttpLookup();
  const rows: Row[] = apply.map((a) => ({
    figure: `apply one prefix purge, ${int(a.objects)} cached objects: median / p99`,
    measured: `${us(a.prefixMedianUs)} / ${us(a.prefixP99Us)}`,
    bar: '< 1 ms',
    verdict: verdict(a.prefixP99Us < 1000),
  }));
  const hitBar = (a: number, b: number) => ({ bar: '≤ +10 %', verdict: verdict(a <= b * 1.1) });
  rows.push(
    {
      figure: `hit, ${int(lookup.rules)} live prefix rules vs none (node default, re-stamp on)`,
      measured: `${lookup.hitPathWithRulesRestampNs.toFixed(0)} vs ${lookup.hitPathNoRulesNs.toFixed(0)} ns (${pct(lookup.hitPathWithRulesRestampNs, lookup.hitPathNoRulesNs)})`,
      ...hitBar(lookup.hitPathWithRulesRestampNs, lookup.hitPathNoRulesNs),
    },
    {
      figure: 'hit over HTTP (sequential keep-alive GETs), rules vs none',
      measured: `${httpLookup.withRulesMedianUs.toFixed(1)} vs ${httpLookup.noRulesMedianUs.toFixed(1)} µs (${pct(httpLookup.withRulesMedianUs, httpLookup.noRulesMedianUs)})`,
      ...hitBar(httpLookup.withRulesMedianUs, httpLookup.noRulesMedianUs),
    },
    {
      figure: 'worst case: hit path, re-stamp off (every lookup walks the rules)',
      measured: `${lookup.hitPathWithRulesNs.toFixed(0)} vs ${lookup.hitPathNoRulesNs.toFixed(0)} ns (${pct(lookup.hitPathWithRulesNs, lookup.hitPathNoRulesNs)})`,
      ...hitBar(lookup.hitPathWithRulesNs, lookup.hitPathNoRulesNs),
    },
    {
      figure: 'worst case: cache.lookup() alone, re-stamp off',
      measured: `${lookup.lookupWithRulesNs.toFixed(0)} vs ${lookup.lookupNoRulesNs.toFixed(0)} ns (${pct(lookup.lookupWithRulesNs, lookup.lookupNoRulesNs)})`,
    },
  );
  console.log('  in-process, one apply timed at a time (2,000 purges); lookups: medians over 300 batches of 1,000, 10,000 objects.');
  table(rows);
  summary.push(...rows.slice(0, 4));
}

if (selected('hit')) {
  heading('Issue 4: cache-hit throughput, one edge node vs Varnish in front of the same origin');
  const missing = varnishMissing();
  if (missing) {
    console.log('');
    console.log('  !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
    console.log(`  !!! VARNISH COMPARISON SKIPPED: ${missing}`);
    console.log('  !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!');
    console.log('');
  }
  const r = await runHitBench({ rounds: 3, roundMs: 5000, connections: 32, ...pin, log: (l) => console.log(l) });
  console.log(
    `  GETs of ${r.objects} cached ${r.objectBytes}-byte objects over ${r.connections} keep-alive connections; rounds alternate` +
      ' edge/varnish (1 s warm-up + 5 s each, fresh load process); medians over 3 rounds.',
  );
  const rows: Row[] = [];
  for (const f of [r.edge, r.varnish]) {
    if ('skipped' in f) {
      rows.push({ figure: 'Varnish', measured: `SKIPPED: ${f.skipped}` });
      continue;
    }
    rows.push({
      figure: `${f.server}: requests/s (p50 / p99)`,
      measured:
        `${int(f.rps)} req/s (${ms(f.p50Ms)} / ${ms(f.p99Ms)} ms); rounds ${f.rounds.map((x) => int(x.rps)).join(' / ')}; ` +
        `server CPU ${f.serverCpuPct.toFixed(0)} %; origin hits ${f.originRequests}; errors ${f.errors}`,
    });
  }
  if (!('skipped' in r.varnish)) {
    rows.push({ figure: 'ratio edge / varnish (median of per-pair ratios)', measured: `${r.ratio.toFixed(2)} (pairs ${r.ratios.map((x) => x.toFixed(2)).join(' / ')})` });
  }
  table(rows);
  summary.push(...rows.filter((x) => x.figure.startsWith('ratio') || x.figure === 'Varnish'));
}

// The driver benches (issue 8) are programs of their own; run as child processes, their output inline.
for (const [part, file, title] of [
  ['varnish', 'varnish-bench.ts', 'Issue 8: Varnish driver — URL purge rate vs a PURGE loop, prefix purge on 100,000 objects, hit throughput with edgepurge.vcl'],
  ['nginx', 'nginx-bench.ts', 'Issue 8: nginx driver — index build and prefix/host/tag purges on 100,000 cached files'],
  ['drivers', 'driver-fleet-bench.ts', 'Issue 8: accept → visible on all nodes, 3 Varnish + 3 nginx nodes, each with its agent process'],
] as const) {
  if (!selected(part)) continue;
  heading(title);
  const r = spawnSync(process.execPath, [join(import.meta.dirname, file)], { stdio: 'inherit' });
  if (r.status !== 0) summary.push({ figure: `${part} bench`, measured: `exited with ${r.status ?? r.signal}` });
}

if (selected('soak')) summary.push(...(await (await import('./soak-bench.ts')).soakSection(heading, table)));

if (selected('metrics')) {
  heading('Issue 10: /metrics scrape cost, and API throughput with metrics on vs off (bench/metrics-bench.ts)');
  const sc = await benchScrape({ ...(canPin ? { serverCpu: 0, agentsCpu: 1 } : {}) });
  console.log(
    `  control plane (child process${canPin ? ', CPU 0' : ''}), ${sc.nodes} nodes (EdgeAgents in another, ${sc.connectedNodes} connected), ${sc.accounts} accounts that` +
      ` each purged and had a request refused;\n  ${sc.scrapes} sequential GET /metrics with the token (per-account series included): ${int(sc.series)} series, ${int(sc.bytes)} bytes.`,
  );
  const oo = await benchOnOff({ ...pin });
  console.log(
    `  two control planes (child processes${canPin ? ', CPU 0' : ''}) differing only in metrics.enabled and server.accessLog (log to /dev/null);` +
      ` CreatePurgeTask, 1 URL, ${oo.connections} connections to each,\n  both loaded at once (sharing the CPU) in ${oo.on.length} rounds of ${oo.roundMs / 1000} s.`,
  );
  const rows: Row[] = [
    { figure: `/metrics scrape, ${sc.nodes} nodes and ${sc.accounts} accounts: p50 / p99`, measured: `${ms(sc.p50Ms)} / ${ms(sc.p99Ms)} ms`, bar: 'p50 ≤ 20 ms', verdict: verdict(sc.p50Ms <= 20) },
    { figure: '  server CPU per scrape (less the same stretch idle)', measured: `${ms(sc.cpuMsPerScrape)} ms` },
    {
      figure: 'API throughput, metrics + access log on / off (median of round ratios)',
      measured: `${oo.ratio.toFixed(3)}; on ${oo.on.map(int).join(' / ')} req/s, off ${oo.off.map(int).join(' / ')} req/s${oo.errors ? `; ${oo.errors} ERRORS: ${oo.errorSample}` : ''}`,
      bar: '≥ 0.95',
      verdict: verdict(oo.ratio >= 0.95 && oo.errors === 0),
    },
  ];
  table(rows);
  summary.push(...rows);
}

if (selected('webhooks')) {
  heading('Issue 10: completion webhooks, settle → delivered and kill -9 (bench/webhook-bench.ts)');
  const { benchWebhooks } = await import('./webhook-bench.ts');
  const w = await benchWebhooks();
  console.log(
    `  \`serve\` as a child process (SQLite, default webhookDelivery), a receiver in this process answering 204; ${w.jobs} purges ~5 ms apart,` +
      `\n  each settling at once; latency = arrival at the receiver − the event's settle time. Then ${w.killJobs} events refused (503), retries hanging,` +
      '\n  SIGKILL, restart on the same database, receiver answering 204.',
  );
  const rows: Row[] = [
    { figure: `settle → delivered, ${w.jobs} events: p50 / p99 / max`, measured: `${ms(w.p50Ms)} / ${ms(w.p99Ms)} / ${ms(w.maxMs)} ms` },
    { figure: `events lost across kill -9 of the control plane`, measured: `${w.lost} of ${w.killJobs} (${w.repeats} repeated deliveries)`, bar: '0', verdict: verdict(w.lost === 0) },
  ];
  table(rows);
  summary.push(...rows);
}

if (selected('console')) {
  heading('Issue 10: web console, history page with 1,000,000 tasks stored (bench/console-bench.ts)');
  const { runConsoleBench } = await import('./console-bench.ts');
  const r = await runConsoleBench({ log: (l) => console.log(`  ${l}`) });
  console.log('  control plane in this process on the seeded store; each page: 30 sequential GETs after 3 warm-ups (server:');
  console.log('  request → last byte), then 10 loads in chromium (navigation → first contentful paint, CSS and script included).');
  if (r.browserSkipped) console.log(`  !!! NO BROWSER FIGURES: ${r.browserSkipped}; the bar is checked on the server time alone`);
  const rows: Row[] = r.pages.map((p, i) => {
    const paint = Number.isFinite(p.fcpMedianMs) ? p.fcpMedianMs : p.serverP50Ms;
    return {
      figure: `console ${p.name}: first paint median (server p50 / p99)`,
      measured: `${Number.isFinite(p.fcpMedianMs) ? `${ms(p.fcpMedianMs)} ms` : 'n/a'} (${ms(p.serverP50Ms)} / ${ms(p.serverP99Ms)} ms)${Number.isFinite(p.total) ? `; ${int(p.total)} tasks match` : ''}`,
      ...(i === 0 ? { bar: '≤ 300 ms', verdict: verdict(paint <= 300) } : {}),
    };
  });
  table(rows);
  summary.push(...rows.filter((x) => x.bar));
}

if (summary.length) {
  heading('Summary of the figures with a bar');
  table(summary);
}
console.log(`\ntotal time ${((performance.now() - started) / 1000).toFixed(0)} s`);

function printApi(a: ApiBenchResult, b: ApiBenchResult, wide: ApiBenchResult): void {
  const rows: Row[] = [];
  const create = (f: ThroughputFigure, label: string, bar: boolean) => {
    const rounds = f.rounds.map((x) => int(x.rps)).join(' / ');
    rows.push({
      figure: `CreatePurgeTask, ${int(f.urlsPerRequest)} URL${f.urlsPerRequest > 1 ? 's' : ''}/request, ${f.connections} conns${label}: requests/s`,
      measured: `${int(f.rps)}${f.rounds.length > 1 ? ` (rounds ${rounds})` : ''}; server CPU ${f.serverCpuPct.toFixed(0)} %${f.errors ? `; ${f.errors} ERRORS: ${f.errorSamples[0]}` : ''}`,
      ...(bar ? { bar: '≥ 3,000 req/s', verdict: verdict(f.rps >= 3000 && f.errors === 0) } : {}),
    });
    if (f.urlsPerRequest > 1) rows.push({ figure: '  URLs/s', measured: int(f.urlsPerSecond) });
    rows.push({ figure: '  latency p50 / p99', measured: `${ms(f.p50Ms)} / ${ms(f.p99Ms)} ms` });
  };
  for (const f of a.create) create(f, '', f.urlsPerRequest === 1);
  for (const d of a.describe) {
    rows.push({
      figure: `DescribePurgeTasks ${d.name}, 1M tasks: p50 / p99`,
      measured: `${ms(d.p50Ms)} / ${ms(d.p99Ms)} ms (${d.requests} sequential; max ${ms(d.maxMs)} ms)${d.errors ? `; ${d.errors} ERRORS: ${d.errorSamples[0]}` : ''}`,
      bar: 'p99 ≤ 50 ms',
      verdict: verdict(d.p99Ms <= 50 && d.errors === 0),
    });
  }
  rows.push({ figure: 'server peak RSS (VmHWM), whole run', measured: mib(a.peakRssBytes) });
  rows.push({
    figure: 'server start-up on the 1M-task store (not in the figures above)',
    measured: `${ms(a.startupMs)} ms busy; the hub settled ${int(a.settledAtStartup)} seeded 'processing' tasks`,
  });
  for (const f of b.create) create(f, ', 1 edge node', false);
  rows.push({ figure: 'server peak RSS (VmHWM), run with 1 edge node', measured: mib(b.peakRssBytes) });
  for (const f of wide.create) create(f, ', server --max-semi-space-size=64', false);
  rows.push({ figure: 'server peak RSS (VmHWM), run with --max-semi-space-size=64', measured: mib(wide.peakRssBytes) });
  console.log('  CreatePurgeTask: medians over 3 rounds of 10 s after 3 s of warm-up (1 round with the edge node); pre-signed');
  console.log('  requests (2,000 distinct bodies for 1 URL, 40 for 1,000 URLs); the account has rateLimit: false.');
  console.log('  DescribePurgeTasks: distinct random queries, one at a time on one connection, after 1 s of warm-up.');
  table(rows);
  summary.push(...rows.filter((r) => r.bar));
}

/** The storm part of issue 11 (bench/storm-bench.ts): refusals client-observed and as the server times them, B with and without. */
function stormRows(s: StormBenchResult): Row[] {
  const lat = (l: { p50Ms: number; p99Ms: number; count: number }) => `p50 / p99 ${ms(l.p50Ms)} / ${ms(l.p99Ms)} ms (${int(l.count)})`;
  const ratio = s.storm.p99Ms / s.calm.p99Ms;
  const loop = (l: StormBenchResult['loop']['calm']) => (l ? `${ms(l.p99Ms)} / ${ms(l.maxMs)}` : 'n/a');
  return [
    {
      figure: `storm: account A at ${int(s.stormPerSecond)} req/s, 10× its limit of ${s.limitPerSecond}/s: RequestLimitExceeded answers, client on loopback`,
      measured: `${lat(s.refusals)}; A admitted ${int(s.admitted)}; server CPU ${s.serverCpuPct.toFixed(0)} %, ${ms(s.cpuPerRequestMs)} ms per request, ${ms(s.cpuPerRefusalMs)} ms per refusal (CPU beyond A at its limit)${s.errors ? `; ${s.errors} errors (${s.errorSample ?? ''})` : ''}`,
      bar: 'p99 ≤ 1 ms',
      verdict: verdict(s.refusals.p99Ms <= 1 && s.errors === 0 && s.refusals.count > 0),
    },
    { figure: '  the same refusals as the server times them (access log durationMs)', measured: lat(s.server.refusals) },
    {
      figure: '  floor on this machine: the same senders against a bare node:http server on the same core (client); refusals p99 / floor p99',
      measured: `${lat(s.floor)}; ${(s.refusals.p99Ms / s.floor.p99Ms).toFixed(2)}`,
    },
    {
      figure: `  account B at ${s.bPerSecond} req/s: p99 with the storm / without (client, same run)`,
      measured: `${ratio.toFixed(2)} (with ${lat(s.storm)}; without ${lat(s.calm)})`,
      bar: '≤ 1.20',
      verdict: verdict(ratio <= 1.2 && s.errors === 0),
    },
    { figure: '  B as the server times it: with / without the storm (p99 ratio)', measured: `${lat(s.server.storm)} / ${lat(s.server.calm)} (${(s.server.storm.p99Ms / s.server.calm.p99Ms).toFixed(2)})` },
    {
      figure: `  B beside A at its limit (${s.limitPerSecond}/s, all admitted): p99 / without A, client (server)`,
      measured: `${(s.limit.p99Ms / s.calm.p99Ms).toFixed(2)} (${(s.server.limit.p99Ms / s.server.calm.p99Ms).toFixed(2)}); ${lat(s.limit)}`,
    },
    {
      figure: '  what the refusals add: B p99 beside the storm / beside A at its limit, client (server)',
      measured: `${(s.storm.p99Ms / s.limit.p99Ms).toFixed(2)} (${(s.server.storm.p99Ms / s.server.limit.p99Ms).toFixed(2)})`,
    },
    { figure: '  control plane event-loop delay p99 / max: storm / calm', measured: `${loop(s.loop.storm)} / ${loop(s.loop.calm)} ms` },
    {
      figure: '  the senders\' own loops in the storm, late p99 / max: A / B (the client\'s share of its figures)',
      measured: `${ms(s.senderLate.a.p99Ms)} / ${ms(s.senderLate.a.maxMs)} / ${ms(s.senderLate.b.p99Ms)} / ${ms(s.senderLate.b.maxMs)} ms`,
    },
  ];
}

/** Server CPU time per request of a submit figure (CPU % over the figure's wall time, warm-up included, ÷ its req/s). */
function cpuPerRequest(x: { serverCpuPct: number; rps: number }): string {
  const us = (x.serverCpuPct * 1e4) / x.rps;
  return us >= 1000 ? `${ms(us / 1000)} ms` : `${us.toFixed(0)} µs`;
}

function printSubmit(r: SubmitBenchResult): void {
  const f = (k: string) => r.create.get(k);
  const rounds = (x: { roundRps: readonly number[] }) => x.roundRps.map(int).join(' / ');
  const errs = (x: { errors: number; errorSample?: string }) => (x.errors ? `; ${x.errors} ERRORS: ${x.errorSample}` : '');
  const ok = (x: { errors: number }) => x.errors === 0;
  const rows: Row[] = [];
  const e1 = f('empty 1');
  const e1k = f('empty 1000');
  const s1 = f('seeded 1');
  const s1k = f('seeded 1000');
  const bare = r.bare;
  if (bare) rows.push({ figure: `bare node:http, fixed JSON body, ${r.connections.one} conns: requests/s`, measured: `${int(bare.rps)} (rounds ${rounds(bare)}); server CPU ${bare.serverCpuPct.toFixed(0)} %` });
  if (e1) {
    rows.push({
      figure: `CreatePurgeTask, 1 URL/request, ${r.connections.one} conns, empty store: requests/s`,
      measured: `${int(e1.rps)} (rounds ${rounds(e1)}); p50 / p99 ${ms(e1.p50Ms)} / ${ms(e1.p99Ms)} ms; server CPU ${e1.serverCpuPct.toFixed(0)} %${errs(e1)}`,
      bar: '≥ 8,000 req/s',
      verdict: verdict(e1.rps >= 8000 && ok(e1)),
    });
    if (bare) {
      const ratio = e1.rps / bare.rps;
      rows.push({ figure: '  ratio to bare node:http (same run, same pinned core)', measured: ratio.toFixed(3), bar: '≥ 0.35', verdict: verdict(ratio >= 0.35 && ok(e1)) });
    }
  }
  if (e1k) {
    rows.push({
      figure: `CreatePurgeTask, 1,000 URLs/request, ${r.connections.many} conns, empty store: URLs/s`,
      measured: `${int(e1k.urlsPerSecond)} (${int(e1k.rps)} req/s; rounds ${rounds(e1k)} req/s); server CPU ${e1k.serverCpuPct.toFixed(0)} %${errs(e1k)}`,
      bar: '≥ 100,000 URLs/s',
      verdict: verdict(e1k.urlsPerSecond >= 100_000 && ok(e1k)),
    });
    rows.push({ figure: '  latency p50 / p99 per request', measured: `${ms(e1k.p50Ms)} / ${ms(e1k.p99Ms)} ms`, bar: 'p99 ≤ 100 ms', verdict: verdict(e1k.p99Ms <= 100) });
  }
  // The ceiling: the same API on an in-memory SQLite store, beside the durable figures of this run.
  for (const [label, durable, memory] of [['1 URL', e1, f('memory 1')], ['1,000 URLs', e1k, f('memory 1000')]] as const) {
    if (!durable || !memory) continue;
    rows.push({
      figure: `  ceiling, ${label}/request: the same API on an in-memory SQLite store (no WAL, fsync or checkpoint)`,
      measured:
        `${int(memory.urlsPerSecond)} URLs/s (${int(memory.rps)} req/s)${label === '1 URL' && bare ? `, ${(memory.rps / bare.rps).toFixed(3)} of bare` : ''}; ` +
        `durable / in-memory ${(durable.rps / memory.rps).toFixed(2)}; server CPU/request ${cpuPerRequest(memory)}${errs(memory)}`,
    });
  }
  for (const [label, empty, seeded] of [['1 URL', e1, s1], ['1,000 URLs', e1k, s1k]] as const) {
    if (!empty || !seeded) continue;
    const ratio = seeded.rps / empty.rps;
    rows.push({
      figure: `${label}/request on 1,000,000 tasks vs empty store`,
      // Server CPU per request beside it: on a loaded machine a starved server's req/s says little, its CPU per request still compares.
      measured: `${ratio.toFixed(2)} (${int(seeded.rps)} vs ${int(empty.rps)} req/s; p99 ${ms(seeded.p99Ms)} ms; server CPU/request ${cpuPerRequest(seeded)} vs ${cpuPerRequest(empty)})${errs(seeded)}`,
      bar: '≥ 0.8',
      // A side that finished no request in a round has no throughput to compare.
      verdict: verdict(ratio >= 0.8 && ok(seeded) && [...empty.roundRps, ...seeded.roundRps].every((x) => x > 0)),
    });
  }
  console.log('  medians over 3 rounds of 5 s after 2 s of warm-up; pre-signed requests (2,000 distinct bodies for 1 URL, 40 for 1,000');
  console.log('  URLs); the account has rateLimit: false. The bare server gets the same 1-URL requests and reads each body.');
  console.log('  The ceiling rows run the same server on store.path \':memory:\' (nothing durable; not a way to run EdgePurge):');
  console.log('  what the API and SQLite\'s row and index writes cost alone, beside the durable store of this run.');
  table(rows);
  summary.push(...rows.filter((x) => x.bar));
}

function printStorm(s: StormBenchResult): void {
  console.log('  A fresh control plane; A (limit 100/s, burst 100) sends 1,000 signed 1-URL purges/s and B 100/s, each paced open');
  console.log('  loop by its own process on raw keep-alive sockets; 2 rounds of three 5 s phases: B alone, B beside A at its limit');
  console.log('  (every request admitted: what A\'s purges cost B), B beside the storm.');
  console.log('  A token is taken only after the TC3 signature checks out (a forged request spends none); once A has none left,');
  console.log('  its requests are refused from their headers, before the body is read and the signature checked.');
  const rows = stormRows(s);
  table(rows);
  summary.push(...rows.filter((x) => x.bar));
}
