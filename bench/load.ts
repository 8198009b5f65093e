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
  let lat = new Float64Array(1 << 16);
  let n = 0;
  let errors = 0;
  /** Count-bound rounds: requests still to send, and sent but unanswered. */
  let left = 0;
  let pending = 0;
  let roundDone: (() => void) | undefined;
  const idle: Array<() => void> = [];
  const errorSamples: string[] = [];
  const onError = (e: string) => {
    errors++;
    if (errorSamples.length < 5) errorSamples.push(e);
  };
  const record = (ms: number) => {
    if (n === lat.length) {
      const bigger = new Float64Array(lat.length * 2);
      bigger.set(lat);
      lat = bigger;
    }
    lat[n++] = ms;
  };
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
    n = 0;
    errors = 0;
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
    const seconds = (performance.now() - t0) / 1000;
    const sorted = lat.slice(0, n).sort();
    rounds.push({
      requests: n,
      errors,
      seconds,
      rps: n / seconds,
      p50Ms: quantileSorted(sorted, 0.5),
      p90Ms: quantileSorted(sorted, 0.9),
      p99Ms: quantileSorted(sorted, 0.99),
      maxMs: sorted[sorted.length - 1] ?? Number.NaN,
    });
  }
  stopped = true;
  for (const s of sockets) s.destroy();
  return { rounds, errorSamples };
}

/** Runs `spec` in a child process and resolves with its result. */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(import.meta.filename, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    if (spec.cpu !== undefined) pinToCpu(child.pid, spec.cpu);
    let result: LoadResult | undefined;
    child.on('message', (m: { result?: LoadResult; error?: string }) => {
      if (m.error !== undefined) reject(new Error(`load generator: ${m.error}`));
      else result = m.result;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (result) resolve(result);
      else reject(new Error(`load generator exited with code ${code}`));
    });
    child.send({ spec });
  });
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

if (import.meta.main && process.send) {
  process.once('message', (m: { spec: LoadSpec }) => {
    generateLoad(m.spec).then(
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
