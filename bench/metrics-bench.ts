// Metrics benchmark (issue 10): the time of one /metrics scrape of a control plane with 100 nodes
// connected and 100 accounts (every series present, per-account ones included), and CreatePurgeTask
// throughput with metrics and the access log on vs both off, loaded side by side in one run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ConfigInput } from '../src/config/schema.ts';
import { signTc3Request } from '../src/protocols/tc3/tc3-signature.ts';
import { systemClock } from '../src/shared/clock.ts';
import { runLoad, type LoadRequest } from './load.ts';
import { BenchChild } from './processes.ts';
import { median, quantile } from './stats.ts';

const TOKEN = 'bench-metrics-token-0123456789';

interface Tenant {
  readonly appId: number;
  readonly secretId: string;
  readonly secretKey: string;
  readonly zoneId: string;
  readonly host: string;
}

const tenants = (n: number): Tenant[] =>
  Array.from({ length: n }, (_, i) => ({
    appId: 1_300_000_000 + i,
    secretId: `AKIDmetricsbench${String(i).padStart(8, '0')}`,
    secretKey: `metricsBenchSecretKey${String(i).padStart(8, '0')}`,
    zoneId: `zone-mb${i}`,
    host: `www.t${i}.bench`,
  }));

function configFor(dir: string, ts: readonly Tenant[], nodes: ReadonlyArray<{ id: string; token: string }>, metricsOn: boolean): ConfigInput {
  return {
    server: { listen: '127.0.0.1:0', accessLog: metricsOn },
    store: { driver: 'sqlite', path: join(dir, 'bench.db') },
    metrics: metricsOn ? { token: TOKEN } : { enabled: false },
    accounts: ts.map((t) => ({
      appId: t.appId,
      name: `tenant-${t.appId}`,
      credentials: [{ secretId: t.secretId, secretKey: t.secretKey }],
      rateLimit: false as const,
      quotas: { purge_url: { batch: 1000, daily: 100_000_000 } },
      zones: [{ zoneId: t.zoneId, name: `t${t.appId}.bench`, domains: [{ host: t.host, origin: 'http://127.0.0.1:9' }] }],
    })),
    nodes: nodes.map((n) => ({ id: n.id, token: n.token, listen: '127.0.0.1:0' })),
  };
}

function signed(port: number, t: Tenant, params: unknown): LoadRequest {
  const body = JSON.stringify(params);
  const headers = signTc3Request({
    secretId: t.secretId,
    secretKey: t.secretKey,
    host: `127.0.0.1:${port}`,
    service: 'teo',
    action: 'CreatePurgeTask',
    version: '2022-09-01',
    timestamp: Math.floor(systemClock.now() / 1000),
    body,
    method: 'POST',
    contentType: 'application/json',
  });
  return { method: 'POST', path: '/', headers, body };
}

export interface ScrapeFigure {
  readonly nodes: number;
  readonly accounts: number;
  readonly scrapes: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The server's CPU per scrape: its CPU time while scraping less an idle stretch as long (acks, heartbeats), ms. */
  readonly cpuMsPerScrape: number;
  readonly bytes: number;
  readonly series: number;
  readonly connectedNodes: number;
}

/**
 * Scrapes a control plane (child process) with `nodes` agents connected (another child process) and
 * `accounts` accounts that each purged and had a request refused, so every kind of series is present.
 */
export async function benchScrape(o: { nodes?: number; accounts?: number; scrapes?: number; serverCpu?: number; agentsCpu?: number } = {}): Promise<ScrapeFigure> {
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-metrics-bench-'));
  const ts = tenants(o.accounts ?? 100);
  const nodes = Array.from({ length: o.nodes ?? 100 }, (_, i) => ({ id: `bench-node-${i + 1}`, token: `bench-node-token-${i + 1}-xxxxxxxx` }));
  const server = await BenchChild.start({ role: 'control-plane', config: configFor(dir, ts, nodes, true) }, o.serverCpu);
  let agents: BenchChild | undefined;
  try {
    const base = `http://127.0.0.1:${server.port}`;
    agents = await BenchChild.start({ role: 'agents', controlPlane: base, nodes, domains: ts.map((t) => ({ host: t.host, origin: 'http://127.0.0.1:9' })) }, o.agentsCpu);
    let tasks = 0;
    for (const t of ts) {
      for (const targets of [[`https://${t.host}/a.js`, `https://${t.host}/b.js`], [`https://nosuch.bench/x.js`]]) {
        const r = signed(server.port, t, { ZoneId: t.zoneId, Type: 'purge_url', Targets: targets });
        const answer = await (await fetch(`${base}/`, { method: 'POST', headers: r.headers, body: r.body })).text();
        if (!answer.includes('"Error"')) tasks += targets.length;
      }
    }
    // A fresh store: the log ends at seq `tasks` once every purge was committed.
    for (const end = Date.now() + 60_000; Date.now() < end; ) {
      if ((await agents.applied()).every((s) => s >= tasks)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const scrape = async (): Promise<string> => (await fetch(`${base}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } })).text();
    const body = await scrape();
    const times: number[] = [];
    const cpu0 = server.cpuSeconds();
    const t0 = performance.now();
    for (let i = 0; i < (o.scrapes ?? 200); i++) {
      const t1 = performance.now();
      await scrape();
      times.push(performance.now() - t1);
    }
    const [busyCpu, busyMs] = [server.cpuSeconds() - cpu0, performance.now() - t0];
    const idle0 = server.cpuSeconds();
    await new Promise((r) => setTimeout(r, busyMs));
    const idleCpu = server.cpuSeconds() - idle0;
    const lines = body.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    return {
      nodes: nodes.length,
      accounts: ts.length,
      scrapes: times.length,
      p50Ms: median(times),
      p99Ms: quantile(times, 0.99),
      cpuMsPerScrape: (Math.max(0, busyCpu - idleCpu) * 1000) / times.length,
      bytes: Buffer.byteLength(body),
      series: lines.length,
      connectedNodes: lines.filter((l) => l.startsWith('edgepurge_node_connected{') && l.endsWith(' 1')).length,
    };
  } finally {
    await agents?.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface OnOffFigure {
  /** requests/s per round, metrics (and access log) on and off, loaded side by side. */
  readonly on: readonly number[];
  readonly off: readonly number[];
  /** Median of the per-round ratios on / off. */
  readonly ratio: number;
  readonly errors: number;
  readonly errorSample: string | undefined;
  readonly connections: number;
  readonly roundMs: number;
}

/**
 * CreatePurgeTask (1 URL) throughput of two control planes (child processes, same CPU) that differ
 * only in `metrics.enabled` and `server.accessLog` (the log written to /dev/null), loaded at the same
 * time: sharing the CPU, each gets through as much as its cost per request allows, and other work on the
 * machine falls on both sides at once. The ratio of each round is taken.
 */
export async function benchOnOff(o: { rounds?: number; roundMs?: number; connections?: number; serverCpu?: number; loadCpu?: number } = {}): Promise<OnOffFigure> {
  const ts = tenants(10);
  const dirs = [mkdtempSync(join(tmpdir(), 'edgepurge-metrics-on-')), mkdtempSync(join(tmpdir(), 'edgepurge-metrics-off-'))] as const;
  const on = await BenchChild.start({ role: 'control-plane', config: configFor(dirs[0], ts, [], true), logFile: '/dev/null' }, o.serverCpu);
  const off = await BenchChild.start({ role: 'control-plane', config: configFor(dirs[1], ts, [], false), logFile: '/dev/null' }, o.serverCpu);
  const connections = o.connections ?? 32;
  const roundMs = o.roundMs ?? 4000;
  const requests = (port: number) =>
    Array.from({ length: 2000 }, (_, i) => {
      const t = ts[i % ts.length]!;
      return signed(port, t, { ZoneId: t.zoneId, Type: 'purge_url', Targets: [`https://${t.host}/bench/${i}.js`] });
    });
  const reqs = new Map([[on, requests(on.port)], [off, requests(off.port)]]);
  const rps = new Map<BenchChild, number[]>([[on, []], [off, []]]);
  let errors = 0;
  let errorSample: string | undefined;
  try {
    for (let round = 0; round < (o.rounds ?? 5); round++) {
      // Both at once, so a burst of other work on the machine hits both sides alike.
      // Which load generator starts first alternates: neither side always gets the head start.
      const order = round % 2 ? [off, on] : [on, off];
      const results = await Promise.all(
        order.map((server) =>
          runLoad({
            host: '127.0.0.1',
            port: server.port,
            requests: reqs.get(server)!,
            connections,
            warmupMs: 1000,
            durationMs: roundMs,
            check: { bodyExcludes: '"Error":' },
            ...(o.loadCpu === undefined ? {} : { cpu: o.loadCpu }),
          }),
        ),
      );
      results.forEach((res, i) => {
        const measured = res.rounds[0]!;
        rps.get(order[i]!)!.push(measured.rps);
        errors += measured.errors;
        errorSample ??= res.errorSamples[0];
      });
    }
  } finally {
    await on.stop();
    await off.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  const onRps = rps.get(on)!;
  const offRps = rps.get(off)!;
  return { on: onRps, off: offRps, ratio: median(onRps.map((x, i) => x / offRps[i]!)), errors, errorSample, connections, roundMs };
}
