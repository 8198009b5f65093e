// The benchmarks' child processes — a control plane, a set of edge agents, one edge node — so that what
// is measured never shares an event loop with the load or with the other side of the fan-out.
// The parent talks to them over the fork IPC channel; this file is also the children's entry point.
import { fork, type ChildProcess } from 'node:child_process';
import http, { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openSync, readFileSync, writeSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { startControlPlane, type RunningControlPlane } from '../src/cli/serve.ts';
import { parseConfig } from '../src/config/load.ts';
import type { ConfigInput } from '../src/config/schema.ts';
import { EdgeProxy, type EdgeDomain } from '../src/edge/edge-proxy.ts';
import { EdgeAgent } from '../src/fanout/edge-agent.ts';
import { AckChannel } from '../src/fanout/ack-channel.ts';
import type { StreamLine } from '../src/fanout/wire.ts';
import { systemClock } from '../src/shared/clock.ts';
import { createLogger, linesPerTurn, silentLogger } from '../src/shared/logger.ts';
import { missingNodeFlags } from '../src/cli/node-flags.ts';
import { pinToCpu } from './load.ts';
import { processCpuSeconds } from './proc-cpu.ts';

export { processCpuSeconds, treeCpuSeconds } from './proc-cpu.ts';

export interface AgentNode {
  readonly id: string;
  readonly token: string;
}

type Init =
  | {
      readonly role: 'control-plane';
      readonly config: ConfigInput;
      /** Log (access log included) at level info into this file; default: silent. */
      readonly logFile?: string;
      /** Tell the parent (IPC `{settled: n}`, BenchChild.onSettled) whenever the hub settles tasks. */
      readonly reportSettled?: boolean;
    }
  | { readonly role: 'agents'; readonly controlPlane: string; readonly nodes: readonly AgentNode[]; readonly domains: readonly EdgeDomain[] }
  | { readonly role: 'edge'; readonly domains: readonly EdgeDomain[] }
  /** A bare node:http server answering every request with one fixed JSON body: the yardstick of issue 11. */
  | { readonly role: 'bare-http' }
  /** Lightweight simulated nodes (fleet-fanout-bench): many streams in one process, each acking every entry at once. */
  | { readonly role: 'sim-nodes'; readonly controlPlane: string; readonly nodes: readonly AgentNode[]; readonly ackVia?: AckVia };

/** How simulated nodes ack: over one ack channel each (GET /edge/v1/acks upgraded), or a POST /edge/v1/ack per ack. */
export type AckVia = 'channel' | 'post';

interface Ready {
  readonly port?: number;
  /** Control plane: ms from start() until start-up work was done (the loop kept time again). */
  readonly startupMs?: number;
  /** Control plane: tasks the hub settled meanwhile (e.g. seeded `processing` tasks). */
  readonly settledAtStartup?: number;
}

/**
 * The control plane's event-loop delay since the last reset, ms: how late its 5 ms sampling timer
 * fired. perf_hooks.monitorEventLoopDelay records the whole interval between two firings (an idle
 * loop shows 5 ms), so the sampling interval is taken off.
 */
export interface LoopDelay {
  readonly samples: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/** Agents: lease watch since start (each node checked every 20 ms). */
export interface LeaseWatch {
  /** Times a node's lease was seen to run out after it had been fresh. */
  readonly lapses: number;
  /** Least time a node's lease had left when checked, ms (how close it came to lapsing). */
  readonly minHeadroomMs: number;
  readonly checks: number;
}

/** Agents: every node has applied (`applied`) or acked with an answer (`acked`) the entry `seq`. */
interface Watched {
  readonly seq: number;
  readonly what: 'applied' | 'acked';
}

interface Reply {
  readonly ready?: Ready;
  readonly applied?: readonly number[];
  readonly watched?: Watched;
  readonly loop?: LoopDelay;
  readonly leases?: LeaseWatch;
  readonly error?: string;
}

/** A benchmark child process: started with an init message, answers `ask()` requests, stopped with `stop()`. */
export class BenchChild {
  readonly process: ChildProcess;
  readonly port: number;
  readonly ready: Ready;
  #exited: Promise<void>;

  private constructor(child: ChildProcess, ready: Ready, exited: Promise<void>) {
    this.process = child;
    this.port = ready.port ?? 0;
    this.ready = ready;
    this.#exited = exited;
  }

  /** Forks a child for `init`, pins it to `cpu` when given, and resolves once it is ready. */
  static async start(init: Init, cpu?: number, execArgv: readonly string[] = []): Promise<BenchChild> {
    // The flags `edgepurge serve|edge|agent` run with (src/cli/node-flags.ts), unless the caller or
    // NODE_OPTIONS sets its own.
    const flags = [...missingNodeFlags(execArgv, process.env.NODE_OPTIONS), ...execArgv];
    const child = fork(import.meta.filename, [], { execArgv: flags, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    if (cpu !== undefined) pinToCpu(child.pid, cpu);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const ready = await new Promise<Reply>((resolve, reject) => {
      child.once('message', (m: Reply) => (m.error !== undefined ? reject(new Error(`${init.role} child: ${m.error}`)) : resolve(m)));
      child.once('exit', (code) => reject(new Error(`${init.role} child exited with code ${code} before it was ready`)));
      child.send(init);
    });
    return new BenchChild(child, ready.ready ?? {}, exited);
  }

  /** Agents: the applied seq of every node. */
  applied(): Promise<readonly number[]> {
    return this.#ask('applied').then((m) => m.applied ?? []);
  }

  /**
   * Agents: `applied` resolves when every node has applied the entry `seq` (its cache's applied seq reached
   * it), `acked` when every node's ack up to it was answered (durable at its control plane); each with this
   * process's performance.now() when the news arrived. Told by the child as it happens: nothing polls.
   */
  watch(seq: number): { applied: Promise<number>; acked: Promise<number> } {
    const at = (what: Watched['what']) =>
      new Promise<number>((resolve) => {
        const heard = (m: Reply) => {
          if (m.watched?.seq !== seq || m.watched.what !== what) return;
          const now = performance.now();
          this.process.off('message', heard);
          resolve(now);
        };
        this.process.on('message', heard);
      });
    const out = { applied: at('applied'), acked: at('acked') };
    this.process.send({ ask: 'watch', seq });
    return out;
  }

  /** Control plane started with `reportSettled`: `listener` hears of every batch of tasks its hub settles. */
  onSettled(listener: (tasks: number) => void): void {
    this.process.on('message', (m: { settled?: number }) => {
      if (m.settled !== undefined) listener(m.settled);
    });
  }

  /** Control plane: its event-loop delay since the last call with `reset` (then starts over). */
  loopDelay(reset = false): Promise<LoopDelay | undefined> {
    return this.#ask(reset ? 'loop-reset' : 'loop').then((m) => m.loop);
  }

  /** Agents: lease lapses and the least headroom seen since they started. */
  leases(): Promise<LeaseWatch | undefined> {
    return this.#ask('leases').then((m) => m.leases);
  }

  #ask(ask: string): Promise<Reply> {
    return new Promise((resolve) => {
      // Unasked-for notices (`settled`, `watched`) are not the answer.
      const answer = (m: Reply & { settled?: number }) => {
        if (m.settled !== undefined || m.watched !== undefined) return;
        this.process.off('message', answer);
        resolve(m);
      };
      this.process.on('message', answer);
      this.process.send({ ask });
    });
  }

  /** Peak resident set size of the child so far (VmHWM), in bytes; NaN where /proc is unavailable. */
  peakRss(): number {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.process.pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : Number.NaN;
    } catch {
      return Number.NaN;
    }
  }

  /** CPU time the child has used so far (user + system, all threads), in seconds; NaN without /proc. */
  cpuSeconds(): number {
    return processCpuSeconds(this.process.pid);
  }

  /** Asks the child to close what it runs and exit; kills it after 15 s. */
  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const kill = setTimeout(() => this.process.kill('SIGKILL'), 15_000);
    this.process.send({ ask: 'stop' });
    await this.#exited;
    clearTimeout(kill);
  }
}

// ---- child side ----

/** Resolves once three 100 ms timers in a row fire less than 20 ms late: start-up work is over. */
async function quietLoop(): Promise<void> {
  for (let onTime = 0; onTime < 3; ) {
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 100));
    onTime = performance.now() - t0 < 120 ? onTime + 1 : 0;
  }
}

interface Running extends Ready {
  close(): Promise<void>;
  applied?(): number[];
  loop?(reset: boolean): LoopDelay;
  leases?(): LeaseWatch;
  watch?(seq: number, tell: (w: Watched) => void): void;
}

async function runChild(init: Init): Promise<Running> {
  switch (init.role) {
    case 'control-plane': {
      const t0 = performance.now();
      const fd = init.logFile === undefined ? undefined : openSync(init.logFile, 'a');
      // As `edgepurge start` writes its log to stderr: a turn's lines in one write.
      const logger = fd === undefined ? silentLogger : createLogger('info', linesPerTurn((l) => writeSync(fd, l)));
      const running: RunningControlPlane = await startControlPlane(parseConfig(init.config), logger, '127.0.0.1:0');
      // The hub settles what the store holds as `processing` when it starts (store-bench seeds 2 % of
      // its tasks so): measure from a server that is done with that, and say how long it took.
      let settled = 0;
      const off = running.controlPlane.hub.onSettled((tasks) => (settled += tasks.length));
      await quietLoop();
      off();
      if (init.reportSettled) running.controlPlane.hub.onSettled((tasks) => process.send?.({ settled: tasks.length }));
      // Sampled every 5 ms: a stall shows as one sample of its length.
      const h = monitorEventLoopDelay({ resolution: 5 });
      h.enable();
      const late = (ns: number): number => Math.max(0, ns / 1e6 - 5);
      const loop = (reset: boolean): LoopDelay => {
        const out = { samples: h.count, p50Ms: late(h.percentile(50)), p99Ms: late(h.percentile(99)), maxMs: late(h.max) };
        if (reset) h.reset();
        return out;
      };
      // Less the 300 ms the three on-time timers take at best.
      return { port: running.port, startupMs: performance.now() - t0 - 300, settledAtStartup: settled, loop, close: () => running.close() };
    }
    case 'agents': {
      // A real EdgeProxy per node (its cache applies the entries), not listening: only the purge path runs.
      const proxies = init.nodes.map(
        () => new EdgeProxy({ listen: { host: '127.0.0.1', port: 0 }, domains: init.domains, maxBytes: 64 * 2 ** 20, clock: systemClock, leaseMs: 10_000 }),
      );
      const agents = init.nodes.map(
        (n, i) => new EdgeAgent({ controlPlane: init.controlPlane, nodeId: n.id, token: n.token, target: proxies[i]!, clock: systemClock, logger: silentLogger }),
      );
      // watch(): told the moment the last node applies an entry, from inside the apply (no polling).
      const watches = new Set<{ seq: number; done: () => void }>();
      const moved = () => {
        for (const w of watches) {
          if (proxies.every((p) => p.appliedSeq >= w.seq)) {
            watches.delete(w);
            w.done();
          }
        }
      };
      for (const p of proxies) {
        const [apply, advanceTo, dropAll] = [p.apply.bind(p), p.advanceTo.bind(p), p.dropAll.bind(p)];
        p.apply = (cmd) => {
          const r = apply(cmd);
          if (watches.size) moved();
          return r;
        };
        p.advanceTo = (seq) => {
          advanceTo(seq);
          if (watches.size) moved();
        };
        p.dropAll = (seq) => {
          const r = dropAll(seq);
          if (watches.size) moved();
          return r;
        };
      }
      for (const a of agents) a.start();
      // Every node has said hello and acked: the hub counts it (a node that never acked is fenced).
      await Promise.all(agents.map((a) => a.waitForAck(0)));
      // From here on every node should hold a fresh lease at all times (DESIGN invariant 4).
      const watch = { lapses: 0, minHeadroomMs: Number.POSITIVE_INFINITY, checks: 0 };
      const fresh = proxies.map(() => true);
      const watcher = setInterval(() => {
        proxies.forEach((p, i) => {
          const headroom = p.stats().leaseUntil - systemClock.now();
          watch.checks++;
          watch.minHeadroomMs = Math.min(watch.minHeadroomMs, headroom);
          if (fresh[i] && headroom < 0) watch.lapses++;
          fresh[i] = headroom >= 0;
        });
      }, 20);
      return {
        applied: () => proxies.map((p) => p.appliedSeq),
        leases: () => ({ ...watch }),
        watch: (seq, tell) => {
          watches.add({ seq, done: () => tell({ seq, what: 'applied' }) });
          moved();
          void Promise.all(agents.map((a) => a.waitForAck(seq))).then(() => tell({ seq, what: 'acked' }));
        },
        close: async () => {
          clearInterval(watcher);
          await Promise.all(agents.map((a) => a.close()));
          await Promise.all(proxies.map((p) => p.close()));
        },
      };
    }
    case 'bare-http': {
      const body = Buffer.from('{"Response":{"JobId":"20260101000000000001","FailedList":[],"RequestId":"00000000-0000-0000-0000-000000000000"}}');
      const server = createServer((req, res) => {
        // The body is read, as the control plane must, before the answer.
        req.resume();
        req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length }).end(body));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      return { port, close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }) };
    }
    case 'sim-nodes': {
      const nodes = init.nodes.map((n) => new SimNode(init.controlPlane, n, init.ackVia ?? 'channel'));
      await Promise.all(nodes.map((n) => n.start()));
      return {
        applied: () => nodes.map((n) => n.acked),
        close: async () => {
          for (const n of nodes) n.close();
        },
      };
    }
    case 'edge': {
      const proxy = new EdgeProxy({
        listen: { host: '127.0.0.1', port: 0 },
        domains: init.domains,
        maxBytes: 256 * 2 ** 20,
        clock: systemClock,
        leaseMs: 3_600_000,
      });
      const { port } = await proxy.start();
      // No control plane here: a long lease stands in for a connected agent (an idle agent costs nothing per hit).
      proxy.renewLease();
      return { port, close: () => proxy.close() };
    }
  }
}

/**
 * One simulated node: reads its stream and acks every entry (with a report, as a real agent does) at
 * once, one ack in flight at a time, over its ack channel (or a POST per ack, as older agents do); costs
 * next to nothing, so a bench measures the control plane.
 */
class SimNode {
  acked = 0;
  #seen = 0;
  #reports: Array<{ seq: number; taskId: number; executedAs: 'invalidate' | 'delete' }> = [];
  #inFlight = false;
  #req: http.ClientRequest | undefined;
  #closed = false;
  readonly #url: URL;
  readonly #headers: Record<string, string>;
  readonly #via: AckVia;
  #channel: Promise<AckChannel> | undefined;
  static readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  constructor(controlPlane: string, n: AgentNode, via: AckVia) {
    this.#via = via;
    this.#url = new URL(controlPlane);
    this.#headers = { Authorization: `Bearer ${n.token}`, 'X-Edge-Node': n.id };
  }

  /** Resolves after the stream said hello and the first ack was answered (the hub then counts the node). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#req = http.get({ host: this.#url.hostname, port: this.#url.port, path: '/edge/v1/stream?after=-1', headers: this.#headers }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`stream: HTTP ${res.statusCode}`));
        res.setEncoding('utf8');
        let buf = '';
        let first = true;
        res.on('data', (chunk: string) => {
          buf += chunk;
          for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
            const line = JSON.parse(buf.slice(0, nl)) as StreamLine;
            buf = buf.slice(nl + 1);
            if (line.t === 'hello') this.#seen = Math.max(this.#seen, line.lastSeq);
            else if (line.t === 'entry') {
              this.#seen = Math.max(this.#seen, line.e.seq);
              if (line.e.type !== 'prefetch_url') this.#reports.push({ seq: line.e.seq, taskId: line.e.taskId, executedAs: line.e.method === 'delete' ? 'delete' : 'invalidate' });
            } else if (line.t === 'hb' || line.t === 'reset') this.#seen = Math.max(this.#seen, line.seq);
          }
          if (first) {
            first = false;
            this.#ack(resolve);
          } else this.#ack();
        });
        res.on('error', () => {});
      });
      this.#req.on('error', (e) => (this.#closed ? undefined : reject(e)));
    });
  }

  #ack(done?: () => void): void {
    if (this.#inFlight || this.#closed) return;
    if (done === undefined && this.#seen <= this.acked && this.#reports.length === 0) return;
    this.#inFlight = true;
    const seq = this.#seen;
    const reports = this.#reports.splice(0);
    const body = { seq, driver: 'builtin', ...(reports.length ? { reports } : {}) } as const;
    const answered = (ok: boolean) => {
      this.#inFlight = false;
      if (ok) this.acked = Math.max(this.acked, seq);
      done?.();
      this.#ack();
    };
    if (this.#via === 'channel') {
      this.#channel ??= AckChannel.open(this.#url.href, this.#headers);
      this.#channel
        .then((c) => c.send(body))
        .then(
          () => answered(true),
          () => {
            this.#inFlight = false;
            this.#channel = undefined;
          },
        );
      return;
    }
    const req = http.request(
      { host: this.#url.hostname, port: this.#url.port, path: '/edge/v1/ack', method: 'POST', agent: SimNode.#agent, headers: { ...this.#headers, 'Content-Type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => answered(res.statusCode === 200));
      },
    );
    req.on('error', () => (this.#inFlight = false));
    req.end(JSON.stringify(body));
  }

  close(): void {
    this.#closed = true;
    this.#req?.destroy();
    void this.#channel?.then((c) => c.close(), () => {});
  }
}

if (import.meta.main && process.send) {
  const send = (m: Reply | object, then: () => void = () => {}) => process.send?.(m, then);
  process.once('message', (init: Init) => {
    runChild(init).then(
      (running) => {
        process.on('message', (m: { ask?: string }) => {
          if (m.ask === 'applied') send({ applied: running.applied?.() ?? [] });
          if (m.ask === 'loop' || m.ask === 'loop-reset') send({ loop: running.loop?.(m.ask === 'loop-reset') });
          if (m.ask === 'leases') send({ leases: running.leases?.() });
          if (m.ask === 'watch') running.watch?.((m as { seq: number }).seq, (watched) => send({ watched }));
          if (m.ask === 'stop') void running.close().finally(() => process.exit(0));
        });
        send({ ready: { port: running.port, startupMs: running.startupMs, settledAtStartup: running.settledAtStartup } });
      },
      (e: unknown) => send({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }, () => process.exit(1)),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
