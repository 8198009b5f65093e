// Query load (the hardening issue's "one tenant's query freezes the control plane and the fleet's
// leases"): a tenant holding 300,000 jobs over 30 days runs the heaviest legal query of every query
// action in a loop against a real control plane (child process) while an edge node holds its lease
// (another child) and a second tenant purges and queries. Measured: the control plane's event-loop
// delay (inside its process), lease lapses, and every request's latency.
import { Agent, request } from 'node:http';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatCdnTime, formatIso } from '../src/actions/times.ts';
import type { ConfigInput } from '../src/config/schema.ts';
import { hmacSign, hmacStringToSign } from '../src/protocols/hmac-signature.ts';
import { signTc3Request } from '../src/protocols/tc3/tc3-signature.ts';
import { BenchChild, type LeaseWatch, type LoopDelay } from './processes.ts';
import { BUSIEST_HOST, QUERY_TENANT, seedQueryTenant, type QuerySeed } from './query-seed.ts';
import { median, quantile } from './stats.ts';

const DAY = 86_400_000;
const TZ = '+08:00';
const TEO = { version: '2022-09-01', service: 'teo' } as const;
const CDN = { version: '2018-06-06', service: 'cdn' } as const;

interface Credential {
  readonly secretId: string;
  readonly secretKey: string;
}
const HEAVY: Credential = { secretId: 'AKIDqueryheavyqueryheavy00000001', secretKey: 'queryHeavySecretKeyqueryHeavy001' };
const PROBE: Credential = { secretId: 'AKIDqueryprobequeryprobe00000002', secretKey: 'queryProbeSecretKeyqueryProbe002' };
const PROBE_TENANT = { appId: 1250000102, zoneId: 'zone-qprobe0001', host: 'www.probe.example' } as const;
const NODE = { id: 'query-bench-edge-1', token: 'query-bench-edge-token-000001' } as const;

export interface QueryLoadOptions {
  /** How long the heavy loops run (default 60 s). */
  readonly durationMs?: number;
  /** Before them, how long only the other tenant runs: the event-loop delay of this machine at rest (default 10 s). */
  readonly idleMs?: number;
  /** Heavy query loops running at once, each one request at a time (default 2). */
  readonly concurrency?: number;
  /** CPUs for the control plane and for everything else (Linux taskset); omitted: not pinned. */
  readonly serverCpu?: number;
  readonly loadCpu?: number;
  readonly log?: (line: string) => void;
}

export interface QueryFigure {
  readonly name: string;
  readonly requests: number;
  readonly p50Ms: number;
  readonly maxMs: number;
  readonly errors: number;
  readonly errorSample?: string;
  /** What the answers said they matched (TotalCount / total), the mean. */
  readonly meanTotal: number;
  /** Items in an answer (tasks, logs, records), the mean. */
  readonly meanItems: number;
}

export interface QueryLoadResult {
  readonly seed: QuerySeed;
  readonly startupMs: number;
  readonly durationMs: number;
  readonly loop: LoopDelay;
  /** The same, while only the other tenant ran: what the machine itself adds right now. */
  readonly idleLoop: LoopDelay;
  readonly leases: LeaseWatch;
  readonly leaseMs: number;
  readonly queries: readonly QueryFigure[];
  readonly probe: readonly QueryFigure[];
  /** The other tenant's figures while it ran alone. */
  readonly idleProbe: readonly QueryFigure[];
  readonly appliedSeq: number;
  readonly heavyRequests: number;
  /** Size of the store's WAL file at the end, bytes: readers never let it grow without bound. */
  readonly walBytes: number;
}

/** One HTTP exchange, timed; the body is parsed as JSON when it is. */
interface Call {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

/** A query of the loop: signs afresh for every call (legacy v2 refuses a replayed nonce). */
interface Query {
  readonly name: string;
  readonly call: () => Call;
  /** An error description when the answer is not a success, else undefined; and the answer's sizes. */
  readonly check: (status: number, body: unknown) => { error?: string; total?: number; items?: number };
}

function tc3(port: number, product: typeof TEO | typeof CDN, cred: Credential, action: string, params: unknown): Call {
  const body = JSON.stringify(params);
  const host = `127.0.0.1:${port}`;
  const headers = signTc3Request({
    ...cred, host, service: product.service, action, version: product.version,
    timestamp: Math.floor(Date.now() / 1000), body, method: 'POST', contentType: 'application/json',
  });
  return { method: 'POST', path: '/', headers, body };
}

function v2(port: number, cred: Credential, fields: Record<string, string>): Call {
  const host = `127.0.0.1:${port}`;
  const params: Record<string, string> = {
    SecretId: cred.secretId,
    Timestamp: String(Math.floor(Date.now() / 1000)),
    Nonce: String(Math.floor(Math.random() * 2 ** 47)),
    SignatureMethod: 'HmacSHA256',
    ...fields,
  };
  params['Signature'] = hmacSign(cred.secretKey, hmacStringToSign('POST', host, '/v2/index.php', params, 'HmacSHA256'), 'HmacSHA256');
  return { method: 'POST', path: '/v2/index.php', headers: { Host: host, 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() };
}

type Json = Record<string, unknown>;
const api3 = (status: number, body: unknown, items: string) => {
  const r = (body as { Response?: Json }).Response;
  if (status !== 200 || !r || r['Error']) return { error: `HTTP ${status} ${JSON.stringify(body).slice(0, 200)}` };
  const list = r[items];
  return { total: Number(r['TotalCount'] ?? Number.NaN), items: Array.isArray(list) ? list.length : 0 };
};
const legacy = (status: number, body: unknown) => {
  const b = body as { code?: number; data?: { logs?: unknown[]; total?: number } };
  if (status !== 200 || b.code !== 0) return { error: `HTTP ${status} ${JSON.stringify(body).slice(0, 200)}` };
  return { total: Number(b.data?.total ?? Number.NaN), items: b.data?.logs?.length ?? 0 };
};
const plain = (status: number, body: unknown) => (status === 200 && !(body as { Response?: Json }).Response?.['Error'] ? {} : { error: `HTTP ${status} ${JSON.stringify(body).slice(0, 200)}` });

/**
 * The heaviest legal query of every query action, on the seeded tenant: the widest range each protocol
 * allows (EdgeOne 7 days, CDN and legacy the 30 days kept), its largest page, deep offsets, every
 * domain, fuzzy search (a 2-character needle is checked row by row), exact-URL and task filters.
 */
export function heavyQueries(port: number, now: number, seed: QuerySeed): Query[] {
  const week = { StartTime: formatIso(now - 7 * DAY), EndTime: formatIso(now) };
  const month = { StartTime: formatCdnTime(now - 30 * DAY, TZ), EndTime: formatCdnTime(now, TZ) };
  const legacyMonth = { startDate: formatCdnTime(now - 30 * DAY, TZ), endDate: formatCdnTime(now, TZ) };
  const allHosts = QUERY_TENANT.zones.flatMap((z) => z.hosts);
  const teo = (action: string, params: Json) => () => tc3(port, TEO, HEAVY, action, params);
  const cdn = (action: string, params: Json) => () => tc3(port, CDN, HEAVY, action, params);
  const old = (fields: Record<string, string>) => () => v2(port, HEAVY, fields);
  const hostsN = Object.fromEntries(allHosts.map((h, i) => [`hosts.${i}`, h]));
  const tasks = (s: number, b: unknown) => api3(s, b, 'Tasks');
  return [
    { name: 'EO DescribePurgeTasks: 7 days, Limit 1000, Offset 80,000', call: teo('DescribePurgeTasks', { ZoneId: '*', ...week, Offset: 80_000, Limit: 1000 }), check: tasks },
    {
      name: 'EO DescribePurgeTasks: 10 domains + 5 statuses, Offset 60,000',
      call: teo('DescribePurgeTasks', { ZoneId: '*', ...week, Offset: 60_000, Limit: 1000, Filters: [{ Name: 'domains', Values: allHosts }, { Name: 'statuses', Values: ['processing', 'success', 'failed', 'timeout', 'canceled'] }] }),
      check: tasks,
    },
    { name: 'EO DescribePurgeTasks: fuzzy "js" (row check), Limit 1000', call: teo('DescribePurgeTasks', { ZoneId: '*', ...week, Offset: 0, Limit: 1000, Filters: [{ Name: 'target', Values: ['js'], Fuzzy: true }] }), check: tasks },
    {
      name: 'EO DescribePurgeTasks: zone + fuzzy ".shop.example/d", Offset 20,000',
      call: teo('DescribePurgeTasks', { ZoneId: QUERY_TENANT.zones[0].zoneId, ...week, Offset: 20_000, Limit: 1000, Filters: [{ Name: 'target', Values: ['.shop.example/d'], Fuzzy: true }] }),
      check: tasks,
    },
    { name: 'EO DescribePrefetchTasks: 10 domains, Limit 1000, Offset 6,000', call: teo('DescribePrefetchTasks', { ZoneId: '*', ...week, Offset: 6_000, Limit: 1000, Filters: [{ Name: 'domains', Values: allHosts }] }), check: tasks },
    { name: 'CDN DescribePurgeTasks: 30 days, Limit 1000, Offset 200,000', call: cdn('DescribePurgeTasks', { ...month, Offset: 200_000, Limit: 1000 }), check: (s, b) => api3(s, b, 'PurgeLogs') },
    { name: 'CDN DescribePurgeTasks: 30 days, Keyword host, Offset 100,000', call: cdn('DescribePurgeTasks', { ...month, Keyword: BUSIEST_HOST, Offset: 100_000, Limit: 1000 }), check: (s, b) => api3(s, b, 'PurgeLogs') },
    { name: 'CDN DescribePurgeTasks: 30 days, Status fail, Limit 1000', call: cdn('DescribePurgeTasks', { ...month, Status: 'fail', Offset: 0, Limit: 1000 }), check: (s, b) => api3(s, b, 'PurgeLogs') },
    { name: 'CDN DescribePushTasks: 30 days, Limit 1000, Offset 29,000', call: cdn('DescribePushTasks', { ...month, Offset: 29_000, Limit: 1000 }), check: (s, b) => api3(s, b, 'PushLogs') },
    { name: 'v2 GetCdnRefreshLog: 30 days, limit 10000, offset 150,000', call: old({ Action: 'GetCdnRefreshLog', ...legacyMonth, offset: '150000', limit: '10000' }), check: legacy },
    { name: 'v2 GetCdnRefreshLog: 30 days, host, limit 10000, offset 70,000', call: old({ Action: 'GetCdnRefreshLog', ...legacyMonth, host: BUSIEST_HOST, offset: '70000', limit: '10000' }), check: legacy },
    { name: 'v2 GetCdnRefreshLog: 30 days, url (purged daily)', call: old({ Action: 'GetCdnRefreshLog', ...legacyMonth, url: seed.everydayUrl, limit: '10000' }), check: legacy },
    { name: 'v2 GetCdnRefreshLog: taskId of a 600-URL job', call: old({ Action: 'GetCdnRefreshLog', taskId: seed.bigJobId }), check: legacy },
    { name: 'v2 GetPushLogs: 30 days, 10 hosts, keyword "mp4", limit 1000', call: old({ Action: 'GetPushLogs', ...legacyMonth, ...hostsN, keyword: 'mp4', limit: '1000' }), check: legacy },
    { name: 'v2 GetPushLogs: 30 days, limit 1000, offset 29,000', call: old({ Action: 'GetPushLogs', ...legacyMonth, offset: '29000', limit: '1000' }), check: legacy },
    { name: 'EO DescribeContentQuota', call: teo('DescribeContentQuota', { ZoneId: '*' }), check: plain },
    { name: 'CDN DescribePurgeQuota', call: cdn('DescribePurgeQuota', {}), check: plain },
    { name: 'CDN DescribePushQuota', call: cdn('DescribePushQuota', {}), check: plain },
    {
      name: 'admin GET /admin/v1/jobs/ID (600 tasks)',
      call: () => ({
        method: 'GET',
        path: `/admin/v1/jobs/${seed.bigJobId}`,
        headers: { Host: `127.0.0.1:${port}`, Authorization: `Basic ${Buffer.from(`${HEAVY.secretId}:${HEAVY.secretKey}`).toString('base64')}` },
      }),
      check: (s, b) => (s === 200 ? { items: ((b as { Tasks?: unknown[] }).Tasks ?? []).length } : { error: `HTTP ${s} ${JSON.stringify(b).slice(0, 200)}` }),
    },
  ];
}

/** The other tenant: a purge (written, streamed to the edge, acked) and a look-up of it, in turn. */
function probeQueries(port: number): Query[] {
  let i = 0;
  let lastJob = '';
  return [
    {
      name: 'other tenant: CreatePurgeTask, 1 URL',
      call: () => tc3(port, TEO, PROBE, 'CreatePurgeTask', { ZoneId: PROBE_TENANT.zoneId, Type: 'purge_url', Targets: [`https://${PROBE_TENANT.host}/p/${i++}.js`] }),
      check: (s, b) => {
        const r = (b as { Response?: Json }).Response;
        if (s !== 200 || !r || r['Error']) return { error: `HTTP ${s} ${JSON.stringify(b).slice(0, 200)}` };
        lastJob = String(r['JobId']);
        return {};
      },
    },
    {
      name: 'other tenant: DescribePurgeTasks by job-id',
      call: () => tc3(port, TEO, PROBE, 'DescribePurgeTasks', { ZoneId: '*', Filters: [{ Name: 'job-id', Values: [lastJob || '0'] }] }),
      check: (s, b) => api3(s, b, 'Tasks'),
    },
  ];
}

/** The seeded tenant's account (bench/query-seed.ts), as the heavy queries sign for it. */
export function heavyAccount(): NonNullable<ConfigInput['accounts']>[number] {
  return {
    appId: QUERY_TENANT.appId,
    name: 'heavy',
    credentials: [HEAVY],
    // Default quotas (the seeded history stays within them); no rate limit, so that nothing but the
    // queries' own cost limits how hard this tenant pushes.
    rateLimit: false,
    zones: QUERY_TENANT.zones.map((z) => ({ zoneId: z.zoneId, name: z.name, domains: z.hosts.map((host) => ({ host, origin: 'http://127.0.0.1:9' })) })),
  };
}

export function queryBenchConfig(dbPath: string, leaseMs: number): ConfigInput {
  return {
    server: { listen: '127.0.0.1:0', timezone: TZ },
    store: { driver: 'sqlite', path: dbPath },
    fanout: { leaseMs },
    accounts: [
      heavyAccount(),
      {
        appId: PROBE_TENANT.appId,
        name: 'probe',
        credentials: [PROBE],
        rateLimit: false,
        zones: [{ zoneId: PROBE_TENANT.zoneId, name: 'probe.example', domains: [{ host: PROBE_TENANT.host, origin: 'http://127.0.0.1:9' }] }],
      },
    ],
    nodes: [{ id: NODE.id, token: NODE.token, listen: '127.0.0.1:20999' }],
  };
}

export class Client {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });
  readonly #port: number;

  constructor(port: number) {
    this.#port = port;
  }

  /** Sends one call; resolves with the status, the parsed body and the wall time in ms. */
  send(c: Call): Promise<{ status: number; body: unknown; ms: number }> {
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: this.#port, method: c.method, path: c.path, headers: c.headers, agent: this.#agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            // not JSON: reported as is
          }
          resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - t0 });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(c.body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

class Tally {
  readonly #by = new Map<string, { ms: number[]; errors: number; sample?: string; totals: number[]; items: number[] }>();

  add(q: Query, status: number, body: unknown, ms: number): void {
    let t = this.#by.get(q.name);
    if (!t) this.#by.set(q.name, (t = { ms: [], errors: 0, totals: [], items: [] }));
    t.ms.push(ms);
    const c = q.check(status, body);
    if (c.error !== undefined) {
      t.errors++;
      t.sample ??= c.error;
    }
    if (c.total !== undefined && Number.isFinite(c.total)) t.totals.push(c.total);
    if (c.items !== undefined) t.items.push(c.items);
  }

  figures(order: readonly Query[]): QueryFigure[] {
    return order.flatMap((q) => {
      const t = this.#by.get(q.name);
      if (!t) return [];
      const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
      return [{
        name: q.name, requests: t.ms.length, p50Ms: median(t.ms), maxMs: Math.max(...t.ms), errors: t.errors,
        ...(t.sample !== undefined ? { errorSample: t.sample } : {}), meanTotal: mean(t.totals), meanItems: mean(t.items),
      }];
    });
  }

  reset(): void {
    this.#by.clear();
  }

  /** p99 of one query's latencies (the probe's). */
  p99(name: string): number {
    return quantile(this.#by.get(name)?.ms ?? [], 0.99);
  }
}

export async function runQueryLoadBench(o: QueryLoadOptions = {}): Promise<QueryLoadResult & { probeP99Ms: readonly number[] }> {
  const log = o.log ?? (() => {});
  const durationMs = o.durationMs ?? 60_000;
  const leaseMs = 10_000; // the configuration default
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-query-bench-'));
  const dbPath = join(dir, 'query.db');
  let server: BenchChild | undefined;
  let agents: BenchChild | undefined;
  try {
    const seed = await seedQueryTenant(dbPath, Date.now());
    log(`seeded ${seed.jobs.toLocaleString('en')} jobs (${seed.tasks.toLocaleString('en')} tasks) over 30 days in ${seed.seconds.toFixed(1)} s`);
    server = await BenchChild.start(
      { role: 'control-plane', config: queryBenchConfig(dbPath, leaseMs) },
      o.serverCpu,
      // Flags for the control plane only, e.g. EDGEPURGE_BENCH_CP_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof' or '--trace-gc'.
      process.env.EDGEPURGE_BENCH_CP_FLAGS?.split(' ').filter(Boolean) ?? [],
    );
    const domains = [...QUERY_TENANT.zones.flatMap((z) => z.hosts), PROBE_TENANT.host].map((host) => ({ host, origin: 'http://127.0.0.1:9' }));
    agents = await BenchChild.start({ role: 'agents', controlPlane: `http://127.0.0.1:${server.port}`, nodes: [NODE], domains }, o.loadCpu);
    const client = new Client(server.port);
    const now = Date.now();
    const heavy = heavyQueries(server.port, now, seed);
    const probe = probeQueries(server.port);
    // Warm-up: every query once (this also starts the store's read workers), not measured.
    const warm = new Tally();
    for (const q of heavy) {
      const c = q.call();
      const r = await client.send(c);
      warm.add(q, r.status, r.body, r.ms);
    }
    for (const f of warm.figures(heavy)) if (f.errors) throw new Error(`${f.name}: ${f.errorSample}`);
    const noLoop: LoopDelay = { samples: 0, p50Ms: Number.NaN, p99Ms: Number.NaN, maxMs: Number.NaN };
    const idleMs = o.idleMs ?? 10_000;
    log(`warm-up done; ${(idleMs / 1000).toFixed(0)} s with only the other tenant (every 100 ms), then ${(durationMs / 1000).toFixed(0)} s with ${o.concurrency ?? 2} heavy loop(s) as well`);
    await server.loopDelay(true);
    let end = performance.now() + idleMs;
    const probes = new Tally();
    const probeLoop = async () => {
      for (let i = 0; performance.now() < end; i++) {
        const q = probe[i % probe.length]!;
        const r = await client.send(q.call());
        probes.add(q, r.status, r.body, r.ms);
        await sleep(100);
      }
    };
    await probeLoop();
    const idleLoop = (await server.loopDelay(true)) ?? noLoop;

    const tally = new Tally();
    end = performance.now() + durationMs;
    let heavyRequests = 0;
    const loop = async (start: number) => {
      for (let i = start; performance.now() < end; i++) {
        const q = heavy[i % heavy.length]!;
        const r = await client.send(q.call());
        tally.add(q, r.status, r.body, r.ms);
        heavyRequests++;
      }
    };
    const idleProbe = probes.figures(probe);
    probes.reset();
    const concurrency = Math.max(1, o.concurrency ?? 2);
    await Promise.all([...Array.from({ length: concurrency }, (_, k) => loop(Math.floor((k * heavy.length) / concurrency))), probeLoop()]);
    const loopDelay = (await server.loopDelay()) ?? noLoop;
    const leases = (await agents.leases()) ?? { lapses: Number.NaN, minHeadroomMs: Number.NaN, checks: 0 };
    const applied = await agents.applied();
    let walBytes = Number.NaN;
    try {
      walBytes = statSync(`${dbPath}-wal`).size;
    } catch {
      // no WAL file: nothing pending
    }
    client.close();
    return {
      seed,
      startupMs: server.ready.startupMs ?? Number.NaN,
      durationMs,
      loop: loopDelay,
      idleLoop,
      idleProbe,
      leases,
      leaseMs,
      queries: tally.figures(heavy),
      probe: probes.figures(probe),
      probeP99Ms: probe.map((q) => probes.p99(q.name)),
      appliedSeq: applied[0] ?? 0,
      heavyRequests,
      walBytes,
    };
  } finally {
    await agents?.stop();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
