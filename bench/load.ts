// HTTP/1.1 load generator for the benchmarks: runs in a child process (never on the event loop of the
// server it measures), keeps N keep-alive connections busy with pre-built requests, and reports
// counts and latency percentiles per measurement round.
//
// It writes pre-serialised requests on raw sockets and parses responses minimally (status line,
// Content-Length or chunked body): on a 2-core machine an http.Agent client costs several times more
// CPU per request than the servers it measures, and would mostly measure itself.
import { fork, spawnSync } from 'node:child_process';
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { childPids, processCpuSeconds, threadsCpuSeconds } from './proc-cpu.ts';
import { quantileSorted } from './stats.ts';

export interface LoadRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** Sent as given (include Host); Content-Length is added for a body. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface LoadCheck {
  /** Expected status (default 200). */
  readonly status?: number;
  /** A response header that must have this value (lower-case name), e.g. ["x-cache", "HIT"]. */
  readonly header?: readonly [name: string, value: string];
  /** A response whose body contains this string counts as an error (e.g. `"Error":` for API 3.0). */
  readonly bodyExcludes?: string;
}

export interface LoadSpec {
  readonly host: string;
  readonly port: number;
  /** Taken in order, round robin over all connections (each request goes out once per pass). */
  readonly requests: readonly LoadRequest[];
  readonly connections: number;
  /** Unrecorded traffic before the first round. */
  readonly warmupMs?: number;
  /** Length of each measured round (time-bound rounds)… */
  readonly durationMs?: number;
  /** …or the number of requests per round (count-bound rounds, e.g. one pass over `requests`). */
  readonly count?: number;
  /** Measured rounds, back to back on the same connections (default 1). */
  readonly rounds?: number;
  readonly check?: LoadCheck;
  /** Pin the load generator to this CPU (Linux `taskset`), so it does not share a core with the server. */
  readonly cpu?: number;
}

export interface LoadRound {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface LoadResult {
  readonly rounds: readonly LoadRound[];
  /** The first few error descriptions (status, missing header, error body, socket error). */
  readonly errorSamples: readonly string[];
}

export interface AlternatingTarget {
  readonly host: string;
  readonly port: number;
  /** A server process whose CPU time (with its direct children's) is read around each measured turn. */
  readonly cpuPid?: number;
}

export interface AlternatingSpec {
  /** The servers compared. They take turns: only one has traffic at a time. */
  readonly targets: readonly AlternatingTarget[];
  /** Taken in order, round robin, as in LoadSpec (shared by all targets). */
  readonly requests: readonly LoadRequest[];
  /** Kept-alive connections to each target (only the active target's are busy). */
  readonly connections: number;
  /** Traffic to each target in turn before the first measurement. */
  readonly warmupMs?: number;
  /** Turns per target. Turn k goes through the targets in order for even k and in reverse for odd k. */
  readonly turns: number;
  /** Each turn: this long unrecorded after the switch (the other target's last answers drain), … */
  readonly settleMs: number;
  /** …then this long measured. */
  readonly turnMs: number;
  readonly check?: LoadCheck;
  /** Pin the load generator to this CPU (Linux `taskset`). */
  readonly cpu?: number;
}

export interface AlternatingTurn extends LoadRound {
  /** CPU seconds the target's `cpuPid` (and its direct children) used during the measured window; NaN without one. */
  readonly serverCpuSeconds: number;
}

export interface AlternatingResult {
  /** turns[t][k]: target t's k-th turn. */
  readonly turns: readonly (readonly AlternatingTurn[])[];
  readonly errorSamples: readonly string[];
}

const CRLF_CRLF = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');

/** The request's bytes on the wire (Content-Length added for a body). */
export function serialise(r: LoadRequest): Buffer {
  const body = r.body === undefined ? undefined : Buffer.from(r.body);
  let head = `${r.method} ${r.path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(r.headers)) head += `${k}: ${v}\r\n`;
  if (body) head += `Content-Length: ${body.length}\r\n`;
  head += '\r\n';
  return body ? Buffer.concat([Buffer.from(head), body]) : Buffer.from(head);
}

/** Incremental parser for one response at a time on one connection. */
export class ResponseParser {
  #buf: Buffer = Buffer.alloc(0);
  #headerDone = false;
  status = 0;
  #headerOk = true;
  #length = -1;
  #chunked = false;
  #body: Buffer[] = [];
  readonly #check: LoadCheck;

  constructor(check: LoadCheck) {
    this.#check = check;
  }

  /** Feeds bytes; calls `done` for each complete response (with an error text or undefined). */
  feed(chunk: Buffer, done: (error: string | undefined) => void): void {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    for (;;) {
      if (!this.#headerDone) {
        const end = this.#buf.indexOf(CRLF_CRLF);
        if (end === -1) return;
        this.#parseHead(this.#buf.toString('latin1', 0, end));
        this.#buf = this.#buf.subarray(end + 4);
        this.#headerDone = true;
      }
      const finished = this.#chunked ? this.#readChunked() : this.#readLength();
      if (!finished) return;
      done(this.#verdict());
      this.#headerDone = false;
      this.#body = [];
    }
  }

  #parseHead(head: string): void {
    const lines = head.split('\r\n');
    this.status = Number(lines[0]?.split(' ', 3)[1] ?? 0);
    this.#length = 0;
    this.#chunked = false;
    const want = this.#check.header;
    this.#headerOk = want === undefined;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] ?? '';
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') this.#length = Number(value);
      else if (name === 'transfer-encoding' && value.toLowerCase().includes('chunked')) this.#chunked = true;
      if (want && name === want[0] && value === want[1]) this.#headerOk = true;
    }
  }

  #readLength(): boolean {
    if (this.#buf.length < this.#length) return false;
    if (this.#check.bodyExcludes !== undefined) this.#body.push(this.#buf.subarray(0, this.#length));
    this.#buf = this.#buf.subarray(this.#length);
    return true;
  }

  #readChunked(): boolean {
    for (;;) {
      const eol = this.#buf.indexOf(CRLF);
      if (eol === -1) return false;
      const size = parseInt(this.#buf.toString('latin1', 0, eol), 16);
      // size line + data + CRLF (the last chunk: "0\r\n\r\n", no trailers from our servers)
      const need = eol + 2 + size + 2;
      if (this.#buf.length < need) return false;
      if (size > 0 && this.#check.bodyExcludes !== undefined) this.#body.push(this.#buf.subarray(eol + 2, eol + 2 + size));
      this.#buf = this.#buf.subarray(need);
      if (size === 0) return true;
    }
  }

  #verdict(): string | undefined {
    const c = this.#check;
    if (this.status !== (c.status ?? 200)) return `HTTP ${this.status}`;
    if (!this.#headerOk) return `header ${c.header?.[0]} is not ${c.header?.[1]}`;
    if (c.bodyExcludes !== undefined) {
      const body = Buffer.concat(this.#body).toString('utf8');
      if (body.includes(c.bodyExcludes)) return `body: ${body.slice(0, 300)}`;
    }
    return undefined;
  }
}

/** The latencies and errors of one measured round. */
class Window {
  #lat = new Float64Array(1 << 16);
  #n = 0;
  #errors = 0;

  record(ms: number): void {
    if (this.#n === this.#lat.length) {
      const bigger = new Float64Array(this.#lat.length * 2);
      bigger.set(this.#lat);
      this.#lat = bigger;
    }
    this.#lat[this.#n++] = ms;
  }

  /** Counts an error, keeping the first few descriptions in `samples`. */
  error(e: string, samples: string[]): void {
    this.#errors++;
    if (samples.length < 5) samples.push(e);
  }

  reset(): void {
    this.#n = 0;
    this.#errors = 0;
  }

  round(seconds: number): LoadRound {
    const sorted = this.#lat.slice(0, this.#n).sort();
    return {
      requests: this.#n,
      errors: this.#errors,
      seconds,
      rps: this.#n / seconds,
      p50Ms: quantileSorted(sorted, 0.5),
      p90Ms: quantileSorted(sorted, 0.9),
      p99Ms: quantileSorted(sorted, 0.99),
      maxMs: sorted[sorted.length - 1] ?? Number.NaN,
    };
  }
}

/** Runs the load in this process (what the child does). */
export async function generateLoad(spec: LoadSpec): Promise<LoadResult> {
  const wire = spec.requests.map(serialise);
  if (wire.length === 0) throw new Error('no requests to send');
  const check = spec.check ?? {};
  const countBound = spec.count !== undefined;
  let next = 0;
  /** -1 while warming up; requests are recorded only if answered in the round they were sent in. */
  let round = -1;
  let stopped = false;
  const w = new Window();
  /** Count-bound rounds: requests still to send, and sent but unanswered. */
  let left = 0;
  let pending = 0;
  let roundDone: (() => void) | undefined;
  const idle: Array<() => void> = [];
  const errorSamples: string[] = [];
  const onError = (e: string) => w.error(e, errorSamples);
  const record = (ms: number) => w.record(ms);
  const sockets = new Set<Socket>();

  const openConnection = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const parser = new ResponseParser(check);
      let sentAt = 0;
      let sentRound = -1;
      let inFlight = false;
      let started = false;
      const sock: Socket = connect({ host: spec.host, port: spec.port, noDelay: true });
      sockets.add(sock);
      const send = (): void => {
        if (stopped) return;
        if (countBound && round >= 0) {
          if (left === 0) {
            idle.push(send);
            if (pending === 0) roundDone?.();
            return;
          }
          left--;
          pending++;
        }
        const req = wire[next++ % wire.length]!;
        inFlight = true;
        sentRound = round;
        sentAt = performance.now();
        sock.write(req);
      };
      sock.on('connect', () => {
        started = true;
        resolve();
        // Count-bound without warm-up: connections wait for the first round to wake them.
        if (countBound && round < 0 && !spec.warmupMs) idle.push(send);
        else send();
      });
      sock.on('data', (chunk: Buffer) =>
        parser.feed(chunk, (err) => {
          const ms = performance.now() - sentAt;
          inFlight = false;
          if (sentRound >= 0 && sentRound === round) {
            if (err !== undefined) onError(err);
            record(ms);
          }
          if (countBound && sentRound >= 0) pending--;
          send();
        }),
      );
      sock.on('error', (e) => {
        if (!started) reject(e);
        else if (!stopped) onError(`socket: ${e.message}`);
      });
      sock.on('close', () => {
        sockets.delete(sock);
        if (stopped || !started) return;
        // The server closed a kept-alive connection: count it and carry on with a new one.
        if (inFlight && sentRound >= 0) {
          onError('connection closed mid-request');
          if (countBound) {
            pending--;
            left++;
          }
        }
        openConnection().catch((e: unknown) => onError(`reconnect: ${String(e)}`));
      });
    });

  await Promise.all(Array.from({ length: spec.connections }, openConnection));
  if (spec.warmupMs) await new Promise((r) => setTimeout(r, spec.warmupMs));
  const rounds: LoadRound[] = [];
  for (let r = 0; r < (spec.rounds ?? 1); r++) {
    w.reset();
    const t0 = performance.now();
    if (countBound) {
      left = spec.count ?? 0;
      const finished = new Promise<void>((resolve) => (roundDone = resolve));
      round = r;
      for (const wake of idle.splice(0)) wake();
      await finished;
    } else {
      round = r;
      await new Promise((res) => setTimeout(res, spec.durationMs ?? 10_000));
    }
    rounds.push(w.round((performance.now() - t0) / 1000));
  }
  stopped = true;
  for (const s of sockets) s.destroy();
  return { rounds, errorSamples };
}

/**
 * Load that alternates between servers in one process, on the same kind of connections, in short turns
 * (A B, B A, A B, …): a slower minute of a loaded machine lands on both sides of a pair of turns, so
 * per-pair ratios compare the servers rather than the moments they were measured in.
 */
export async function generateAlternatingLoad(spec: AlternatingSpec): Promise<AlternatingResult> {
  const wire = spec.requests.map(serialise);
  if (wire.length === 0) throw new Error('no requests to send');
  if (spec.targets.length === 0) throw new Error('no targets');
  const check = spec.check ?? {};
  let next = 0;
  let active = -1;
  /** Incremented for each measured window; 0 is never measured. Answers count only in their own window. */
  let window = 0;
  let measuring = false;
  let stopped = false;
  const w = new Window();
  const errorSamples: string[] = [];
  const parked: Array<Array<() => void>> = spec.targets.map(() => []);
  const sockets = new Set<Socket>();

  const openConnection = (t: number): Promise<void> =>
    new Promise((resolve, reject) => {
      const parser = new ResponseParser(check);
      let sentAt = 0;
      let sentWindow = 0;
      let inFlight = false;
      let started = false;
      const sock: Socket = connect({ host: spec.targets[t]!.host, port: spec.targets[t]!.port, noDelay: true });
      sockets.add(sock);
      const send = (): void => {
        if (stopped) return;
        if (active !== t) {
          parked[t]!.push(send);
          return;
        }
        inFlight = true;
        sentWindow = measuring ? window : 0;
        sentAt = performance.now();
        sock.write(wire[next++ % wire.length]!);
      };
      sock.on('connect', () => {
        started = true;
        resolve();
        send();
      });
      sock.on('data', (chunk: Buffer) =>
        parser.feed(chunk, (err) => {
          const ms = performance.now() - sentAt;
          inFlight = false;
          if (sentWindow !== 0 && sentWindow === window && measuring) {
            if (err !== undefined) w.error(err, errorSamples);
            w.record(ms);
          }
          send();
        }),
      );
      sock.on('error', (e) => {
        if (!started) reject(e);
        else if (!stopped) w.error(`socket: ${e.message}`, errorSamples);
      });
      sock.on('close', () => {
        sockets.delete(sock);
        if (stopped || !started) return;
        if (inFlight && sentWindow !== 0) w.error('connection closed mid-request', errorSamples);
        openConnection(t).catch((e: unknown) => w.error(`reconnect: ${String(e)}`, errorSamples));
      });
    });

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const activate = (t: number): void => {
    active = t;
    for (const wake of parked[t]!.splice(0)) wake();
  };
  for (let t = 0; t < spec.targets.length; t++) await Promise.all(Array.from({ length: spec.connections }, () => openConnection(t)));
  if (spec.warmupMs) {
    for (let t = 0; t < spec.targets.length; t++) {
      activate(t);
      await sleep(spec.warmupMs);
    }
  }
  // The processes whose CPU is read around each turn, found once: a scan of /proc per turn would stall the
  // load at the start of every window.
  const cpuPids = spec.targets.map((t) => (t.cpuPid === undefined ? [] : [t.cpuPid, ...childPids(t.cpuPid)]));
  const processSeconds = (pid: number) => {
    const s = threadsCpuSeconds(pid);
    return Number.isNaN(s) ? processCpuSeconds(pid) : s;
  };
  const cpuSeconds = (t: number) => (cpuPids[t]!.length === 0 ? Number.NaN : cpuPids[t]!.reduce((sum, pid) => sum + processSeconds(pid), 0));
  const order = spec.targets.map((_, t) => t);
  const turns: AlternatingTurn[][] = spec.targets.map(() => []);
  for (let k = 0; k < spec.turns; k++) {
    for (const t of k % 2 === 0 ? order : [...order].reverse()) {
      activate(t);
      await sleep(spec.settleMs);
      const cpu0 = cpuSeconds(t);
      w.reset();
      window++;
      measuring = true;
      const t0 = performance.now();
      await sleep(spec.turnMs);
      measuring = false;
      const seconds = (performance.now() - t0) / 1000;
      const cpu1 = cpuSeconds(t);
      turns[t]!.push({ ...w.round(seconds), serverCpuSeconds: cpu1 - cpu0 });
    }
  }
  stopped = true;
  for (const s of sockets) s.destroy();
  return { turns, errorSamples };
}

type ChildRequest = { readonly spec: LoadSpec } | { readonly alternating: AlternatingSpec };

/** Forks this file as the load generator, pinned to `cpu`, and resolves with what it sends back. */
function runChild<T>(request: ChildRequest, cpu: number | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(import.meta.filename, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    if (cpu !== undefined) pinToCpu(child.pid, cpu);
    let result: T | undefined;
    child.on('message', (m: { result?: T; error?: string }) => {
      if (m.error !== undefined) reject(new Error(`load generator: ${m.error}`));
      else result = m.result;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (result) resolve(result);
      else reject(new Error(`load generator exited with code ${code}`));
    });
    child.send(request);
  });
}

/** Runs `spec` in a child process (see generateAlternatingLoad) and resolves with its result. */
export function runAlternatingLoad(spec: AlternatingSpec): Promise<AlternatingResult> {
  return runChild({ alternating: spec }, spec.cpu);
}

/** Runs `spec` in a child process and resolves with its result. */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return runChild({ spec }, spec.cpu);
}

/** Best effort: pins `pid` (all its threads) to one CPU with taskset; false when that is not possible. */
export function pinToCpu(pid: number | undefined, cpu: number): boolean {
  if (pid === undefined || process.platform !== 'linux') return false;
  try {
    return spawnSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  }
}

/**
 * Runs `fn` with this process (all its threads) pinned to `cpu`, then lets it run on every CPU again.
 * The process that forks the server and the load generators must not run on the server's core: its
 * timers and GC threads preempted the pinned server there (perf sched, storm bench: the orchestrator's
 * main and V8 worker threads held CPU 0 for 0.3-1 ms before 10 of 45 wake-ups of the server's loop
 * that waited over 0.5 ms).
 */
export async function whilePinned<T>(cpu: number | undefined, fn: () => Promise<T>): Promise<T> {
  // "pid 123's current affinity list: 0,1": restored afterwards.
  const was = cpu === undefined ? undefined : /list:\s*(\S+)/.exec(spawnSync('taskset', ['-c', '-p', String(process.pid)], { encoding: 'utf8' }).stdout ?? '')?.[1];
  if (cpu === undefined || was === undefined || !pinToCpu(process.pid, cpu)) return fn();
  try {
    return await fn();
  } finally {
    spawnSync('taskset', ['-a', '-p', '-c', was, String(process.pid)], { stdio: 'ignore' });
  }
}

if (import.meta.main && process.send) {
  process.once('message', (m: ChildRequest) => {
    ('alternating' in m ? generateAlternatingLoad(m.alternating) : generateLoad(m.spec)).then(
      (result) => process.send?.({ result }, () => process.exit(0)),
      (e: unknown) => process.send?.({ error: e instanceof Error ? e.message : String(e) }, () => process.exit(1)),
    );
  });
}

/** One request on loopback through `agent` (keep-alive); resolves with the body, whatever the status. */
export function sendOne(agent: http.Agent, port: number, r: LoadRequest): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: r.method, path: r.path, headers: r.headers, agent }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve(text));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(r.body);
  });
}
