// Storm bench (issue 11): account A sends signed CreatePurgeTask at 10× its rate limit while account B
// sends at a steady modest rate; A's refusals (RequestLimitExceeded) must be answered fast and B's p99
// must not move. One control-plane child; every sender is its own child process (paced, open loop), so
// that the storm's client work never delays B's clock. Phases alternate in one run: B alone, B beside A at its limit
// (all admitted), B beside the storm.
import { fork } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { ConfigInput } from '../src/config/schema.ts';
import { signTc3Request } from '../src/protocols/tc3/tc3-signature.ts';
import { pinToCpu, ResponseParser, serialise, whilePinned } from './load.ts';
import { BenchChild, type LoopDelay } from './processes.ts';
import { quantile } from './stats.ts';

const TEO = '2022-09-01';
const A = { appId: 1250000101, secretId: 'AKIDstormAstormAstormAstormAstormA01', secretKey: 'stormSecretKeyAstormSecretKeyA01', zoneId: 'zone-storma', host: 'a.storm.bench' };
const B = { appId: 1250000102, secretId: 'AKIDstormBstormBstormBstormBstormB02', secretKey: 'stormSecretKeyBstormSecretKeyB02', zoneId: 'zone-stormb', host: 'b.storm.bench' };
type Tenant = typeof A;

/** What one sender child is told: who signs, how fast, for how long. */
interface SenderSpec {
  readonly port: number;
  readonly tenant: Tenant;
  readonly perSecond: number;
  /** Most sockets open at once: enough that no request waits for one (an open loop measures the server). */
  readonly connections: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

/** Latencies (ms) by outcome, of requests sent after the warm-up. */
interface SenderResult {
  readonly ok: number[];
  readonly refused: number[];
  readonly errors: number;
  readonly errorSample?: string;
  /** Wall clock (ms since the epoch) at the end of the warm-up: the server's figures start there too. */
  readonly measuredFrom: number;
  /**
   * How late the sender's own 1 ms pacing tick fired past the warm-up (ms, p99 and max): an answer that
   * arrives while the sender's loop is late is timed late by as much, so this bounds the client's share.
   */
  readonly loopLateP99Ms: number;
  readonly loopLateMaxMs: number;
}

export interface Latency {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface StormBenchResult {
  readonly limitPerSecond: number;
  readonly stormPerSecond: number;
  readonly bPerSecond: number;
  /** A's refused requests (RequestLimitExceeded), client-observed on loopback. */
  readonly refusals: Latency;
  /**
   * The floor of that figure on this machine: the same two senders at the storm's rates against a bare
   * node:http server (a fixed JSON body, the request body read first) on the server's core, A's answers
   * client-observed. What the client, the loopback and the scheduler take before the server does any work.
   */
  readonly floor: Latency;
  /** A's requests admitted during the storm (about its limit). */
  readonly admitted: number;
  /** B alone, beside A at its limit (every request admitted), and beside the storm, over all phases of each. */
  readonly calm: Latency;
  readonly limit: Latency;
  readonly storm: Latency;
  /** The same, as the server's access log times them (handler entry to answer, `durationMs`). */
  readonly server: { readonly refusals: Latency; readonly calm: Latency; readonly limit: Latency; readonly storm: Latency };
  /** The control plane's event-loop delay in the last calm and the last storm phase. */
  readonly loop: { readonly calm: LoopDelay | undefined; readonly storm: LoopDelay | undefined };
  /** How late A's and B's senders ran their own loops in the storm (worst phase's p99, and max), ms. */
  readonly senderLate: { readonly a: { p99Ms: number; maxMs: number }; readonly b: { p99Ms: number; maxMs: number } };
  readonly errors: number;
  readonly errorSample?: string;
  /** Server CPU over the storm phases, % of one core, and per request it answered then (ms). */
  readonly serverCpuPct: number;
  readonly cpuPerRequestMs: number;
  /**
   * What a refusal costs: server CPU per second in the storm less that beside A at its limit (the same
   * admitted work), per refusal answered (ms).
   */
  readonly cpuPerRefusalMs: number;
}

export interface StormBenchOptions {
  readonly serverCpu?: number;
  readonly loadCpu?: number;
  /** Rounds of the three phases (default 2) and each phase's length (default 5 s). */
  readonly pairs?: number;
  readonly phaseMs?: number;
  /** Node flags for the control-plane child (e.g. --cpu-prof). */
  readonly serverExecArgv?: readonly string[];
  readonly log?: (line: string) => void;
}

function stormConfig(dbPath: string, limitPerSecond: number): ConfigInput {
  const account = (t: Tenant, rateLimit: { perSecond: number; burst: number }) => ({
    appId: t.appId,
    name: t.zoneId,
    credentials: [{ secretId: t.secretId, secretKey: t.secretKey }],
    rateLimit,
    quotas: { purge_url: { batch: 1000, daily: 100_000_000 } },
    zones: [{ zoneId: t.zoneId, name: `${t.zoneId}.bench`, domains: [{ host: t.host, origin: 'http://127.0.0.1:9' }] }],
  });
  return {
    server: { listen: '127.0.0.1:0', accessLog: true },
    store: { driver: 'sqlite', path: dbPath },
    // B's limit is far above its rate: only A is ever refused.
    accounts: [account(A, { perSecond: limitPerSecond, burst: limitPerSecond }), account(B, { perSecond: 1000, burst: 1000 })],
    nodes: [],
  };
}

/**
 * Sends `perSecond` requests spread evenly (a 1 ms pacing tick, open loop), each a distinct signed 1-URL
 * purge, on raw keep-alive sockets with pre-serialised requests and a minimal response parser (load.ts):
 * an http.Agent client costs several times the server's CPU per request, and A's sender shares a core
 * with B's, so B's clock would mostly measure A's client.
 */
async function send(spec: SenderSpec): Promise<SenderResult> {
  const host = `127.0.0.1:${spec.port}`;
  // Signed before the clock starts (a signature holds for 300 s): the sender's CPU goes to sending, so a
  // sender starved of CPU on a loaded machine does not pass for a slow server.
  const total = Math.ceil(((spec.warmupMs + spec.durationMs) / 1000) * spec.perSecond) + 1;
  const wire = Array.from({ length: total }, (_, i) => {
    const body = JSON.stringify({ ZoneId: spec.tenant.zoneId, Type: 'purge_url', Targets: [`https://${spec.tenant.host}/storm/${process.pid}/${i}.js`] });
    const headers = signTc3Request({
      secretId: spec.tenant.secretId, secretKey: spec.tenant.secretKey, host, service: 'teo', action: 'CreatePurgeTask', version: TEO,
      timestamp: Math.floor(Date.now() / 1000), body, method: 'POST', contentType: 'application/json',
    });
    return serialise({ method: 'POST', path: '/', headers, body });
  });
  const result: SenderResult & { errors: number; errorSample?: string; measuredFrom: number; loopLateP99Ms: number; loopLateMaxMs: number } = {
    ok: [], refused: [], errors: 0, measuredFrom: 0, loopLateP99Ms: 0, loopLateMaxMs: 0,
  };
  const late: number[] = [];
  const fail = (why: string) => {
    result.errors++;
    result.errorSample ??= why;
  };
  let start = 0;
  let stopped = false;
  let inFlight = 0;
  const idle: Conn[] = [];
  const all = new Set<Socket>();
  /** Requests due while every allowed socket was busy: sent as one frees, timed from when they were due. */
  const backlog: Array<{ i: number; dueAt: number }> = [];
  interface Conn { write(i: number, dueAt: number): void }
  const open = (): Promise<Conn> =>
    new Promise((resolve, reject) => {
      const sock = connect({ host: '127.0.0.1', port: spec.port, noDelay: true });
      all.add(sock);
      const parser = new ResponseParser({ bodyExcludes: '"Error":' });
      let sentAt = 0;
      let busy = false;
      const conn: Conn = {
        write(i, dueAt) {
          busy = true;
          inFlight++;
          sentAt = dueAt;
          sock.write(wire[Math.min(i, total - 1)]!);
        },
      };
      const freed = () => {
        const next = backlog.shift();
        if (next && !stopped) conn.write(next.i, next.dueAt);
        else idle.push(conn);
      };
      sock.once('connect', () => resolve(conn));
      sock.on('data', (chunk: Buffer) =>
        parser.feed(chunk, (err) => {
          const ms = performance.now() - sentAt;
          busy = false;
          inFlight--;
          if (sentAt >= start + spec.warmupMs) {
            if (err === undefined) result.ok.push(ms);
            else if (err.includes('"RequestLimitExceeded"')) result.refused.push(ms);
            else fail(err.slice(0, 200));
          }
          freed();
        }),
      );
      sock.on('error', (e) => (start === 0 ? reject(e) : fail(`socket: ${e.message}`)));
      sock.on('close', () => {
        all.delete(sock);
        if (busy && !stopped) {
          inFlight--;
          fail('connection closed mid-request');
        }
      });
    });
  // A few sockets before the clock starts; more open as the open loop needs them (up to `connections`).
  idle.push(...(await Promise.all(Array.from({ length: Math.min(8, spec.connections) }, open))));
  start = performance.now();
  result.measuredFrom = Date.now() + spec.warmupMs;
  const stopAt = start + spec.warmupMs + spec.durationMs;
  let sent = 0;
  // A new socket takes the backlog's head once connected (or waits idle).
  const openFor = () =>
    open().then(
      (c) => {
        const next = backlog.shift();
        if (next && !stopped) c.write(next.i, next.dueAt);
        else idle.push(c);
      },
      (e: unknown) => fail(`connect: ${String(e)}`),
    );
  const one = (i: number) => {
    const dueAt = performance.now();
    const conn = idle.pop();
    if (conn) return conn.write(i, dueAt);
    backlog.push({ i, dueAt });
    if (all.size < spec.connections) void openFor();
  };
  let lastTick = start;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      if (now >= start + spec.warmupMs) late.push(Math.max(0, now - lastTick - 1));
      lastTick = now;
      if (now >= stopAt) {
        clearInterval(tick);
        resolve();
        return;
      }
      const due = Math.floor(((now - start) / 1000) * spec.perSecond);
      while (sent < due) one(sent++);
    }, 1);
  });
  // Answers still in flight at the end are waited for (a slow refusal must count).
  const deadline = performance.now() + 5000;
  while ((inFlight > 0 || backlog.length > 0) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  stopped = true;
  result.loopLateP99Ms = quantile(late, 0.99);
  result.loopLateMaxMs = late.reduce((m, x) => Math.max(m, x), 0);
  if (backlog.length > 0) fail(`${backlog.length} requests never sent (no free connection)`);
  for (const s of all) s.destroy();
  return result;
}

/** Runs a sender in its own child process. */
function sender(spec: SenderSpec, cpu: number | undefined): Promise<SenderResult> {
  return new Promise((resolve, reject) => {
    const child = fork(import.meta.filename, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    if (cpu !== undefined) pinToCpu(child.pid, cpu);
    let result: SenderResult | undefined;
    child.on('message', (m: { result?: SenderResult; error?: string }) => {
      if (m.error !== undefined) reject(new Error(`storm sender: ${m.error}`));
      else result = m.result;
    });
    child.on('error', reject);
    child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`storm sender exited with code ${code}`))));
    child.send({ spec });
  });
}

const latency = (xs: readonly number[]): Latency => ({ count: xs.length, p50Ms: quantile(xs, 0.5), p99Ms: quantile(xs, 0.99) });

/** The access-log lines written since `from` (a byte offset), as {at (ms since the epoch), account, code, durationMs}. */
function accessLines(path: string, from: number): Array<{ at: number; account: number | null; code: string; durationMs: number }> {
  return readFileSync(path).subarray(from).toString().split('\n')
    .filter((l) => l.includes('"msg":"request"'))
    .map((l) => {
      const line = JSON.parse(l) as { t: string; account: number | null; code: string; durationMs: number };
      return { ...line, at: Date.parse(line.t) };
    });
}
const sizeOf = (path: string): number => statSync(path, { throwIfNoEntry: false })?.size ?? 0;

/** The storm bench, this process kept on the load generators' CPU meanwhile (whilePinned). */
export function runStormBench(o: StormBenchOptions = {}): Promise<StormBenchResult> {
  return whilePinned(o.loadCpu, () => stormBench(o));
}

async function stormBench(o: StormBenchOptions): Promise<StormBenchResult> {
  const log = o.log ?? (() => {});
  const limitPerSecond = 100;
  const stormPerSecond = 10 * limitPerSecond;
  const bPerSecond = 100;
  const phaseMs = o.phaseMs ?? 5000;
  const warmupMs = 1000;
  const dir = mkdtempSync(join(tmpdir(), 'edgepurge-storm-bench-'));
  const logFile = join(dir, 'access.log');
  const server = await BenchChild.start({ role: 'control-plane', config: stormConfig(join(dir, 'storm.db'), limitPerSecond), logFile }, o.serverCpu, o.serverExecArgv);
  const srv = { refusals: [] as number[], calm: [] as number[], limit: [] as number[], storm: [] as number[] };
  const loop: { calm?: LoopDelay | undefined; storm?: LoopDelay | undefined } = {};
  const b = { calm: [] as number[], limit: [] as number[], storm: [] as number[] };
  const refused: number[] = [];
  let admitted = 0;
  let errors = 0;
  let errorSample: string | undefined;
  let stormCpu = 0;
  let stormSeconds = 0;
  let stormAnswered = 0;
  let stormRefusals = 0;
  let limitCpu = 0;
  let limitSeconds = 0;
  /** The senders' own loop lateness (p99, max over phases), A's and B's in the storm. */
  const senderLate = { a: { p99Ms: 0, maxMs: 0 }, b: { p99Ms: 0, maxMs: 0 } };
  const take = (r: SenderResult) => {
    errors += r.errors;
    errorSample ??= r.errorSample;
  };
  const lateOf = (into: { p99Ms: number; maxMs: number }, r: SenderResult) => {
    into.p99Ms = Math.max(into.p99Ms, r.loopLateP99Ms);
    into.maxMs = Math.max(into.maxMs, r.loopLateMaxMs);
  };
  /** One phase: B at its rate, beside A at `aPerSecond` (none: B alone); what B and the server saw is kept under `name`. */
  const phase = async (name: 'calm' | 'limit' | 'storm', aPerSecond: number) => {
    const at = sizeOf(logFile);
    await server.loopDelay(true);
    const [cpu0, t0] = [server.cpuSeconds(), performance.now()];
    const [a, b1] = await Promise.all([
      aPerSecond > 0 ? sender({ port: server.port, tenant: A, perSecond: aPerSecond, connections: 256, warmupMs, durationMs: phaseMs }, o.loadCpu) : undefined,
      sender({ port: server.port, tenant: B, perSecond: bPerSecond, connections: 64, warmupMs, durationMs: phaseMs }, o.loadCpu),
    ]);
    const cpu = server.cpuSeconds() - cpu0;
    const seconds = (performance.now() - t0) / 1000;
    const delay = await server.loopDelay(true);
    const lines = accessLines(logFile, at);
    // Past the warm-up, as the clients count (the log line's time is the answer's; the start is about then).
    for (const l of lines) {
      // Only A is ever refused; a refusal answered before its signature was checked is logged without an account.
      if (l.code === 'RequestLimitExceeded' && (l.account === A.appId || l.account === null)) {
        if (name === 'storm' && a && l.at >= a.measuredFrom) srv.refusals.push(l.durationMs);
      } else if (l.account === B.appId && l.code === 'Success' && l.at >= b1.measuredFrom) srv[name].push(l.durationMs);
    }
    b[name].push(...b1.ok);
    take(b1);
    if (a) take(a);
    if (name === 'calm') loop.calm = delay;
    if (name === 'limit') {
      limitCpu += cpu;
      limitSeconds += seconds;
    }
    if (name === 'storm' && a) {
      lateOf(senderLate.a, a);
      lateOf(senderLate.b, b1);
      loop.storm = delay;
      stormCpu += cpu;
      stormSeconds += seconds;
      stormAnswered += lines.length;
      stormRefusals += lines.filter((l) => l.code === 'RequestLimitExceeded').length;
      refused.push(...a.refused);
      admitted += a.ok.length;
    }
  };
  const floorMs: number[] = [];
  /** The floor phase: both senders at the storm's rates against a bare node:http server on the server's core. */
  const floorPhase = async () => {
    const bare = await BenchChild.start({ role: 'bare-http' }, o.serverCpu);
    try {
      const [a, b1] = await Promise.all([
        sender({ port: bare.port, tenant: A, perSecond: stormPerSecond, connections: 256, warmupMs, durationMs: phaseMs }, o.loadCpu),
        sender({ port: bare.port, tenant: B, perSecond: bPerSecond, connections: 64, warmupMs, durationMs: phaseMs }, o.loadCpu),
      ]);
      floorMs.push(...a.ok);
      take(a);
      take(b1);
    } finally {
      await bare.stop();
    }
  };
  try {
    for (let pair = 0; pair < (o.pairs ?? 2); pair++) {
      log(`calm: B alone at ${bPerSecond} req/s for ${phaseMs / 1000} s …`);
      await phase('calm', 0);
      // A's admitted purges share the store with B's: this phase tells their cost from the refusals'.
      log(`A at its limit (${limitPerSecond} req/s) beside B at ${bPerSecond} req/s for ${phaseMs / 1000} s …`);
      await phase('limit', limitPerSecond);
      log(`storm: A at ${stormPerSecond} req/s (limit ${limitPerSecond}/s) beside B at ${bPerSecond} req/s for ${phaseMs / 1000} s …`);
      await phase('storm', stormPerSecond);
      log(`floor: the same senders against a bare node:http server for ${phaseMs / 1000} s …`);
      await floorPhase();
    }
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    limitPerSecond, stormPerSecond, bPerSecond,
    refusals: latency(refused), floor: latency(floorMs), admitted, calm: latency(b.calm), limit: latency(b.limit), storm: latency(b.storm),
    server: { refusals: latency(srv.refusals), calm: latency(srv.calm), limit: latency(srv.limit), storm: latency(srv.storm) },
    loop: { calm: loop.calm, storm: loop.storm },
    senderLate,
    errors, ...(errorSample === undefined ? {} : { errorSample }),
    serverCpuPct: (stormCpu / stormSeconds) * 100,
    cpuPerRequestMs: (stormCpu * 1000) / stormAnswered,
    cpuPerRefusalMs: ((stormCpu / stormSeconds - limitCpu / limitSeconds) * 1000) / (stormRefusals / stormSeconds),
  };
}

if (import.meta.main && process.send) {
  // A sender child (see sender()).
  process.once('message', (m: { spec: SenderSpec }) => {
    send(m.spec).then(
      (result) => process.send?.({ result }, () => process.exit(0)),
      (e: unknown) => process.send?.({ error: e instanceof Error ? e.message : String(e) }, () => process.exit(1)),
    );
  });
} else if (import.meta.main) {
  // `npx node bench/storm-bench.ts [--prof DIR]`: this part alone, optionally with a CPU profile of the control plane.
  const at = process.argv.indexOf('--prof');
  const profDir = at > 0 ? process.argv[at + 1] : undefined;
  const r = await runStormBench({
    serverCpu: 0,
    loadCpu: 1,
    // EDGEPURGE_BENCH_SERVER_FLAGS: more node flags for the control plane (e.g. --trace-gc), as in the submit bench.
    serverExecArgv: [...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []), ...(process.env.EDGEPURGE_BENCH_SERVER_FLAGS?.split(' ').filter(Boolean) ?? [])],
    log: (l) => console.log(l),
  });
  console.log(JSON.stringify(r, null, 2));
}
