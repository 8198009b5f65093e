// Real caches for fleet tests and benches of `edgepurge agent`: a varnishd running the operator VCL with
// edgepurge.vcl, or an nginx with the shipped snippet, in front of a given origin port. Each can be
// stopped, started again on the same address, and frozen (SIGSTOP of its whole process tree).
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { nginxMissing, startNginx, type NginxProcess } from './nginx-harness.ts';
import { operatorVcl, TEST_VARNISHD_ARGS } from './varnish-harness.ts';
import { startVarnishd, varnishdMissing, type Varnishd } from './varnishd.ts';

export type CacheKind = 'varnish' | 'nginx';

export interface CacheGet {
  readonly status: number;
  readonly body: string;
  /** Served from the cache without asking the origin (Varnish X-Cache, nginx $upstream_cache_status). */
  readonly hit: boolean;
  readonly xcache: string;
}

export interface CacheNode {
  readonly kind: CacheKind;
  /** The node's `driver:` entry for the config (paths absolute). */
  readonly driver: Readonly<Record<string, unknown>>;
  /** GET through the cache with this Host; for nginx it resolves once the cache file is in place. */
  get(host: string, path: string): Promise<CacheGet>;
  /** The body of a GET through the cache, without waiting for nginx to store it (benches poll with it). */
  peek(host: string, path: string): Promise<string>;
  /** Stops the cache process (Varnish loses its objects, token and lease; nginx keeps its files). */
  stop(): Promise<void>;
  /** Starts it again on the same address; `empty` also removes nginx's cache files first. */
  start(o?: { empty?: boolean }): Promise<void>;
  /** SIGSTOP / SIGCONT to every process of the cache (manager/master and children). */
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

/** Why a cache of this kind cannot run here, or undefined. */
export const cacheMissing = (kind: CacheKind): string | undefined => (kind === 'varnish' ? varnishdMissing() : nginxMissing());

export async function startCacheNode(kind: CacheKind, originPort: number): Promise<CacheNode> {
  return kind === 'varnish' ? varnishNode(await startVarnishd({ vcl: operatorVcl(originPort), args: TEST_VARNISHD_ARGS })) : nginxNode(await startNginx({ originPort }));
}

function varnishNode(v: Varnishd): CacheNode {
  const tree = () => processTree(v.pid());
  return {
    kind: 'varnish',
    driver: { type: 'varnish', url: v.url, admin: v.admin, secretFile: v.secretFile },
    async get(host, path) {
      const r = await plainGet(v.port, host, path);
      const xcache = String(r.headers['x-cache'] ?? '');
      return { status: r.status, body: r.body, hit: xcache === 'HIT', xcache };
    },
    peek: async (host, path) => (await plainGet(v.port, host, path)).body,
    stop: () => v.stop(),
    start: () => v.start(),
    freeze: () => signalAll(tree(), 'SIGSTOP'),
    thaw: () => signalAll(tree(), 'SIGCONT'),
    close: () => v.close(),
  };
}

function nginxNode(n: NginxProcess): CacheNode {
  const tree = () => processTree(Number(readFileSync(join(n.prefix, 'nginx.pid'), 'utf8').trim()));
  return {
    kind: 'nginx',
    driver: { type: 'nginx', url: `http://127.0.0.1:${n.port}`, purgeUrl: `http://127.0.0.1:${n.purgePort}`, cacheDir: n.cacheDir, levels: '1:2' },
    async get(host, path) {
      const r = await n.get(host, path);
      const xcache = r.xcache ?? '';
      return { status: r.status, body: r.body, hit: xcache === 'HIT', xcache };
    },
    peek: async (host, path) => (await plainGet(n.port, host, path)).body,
    stop: () => n.stop(),
    async start(o = {}) {
      if (o.empty) for (const e of readdirSync(n.cacheDir)) rmSync(join(n.cacheDir, e), { recursive: true, force: true });
      await n.start();
    },
    freeze: () => signalAll(tree(), 'SIGSTOP'),
    thaw: () => signalAll(tree(), 'SIGCONT'),
    close: () => n.remove(),
  };
}

/** `pid` and its direct children (varnishd's cache process, nginx's workers), from /proc. */
function processTree(pid: number | undefined): number[] {
  if (pid === undefined || !Number.isInteger(pid)) throw new Error('the cache is not running');
  const out = [pid];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const p of pids) process.kill(p, signal);
}

/** One GET without keep-alive (a frozen cache must not hold our sockets), bounded at 10 s. */
function plainGet(port: number, host: string, path: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host }, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${host}${path} on :${port} timed out`)));
    req.on('error', reject);
  });
}
