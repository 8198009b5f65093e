// End-to-end harness: a real origin in the test process, and the control plane, edge nodes and cache
// agents as child processes of `src/cli/main.ts` (`serve`, `edge`, `agent`) on free ports, driven with
// the official SDKs.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before } from 'node:test';
import { stringify } from 'yaml';
import { NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { ACME, baseConfig } from '../helpers/control-plane.ts';
import { cdnClient, teoClient, type SdkClient } from '../helpers/sdk.ts';

export { ACME };

export const MAIN = resolve(import.meta.dirname, '../../src/cli/main.ts');

/** A port nobody listens on right now (listen on 0, close). */
/** Whether something accepts TCP connections on 127.0.0.1:port now. */
export const listening = (port: number): Promise<boolean> =>
  new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

/** Ports freePort handed out in this process: the kernel may give a just-closed port again. */
const handedOut = new Set<number>();

/**
 * A port free right now, never one this process was given before: a fleet that asks for ten ports in a
 * row once got the same one twice (its config then refused a duplicate listen address).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const s = http.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const { port } = s.address() as AddressInfo;
    await new Promise<void>((r) => s.close(() => r()));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` every 25 ms until it returns a truthy value. */
export async function until<T>(what: string, cond: () => Promise<T> | T, ms = 10_000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** One request as the origin saw it. */
export interface OriginHit {
  readonly host: string;
  readonly path: string;
  readonly ifNoneMatch: string | undefined;
  /** What the origin answered (200, 304, 404, …). */
  readonly status: number;
}

/**
 * The origin: a versioned body per host+path with `ETag: "vN"`, `Cache-Control: max-age=3600`, optional
 * `Cache-Tag`, and 304 when If-None-Match carries the current ETag. Every request is recorded.
 */
export class Origin {
  readonly hits: OriginHit[] = [];
  readonly #versions = new Map<string, number>();
  readonly #tags = new Map<string, string>();
  readonly #status = new Map<string, number>();
  readonly #held = new Set<() => void>();
  readonly #hold = new Set<string>();
  readonly #server: http.Server;
  port = 0;

  constructor() {
    this.#server = http.createServer((req, res) => {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '');
      const path = req.url ?? '/';
      const key = host + path;
      const answer = () => {
        const forced = this.#status.get(key);
        const etag = this.etag(host, path);
        const inm = req.headers['if-none-match'];
        const status = forced ?? (inm === etag ? 304 : 200);
        this.hits.push({ host, path, ifNoneMatch: inm, status });
        if (forced !== undefined) return void res.writeHead(forced, { 'Content-Type': 'text/plain' }).end(`forced ${forced}\n`);
        const headers: Record<string, string> = { 'Content-Type': 'text/plain', 'Cache-Control': 'public, max-age=3600', ETag: etag };
        const tags = this.#tags.get(key);
        if (tags) headers['Cache-Tag'] = tags;
        if (status === 304) return void res.writeHead(304, headers).end();
        res.writeHead(200, headers).end(this.body(host, path));
      };
      if (this.#hold.has(key)) this.#held.add(answer);
      else answer();
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  version(host: string, path: string): number {
    return this.#versions.get(host + path) ?? 1;
  }

  /** The next request gets a new body and ETag. */
  bump(host: string, path: string): void {
    this.#versions.set(host + path, this.version(host, path) + 1);
  }

  etag(host: string, path: string): string {
    return `"v${this.version(host, path)}"`;
  }

  body(host: string, path: string, version = this.version(host, path)): string {
    return `${host}${path} version ${version}\n`;
  }

  setTags(host: string, path: string, tags: string): void {
    this.#tags.set(host + path, tags);
  }

  /** Answer `status` (e.g. 404) for host+path instead of the object. */
  setStatus(host: string, path: string, status: number): void {
    this.#status.set(host + path, status);
  }

  /** Requests for host+path wait until release(). */
  hold(host: string, path: string): void {
    this.#hold.add(host + path);
  }

  release(): void {
    this.#hold.clear();
    for (const a of this.#held) a();
    this.#held.clear();
  }

  /** Requests seen for host+path since `from` (an index into `hits`, see mark()). */
  seen(host: string, path: string, from = 0): OriginHit[] {
    return this.hits.slice(from).filter((h) => h.host === host && h.path === path);
  }

  mark(): number {
    return this.hits.length;
  }

  async close(): Promise<void> {
    this.release();
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

/**
 * A TCP relay between one edge node and the control plane: the node's network link, which a test can
 * cut (pause: bytes and connection ends are held in order) and restore (resume: delivered in order).
 */
export class Relay {
  readonly #server: net.Server;
  /** The control plane's port; set again when the fleet had to move it (see Fleet.start). */
  target: number;
  readonly #sockets = new Set<net.Socket>();
  #held: Array<() => void> | undefined;
  port = 0;

  constructor(targetPort: number) {
    this.target = targetPort;
    this.#server = net.createServer((client) => {
      const upstream = net.connect(this.target, '127.0.0.1');
      this.#forward(client, upstream);
      this.#forward(upstream, client);
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', r));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  get paused(): boolean {
    return this.#held !== undefined;
  }

  pause(): void {
    this.#held ??= [];
  }

  resume(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const f of held) f();
  }

  #forward(from: net.Socket, to: net.Socket): void {
    this.#sockets.add(from);
    const run = (f: () => void) => (this.#held ? this.#held.push(f) : f());
    from.on('data', (d: Buffer) => run(() => to.write(d)));
    from.on('end', () => run(() => to.end()));
    from.on('error', () => to.destroy());
    from.on('close', () => {
      this.#sockets.delete(from);
      run(() => to.destroy());
    });
  }

  async close(): Promise<void> {
    this.#held = undefined;
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

export interface EdgeResponse {
  readonly status: number;
  readonly xcache: string | undefined;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
}

/** GET through a node with a given Host; no keep-alive (a frozen node must not hold our sockets). */
export function edgeGet(port: number, host: string, path: string, headers: Record<string, string> = {}, timeoutMs = 10_000): Promise<EdgeResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { ...headers, host }, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, xcache: headerString(res.headers['x-cache']), body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${host}${path} on :${port} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const headerString = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(', ') : v);

/** A node's per-task state as GET /admin/v1/jobs/JOBID shows it. */
export interface AdminNodeView {
  readonly NodeId: string;
  readonly State: 'applied' | 'pending' | 'fenced' | 'failed';
  readonly Driver: string;
  readonly AckedSeq: number;
  readonly LastSeen: string | null;
  readonly ExecutedAs: 'invalidate' | 'delete' | 'drop_all' | null;
  readonly Matched: number | null;
  readonly AppliedAt: string | null;
  readonly Note?: string;
  readonly FailMessage?: string;
}

export interface AdminJobView {
  readonly JobId: string;
  readonly Type: string;
  readonly Method: string;
  readonly Tasks: ReadonlyArray<{
    readonly Target: string;
    readonly Status: string;
    readonly Seq: number | null;
    readonly FailType?: string;
    readonly FailMessage?: string;
    readonly Nodes: readonly AdminNodeView[];
  }>;
}

/** A node run by `edgepurge agent` beside a cache the test started (Varnish, nginx). */
export interface AgentSpec {
  readonly id: string;
  /** The node's `driver:` entry in the config. */
  readonly driver: Readonly<Record<string, unknown>>;
}

export interface FleetOptions {
  readonly leaseMs?: number;
  readonly taskTimeoutMs?: number;
  /** Built-in edge nodes (default 3). */
  readonly nodeCount?: number;
  /** Agent nodes, started after the edge nodes. */
  readonly agents?: readonly AgentSpec[];
  /** An origin already started (the caches behind agents need its port first); the fleet leaves it open. */
  readonly origin?: Origin;
  /** No API rate limit for the account (benches poll DescribePurgeTasks). */
  readonly unlimited?: boolean;
  /**
   * Nodes and agents connect to the control plane directly, not through their Relay (which then cannot
   * cut them off): benches, where the relay's hop through the bench's own busy event loop would be timed.
   */
  readonly direct?: boolean;
}

interface Slot {
  readonly id: string;
  /** The node reaches the control plane through this (see Relay). */
  readonly link: Relay;
  proc: ChildProcess | undefined;
}

interface NodeSlot extends Slot {
  readonly port: number;
}

/**
 * A control plane (`edgepurge serve`) and N edge nodes (`edgepurge edge`) as child processes, on free
 * ports, sharing one config file in a temp dir, in front of an Origin running in the test process.
 */
export class Fleet {
  readonly dir: string;
  readonly configPath: string;
  readonly origin: Origin;
  readonly leaseMs: number;
  readonly taskTimeoutMs: number;
  cpPort = 0;
  readonly nodes: NodeSlot[] = [];
  readonly agents: Slot[] = [];
  readonly #ownsOrigin: boolean;
  /** Every line the children printed, prefixed with who printed it (shown when a wait fails). */
  readonly log: string[] = [];
  #cp: ChildProcess | undefined;
  #closed: Promise<void> | undefined;
  #teo: SdkClient | undefined;
  #cdn: SdkClient | undefined;

  private constructor(dir: string, origin: Origin, o: FleetOptions) {
    this.dir = dir;
    this.#ownsOrigin = o.origin === undefined;
    this.configPath = join(dir, 'edgepurge.yaml');
    this.origin = origin;
    this.leaseMs = o.leaseMs ?? 2000;
    this.taskTimeoutMs = o.taskTimeoutMs ?? 10_000;
  }

  /** Starts origin, control plane and nodes; cleanup is registered on `t` before anything can fail. */
  static async start(t: { after(fn: () => unknown): void }, o: FleetOptions = {}): Promise<Fleet> {
    const dir = mkdtempSync(join(tmpdir(), 'edgepurge-e2e-'));
    const fleet = new Fleet(dir, o.origin ?? new Origin(), o);
    t.after(() => fleet.close());
    if (o.origin === undefined) await fleet.origin.start();
    fleet.cpPort = await freePort();
    for (let i = 1; i <= (o.nodeCount ?? 3); i++) {
      fleet.nodes.push({ id: `edge-${i}`, port: await freePort(), link: await new Relay(fleet.cpPort).start(), proc: undefined });
    }
    for (const a of o.agents ?? []) fleet.agents.push({ id: a.id, link: await new Relay(fleet.cpPort).start(), proc: undefined });
    const nodeEntry = (n: Slot) => ({ id: n.id, token: `token-${n.id}-0123456789abcdef`, controlPlane: `http://127.0.0.1:${o.direct ? fleet.cpPort : n.link.port}` });
    const base = baseConfig(fleet.origin.url);
    const config = () => ({
      ...base,
      ...(o.unlimited ? { accounts: base.accounts?.map((a) => ({ ...a, rateLimit: false as const })) } : {}),
      server: { listen: `127.0.0.1:${fleet.cpPort}` },
      store: { driver: 'sqlite', path: fleet.storePath },
      fanout: { leaseMs: fleet.leaseMs, taskTimeoutMs: fleet.taskTimeoutMs },
      nodes: [
        ...fleet.nodes.map((n) => ({ ...nodeEntry(n), listen: `127.0.0.1:${n.port}` })),
        ...(o.agents ?? []).map((a, i) => ({ ...nodeEntry(fleet.agents[i]!), driver: a.driver, stateFile: fleet.stateFile(a.id) })),
      ],
    });
    for (let attempt = 1; ; attempt++) {
      writeFileSync(fleet.configPath, stringify(config()), { mode: 0o600 });
      try {
        await fleet.startControlPlane();
        break;
      } catch (e) {
        // freePort's port was free when asked, but another test's socket can take it before the control
        // plane binds it (tests run two files at once): take another one.
        if (attempt >= 3 || !String(e).includes('EADDRINUSE')) throw e;
        fleet.cpPort = await freePort();
        for (const slot of [...fleet.nodes, ...fleet.agents]) slot.link.target = fleet.cpPort;
      }
    }
    await Promise.all(fleet.nodes.map((n) => fleet.startNode(n.id)));
    for (const a of fleet.agents) await fleet.startAgent(a.id);
    return fleet;
  }

  /** Where agent `id` keeps its applied seq. */
  stateFile(id: string): string {
    return join(this.dir, `${id}.seq`);
  }

  /** The control plane's SQLite file. */
  get storePath(): string {
    return join(this.dir, 'edgepurge.db');
  }

  /** Spawns `edgepurge agent --node ID` and waits until it says it runs (its driver checked the cache). */
  async startAgent(id: string): Promise<void> {
    this.#slot(id).proc = await this.#spawn(id, ['agent', '--config', this.configPath, '--node', id], /^EdgePurge agent for node /m);
  }

  /** Spawns `edgepurge serve` (again, after stopControlPlane: same config, same store). */
  async startControlPlane(): Promise<void> {
    this.#cp = await this.#spawn('cp', ['serve', '--config', this.configPath]);
  }

  /** SIGTERM: the control plane drains and exits. */
  async stopControlPlane(): Promise<void> {
    const p = this.#cp;
    this.#cp = undefined;
    if (p) await stop(p);
  }

  get endpoint(): string {
    return `127.0.0.1:${this.cpPort}`;
  }

  get url(): string {
    return `http://${this.endpoint}`;
  }

  get teo(): SdkClient {
    return (this.#teo ??= teoClient(this.endpoint, ACME.secretId, ACME.secretKey));
  }

  get cdn(): SdkClient {
    return (this.#cdn ??= cdnClient(this.endpoint, ACME.secretId, ACME.secretKey));
  }

  node(id: string): NodeSlot {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  #slot(id: string): Slot {
    const n = this.nodes.find((x) => x.id === id) ?? this.agents.find((x) => x.id === id);
    if (!n) throw new Error(`no node or agent ${id}`);
    return n;
  }

  /**
   * Spawns `edgepurge edge --node ID`; waits until it listens, and unless `serving: false`, until it
   * serves cache hits (its lease is fresh).
   */
  async startNode(id: string, o: { serving?: boolean } = {}): Promise<void> {
    const n = this.node(id);
    n.proc = await this.#spawn(id, ['edge', '--config', this.configPath, '--node', id]);
    if (o.serving !== false) await this.waitServing(id);
  }

  /** Waits until `id` answers a HIT for a path of its own: connected, caught up, lease fresh. */
  async waitServing(id: string, ms = 10_000): Promise<void> {
    const port = this.node(id).port;
    await this.until(`${id} to serve hits`, async () => (await edgeGet(port, ACME.host, `/__ready/${id}`)).xcache === 'HIT', ms);
  }

  get(id: string, host: string, path: string, headers: Record<string, string> = {}): Promise<EdgeResponse> {
    return edgeGet(this.node(id).port, host, path, headers);
  }

  /** Sends `signal` to a node or agent; for SIGKILL/SIGTERM waits until the process is gone. */
  async signal(id: string, signal: NodeJS.Signals): Promise<void> {
    const p = this.#slot(id).proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) throw new Error(`${id} is not running`);
    if (signal !== 'SIGKILL' && signal !== 'SIGTERM') {
      p.kill(signal);
      return;
    }
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    await exited;
    this.#slot(id).proc = undefined;
  }

  /** The job as GET /admin/v1/jobs/JOBID shows it (HTTP Basic SecretId:SecretKey). */
  adminJob(jobId: string): Promise<AdminJobView> {
    return adminJob(this.url, jobId);
  }

  /** Waits until every task of the job has left `processing`; returns the job's view at that moment. */
  async settled(jobId: string, ms = 10_000): Promise<AdminJobView> {
    return this.until(`job ${jobId} to settle`, async () => {
      const job = await this.adminJob(jobId);
      return job.Tasks.length > 0 && job.Tasks.every((t) => t.Status !== 'processing') ? job : undefined;
    }, ms);
  }

  /** Runs `edgepurge ARGS` against the control plane with the account's credentials. */
  cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return runCli(this.url, args);
  }

  /** until(), with the children's last output in the error. */
  async until<T>(what: string, cond: () => Promise<T> | T, ms = 10_000): Promise<NonNullable<T>> {
    try {
      return await until(what, async () => {
        try {
          return await cond();
        } catch {
          return undefined;
        }
      }, ms);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- child output ---\n${this.log.slice(-60).join('\n')}`);
    }
  }

  /** Resolves once the child printed `ready` (default: the " on http://host:port" of serve and edge). */
  #spawn(name: string, args: string[], ready = / on http:\/\/[^\s]+:\d+/): Promise<ChildProcess> {
    // With the V8 flags serve/edge/agent run with, given here rather than by main.ts's re-exec (node-flags.ts).
    const child = spawn(process.execPath, [...NODE_FLAGS, MAIN, ...args], { env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const record = (stream: NodeJS.ReadableStream, tag: string) => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => {
        buf += c;
        let nl: number;
        while ((nl = buf.indexOf('\n')) !== -1) {
          const line = `[${name} ${tag}] ${buf.slice(0, nl)}`;
          buf = buf.slice(nl + 1);
          this.log.push(line);
          if (process.env.E2E_VERBOSE) process.stderr.write(`${line}\n`);
        }
      });
    };
    record(child.stdout!, 'out');
    record(child.stderr!, 'err');
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null, sig: string | null) =>
        reject(new Error(`${name} exited (${code ?? sig}) before it listened:\n${this.log.filter((l) => l.startsWith(`[${name} `)).join('\n')}`));
      child.once('exit', onExit);
      child.once('error', reject);
      const onData = (c: Buffer | string) => {
        if (ready.test(String(c))) {
          child.stdout!.off('data', onData);
          child.off('exit', onExit);
          resolve(child);
        }
      };
      child.stdout!.on('data', onData);
    });
  }

  /** Stops every child (frozen ones are killed outright), closes the origin, removes the temp dir. */
  close(): Promise<void> {
    return (this.#closed ??= (async () => {
      const procs = [...this.nodes.map((n) => n.proc), ...this.agents.map((n) => n.proc), this.#cp].filter((p): p is ChildProcess => p !== undefined);
      await Promise.all(procs.map((p) => stop(p)));
      await Promise.all([...this.nodes, ...this.agents].map((n) => n.link.close()));
      if (this.#ownsOrigin) await this.origin.close();
      rmSync(this.dir, { recursive: true, force: true });
    })());
  }
}

/**
 * One fleet for all tests of a file: started in the file's `before`, stopped in its `after`. (An `after`
 * registered from inside a `before` hook would run as soon as that hook ends.)
 */
export function sharedFleet(o: FleetOptions = {}): () => Fleet {
  let fleet: Fleet | undefined;
  const cleanups: Array<() => unknown> = [];
  after(async () => {
    for (const c of cleanups) await c();
  });
  before(async () => {
    fleet = await Fleet.start({ after: (fn) => void cleanups.push(fn) }, o);
  });
  return () => {
    if (!fleet) throw new Error('the fleet did not start');
    return fleet;
  };
}

/** SIGCONT (in case it is frozen), SIGTERM, then SIGKILL after 3 s. */
async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGCONT');
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(t);
}

/** ACME's job as GET /admin/v1/jobs/JOBID shows it (HTTP Basic SecretId:SecretKey) on the control plane at `url`. */
export async function adminJob(url: string, jobId: string): Promise<AdminJobView> {
  const auth = Buffer.from(`${ACME.secretId}:${ACME.secretKey}`).toString('base64');
  const res = await fetch(`${url}/admin/v1/jobs/${jobId}`, { headers: { Authorization: `Basic ${auth}` } });
  if (res.status !== 200) throw new Error(`admin endpoint answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as AdminJobView;
}

/** Runs `edgepurge ARGS` in a child process against the control plane at `url`, with ACME's credentials. */
export function runCli(url: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args, '--endpoint', url],
      { env: { ...childEnv(), TENCENTCLOUD_SECRET_ID: ACME.secretId, TENCENTCLOUD_SECRET_KEY: ACME.secretKey }, timeout: 20_000 },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });
}

export function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, EDGEPURGE_LOG_LEVEL: process.env.EDGEPURGE_LOG_LEVEL ?? 'warn' };
  // The SDKs and fetch must reach 127.0.0.1 directly.
  for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'NODE_TEST_CONTEXT', 'NODE_OPTIONS']) delete env[k];
  return env;
}

export const PURGE_TYPES = ['purge_url', 'purge_prefix', 'purge_host', 'purge_all', 'purge_cache_tag'] as const;
export const PURGE_METHODS = ['invalidate', 'delete'] as const;
export type PurgeType = (typeof PURGE_TYPES)[number];
export type PurgeMethod = (typeof PURGE_METHODS)[number];
type Obj = readonly [host: string, path: string];

/** What one purge (CreatePurgeTask params) names, what it must reach, and what must stay cached; tags set on `origin`. */
export function purgeCase(origin: Origin, type: PurgeType, method: PurgeMethod): { params: Record<string, unknown>; purged: Obj[]; kept: Obj[] } {
  const base = `/${type}-${method}`;
  switch (type) {
    case 'purge_url':
      return { params: { Targets: [`http://${ACME.host}${base}/a.txt?x=1`] }, purged: [[ACME.host, `${base}/a.txt?x=1`]], kept: [[ACME.host, `${base}/a.txt?x=2`], [ACME.host, `${base}/b.txt`]] };
    case 'purge_prefix':
      return {
        params: { Targets: [`http://${ACME.host}${base}/dir/`] },
        purged: [[ACME.host, `${base}/dir/a.txt`], [ACME.host, `${base}/dir/sub/b.txt`]],
        kept: [[ACME.host, `${base}/other/c.txt`], [ACME.host, `${base}/dirx.txt`], [ACME.host2, `${base}/dir/a.txt`]],
      };
    case 'purge_host':
      return { params: { Targets: [ACME.host2] }, purged: [[ACME.host2, `${base}/a.txt`], [ACME.host2, `${base}/b/c.txt`]], kept: [[ACME.host, `${base}/a.txt`]] };
    case 'purge_all':
      // The zone's two domains; the account's other zone keeps its objects.
      return { params: {}, purged: [[ACME.host, `${base}/a.txt`], [ACME.host2, `${base}/b.txt`]], kept: [[ACME.host3, `${base}/c.txt`]] };
    case 'purge_cache_tag':
      origin.setTags(ACME.host, `${base}/a.txt`, 'blue,red');
      origin.setTags(ACME.host, `${base}/b.txt`, 'red, blue');
      origin.setTags(ACME.host, `${base}/c.txt`, 'green');
      // Tagged blue too, but on a domain CacheTag.Domains does not name.
      origin.setTags(ACME.host2, `${base}/d.txt`, 'blue');
      return {
        params: { Targets: ['blue'], CacheTag: { Domains: [ACME.host] } },
        purged: [[ACME.host, `${base}/a.txt`], [ACME.host, `${base}/b.txt`]],
        kept: [[ACME.host, `${base}/c.txt`], [ACME.host2, `${base}/d.txt`], [ACME.host, `${base}/untagged.txt`]],
      };
  }
}
