// A real nginx (Debian's, with ngx_cache_purge) in a temp prefix, proxying and caching a recording
// origin on port 0, with the shipped snippet included and an NginxDriver started against it. Shaped
// like the driver-conformance harness: { driver, get, origin, restartCache, close }.
import { freePort } from '../e2e/helpers.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { cacheFileDirs, cacheFileName } from '../../src/drivers/nginx/cache-file.ts';
import { NginxDriver, type NginxDriverOptions } from '../../src/drivers/nginx/nginx-driver.ts';
import { nginxSnippet, type SnippetOptions } from '../../src/drivers/nginx/nginx-snippet.ts';
import { startConformanceOrigin, type DriverHarness } from './driver-conformance.ts';

export const NGINX_BIN = '/usr/sbin/nginx';
export const PURGE_MODULE = '/usr/lib/nginx/modules/ngx_http_cache_purge_module.so';

/**
 * Why nginx tests cannot run here, or undefined. Under CI=true a missing nginx is a failure (.ci/run
 * installs it), elsewhere the tests are skipped with this reason.
 */
export function nginxMissing(): string | undefined {
  if (!existsSync(NGINX_BIN)) return `${NGINX_BIN} not found: apt-get install nginx libnginx-mod-http-cache-purge`;
  if (!existsSync(PURGE_MODULE)) return `${PURGE_MODULE} not found: apt-get install libnginx-mod-http-cache-purge`;
  return undefined;
}

export interface SeenRequest {
  readonly method: string;
  readonly host: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/** The origin behind nginx: every path answers, versioned per host+path; ETag/Last-Modified and 304s like a real one. */
export interface RecordingOrigin {
  readonly port: number;
  readonly seen: SeenRequest[];
  /** Requests for host + path (query included). */
  hits(host: string, path: string): SeenRequest[];
  /** Makes host + path answer new content with a new ETag. */
  bump(host: string, path: string): void;
  /** Extra response headers for host + path (Cache-Tag, Vary, …). */
  setHeaders(host: string, path: string, headers: Record<string, string>): void;
  /** Status for host + path (prefetch failures). */
  setStatus(host: string, path: string, status: number): void;
  close(): Promise<void>;
}

export interface GetResult {
  readonly status: number;
  readonly body: string;
  /** nginx's $upstream_cache_status (HIT, MISS, EXPIRED, REVALIDATED, …). */
  readonly xcache?: string;
  /** Origin requests made while answering this request. */
  readonly originHits: number;
  readonly headers: IncomingHttpHeaders;
}

export interface NginxHarness {
  readonly driver: NginxDriver;
  readonly origin: RecordingOrigin;
  readonly nginx: NginxProcess;
  /** GET through nginx with `Host: host`; resolves once nginx has finished with it (cache file written). */
  get(host: string, path: string, headers?: Record<string, string>): Promise<GetResult>;
  /** Restarts nginx on the same ports and cache directory (its keys_zone starts empty, the files stay). */
  restartCache(): Promise<void>;
  /** Driver options to build a second driver against the same nginx. */
  readonly driverOptions: NginxDriverOptions;
  close(): Promise<void>;
}

const key = (host: string, path: string) => `${host}${path}`;

export async function startRecordingOrigin(): Promise<RecordingOrigin> {
  const seen: SeenRequest[] = [];
  const versions = new Map<string, number>();
  const extra = new Map<string, Record<string, string>>();
  const statuses = new Map<string, number>();
  // Last-Modified a minute back so If-Modified-Since is meaningful, fixed per version.
  const born = new Map<string, string>();
  const server = http.createServer((req, res) => {
    const host = (req.headers.host ?? '').toLowerCase();
    const url = req.url ?? '/';
    seen.push({ method: req.method ?? '', host, url, headers: req.headers });
    const k = key(host, url);
    const v = versions.get(k) ?? 1;
    const etag = `"v${v}"`;
    const lm = born.get(`${k}#${v}`) ?? new Date(Date.now() - 60_000).toUTCString();
    born.set(`${k}#${v}`, lm);
    const status = statuses.get(k) ?? 200;
    const headers = { 'cache-control': 'max-age=3600', etag, 'last-modified': lm, ...(extra.get(k) ?? {}) };
    if (status === 200 && req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const vary = (extra.get(k)?.vary ?? '').toLowerCase();
    const variant = vary === '' ? '' : ` ${vary}=${String(req.headers[vary] ?? '')}`;
    res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    if (req.headers['x-delay-body'] !== undefined) {
      // Head now, body 3.5 s later (the in-flight purge test purges in between).
      res.flushHeaders();
      setTimeout(() => res.end(`${k} v${v}${variant}`), 3_500);
      return;
    }
    res.end(`${k} v${v}${variant}`);
  });
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    hits: (host, path) => seen.filter((r) => r.host === host && r.url === path),
    bump: (host, path) => versions.set(key(host, path), (versions.get(key(host, path)) ?? 1) + 1),
    setHeaders: (host, path, h) => extra.set(key(host, path), h),
    setStatus: (host, path, s) => statuses.set(key(host, path), s),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}


export interface NginxProcess {
  readonly prefix: string;
  readonly cacheDir: string;
  readonly port: number;
  readonly purgePort: number;
  /** Where nginx stores the main file of a key (Vary variants live elsewhere). */
  pathOf(cacheKey: string): string;
  /** Waits until the main file of `cacheKey` exists (nginx renames it into place after the response). */
  waitForFile(cacheKey: string, timeoutMs?: number): Promise<string>;
  errorLog(): string;
  /** GET through nginx with `Host: host`; resolves once nginx has logged it (its cache file is in place). */
  get(host: string, path: string, headers?: Record<string, string>): Promise<{ status: number; body: string; headers: IncomingHttpHeaders; xcache?: string }>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** stop() and remove the prefix (cache included). */
  remove(): Promise<void>;
}

export async function startNginx(options: { originPort: number; snippet?: SnippetOptions; location?: string }): Promise<NginxProcess> {
  const prefix = mkdtempSync(join(tmpdir(), 'edgepurge-nginx-'));
  for (const d of ['logs', 'cache', 'tmp']) mkdirSync(join(prefix, d));
  const port = await freePort();
  const purgePort = await freePort();
  const cacheDir = join(prefix, 'cache');
  writeFileSync(join(prefix, 'edgepurge.conf'), nginxSnippet({ ...options.snippet, listen: `127.0.0.1:${purgePort}`, allow: ['127.0.0.1'] }));
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `${t}_temp_path ${prefix}/tmp/${t};`).join(' ');
  writeFileSync(
    join(prefix, 'nginx.conf'),
    `load_module ${PURGE_MODULE};
daemon off;
master_process on;
worker_processes 1;
${process.getuid?.() === 0 ? 'user root root;' : ''}
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log info;
events { worker_connections 1024; }
http {
    log_format harness '$http_x_harness_id $upstream_cache_status';
    access_log ${prefix}/logs/access.log harness;
    ${temp}
    proxy_cache_path ${cacheDir} levels=1:2 keys_zone=edgepurge:16m inactive=1d use_temp_path=off;
    include ${prefix}/edgepurge.conf;
    server {
        listen 127.0.0.1:${port};
        location / {
            proxy_pass http://127.0.0.1:${options.originPort};
            proxy_set_header Host $host;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache edgepurge;
            proxy_cache_revalidate on;
            add_header X-Cache-Status $upstream_cache_status always;
            ${options.location ?? ''}
        }
    }
}
`,
  );
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stderr = '';
  let seq = 0;
  const proc: NginxProcess = {
    prefix,
    cacheDir,
    port,
    purgePort,
    pathOf: (k) => join(cacheDir, ...cacheFileDirs(cacheFileName(k), [1, 2]), cacheFileName(k)),
    async waitForFile(k, timeoutMs = 3_000) {
      const p = proc.pathOf(k);
      const until = Date.now() + timeoutMs;
      while (!existsSync(p)) {
        if (Date.now() > until) throw new Error(`nginx did not store ${k} at ${p} within ${timeoutMs} ms`);
        await sleep(10);
      }
      return p;
    },
    errorLog: () => (existsSync(join(prefix, 'logs/error.log')) ? readFileSync(join(prefix, 'logs/error.log'), 'utf8') : ''),
    async get(host, path, headers = {}) {
      const id = `h${++seq}-${port}`;
      const r = await request(port, path, { ...headers, host, 'x-harness-id': id });
      await waitForLog(prefix, id);
      const xcache = r.headers['x-cache-status'];
      return { ...r, ...(typeof xcache === 'string' ? { xcache } : {}) };
    },
    async start() {
      const c = spawn(NGINX_BIN, ['-p', prefix, '-c', join(prefix, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = c;
      c.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      exited = new Promise((resolve) => c.once('exit', () => resolve()));
      const until = Date.now() + 10_000;
      for (;;) {
        if (c.exitCode !== null) throw new Error(`nginx exited (${c.exitCode}): ${stderr}${proc.errorLog()}`);
        if ((await canConnect(port)) && (await canConnect(purgePort))) return;
        if (Date.now() > until) throw new Error(`nginx did not listen within 10 s: ${stderr}${proc.errorLog()}`);
        await sleep(20);
      }
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
    async remove() {
      await proc.stop();
      rmSync(prefix, { recursive: true, force: true });
    },
  };
  await proc.start();
  return proc;
}

export async function startNginxHarness(
  t: TestContext,
  options: { snippet?: SnippetOptions; driver?: Partial<NginxDriverOptions>; startDriver?: boolean; location?: string } = {},
): Promise<NginxHarness> {
  const origin = await startRecordingOrigin();
  let nginx: NginxProcess | undefined;
  let driver: NginxDriver | undefined;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => (closed ??= closeAll(driver, nginx, origin));
  t.after(close);
  nginx = await startNginx({ originPort: origin.port, snippet: options.snippet, location: options.location });
  const driverOptions: NginxDriverOptions = {
    cacheUrl: `http://127.0.0.1:${nginx.port}`,
    purgeUrl: `http://127.0.0.1:${nginx.purgePort}`,
    cacheDir: nginx.cacheDir,
    levels: '1:2',
    syncIntervalMs: 200,
    timeoutMs: 2_000,
    ...(options.snippet?.secret === undefined ? {} : { secret: options.snippet.secret }),
    ...options.driver,
  };
  driver = new NginxDriver(driverOptions);
  if (options.startDriver !== false) await driver.start();
  const n = nginx;
  return {
    driver,
    origin,
    nginx: n,
    driverOptions,
    get: async (host, path, headers = {}) => {
      const before = origin.seen.length;
      const r = await n.get(host, path, headers);
      return { ...r, originHits: origin.seen.length - before };
    },
    restartCache: async () => {
      await n.stop();
      await n.start();
    },
    close,
  };
}

/**
 * nginx in front of the conformance origin with a started NginxDriver: the driver-conformance harness.
 * restartCache keeps the cache directory (nginx reloads it from disk), as a real nginx restart does.
 */
export async function startNginxConformanceHarness(): Promise<DriverHarness & { readonly driver: NginxDriver; readonly nginx: NginxProcess }> {
  const origin = await startConformanceOrigin();
  let nginx: NginxProcess | undefined;
  let driver: NginxDriver | undefined;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => (closed ??= closeAll(driver, nginx, origin));
  try {
    nginx = await startNginx({ originPort: origin.port });
    const n = nginx;
    driver = new NginxDriver({ cacheUrl: `http://127.0.0.1:${n.port}`, purgeUrl: `http://127.0.0.1:${n.purgePort}`, cacheDir: n.cacheDir, levels: '1:2', syncIntervalMs: 200, timeoutMs: 2_000 });
    await driver.start();
    const d = driver;
    return {
      driver: d,
      nginx: n,
      origin,
      async get(host, path, headers = {}) {
        const before = origin.requests.length;
        const r = await n.get(host, path, headers);
        return { status: r.status, body: r.body, originHits: origin.requests.length - before, ...(r.xcache === undefined ? {} : { xcache: r.xcache }) };
      },
      async restartCache() {
        await n.stop();
        await n.start();
      },
      stopCache: () => n.stop(),
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

async function closeAll(driver: NginxDriver | undefined, nginx: NginxProcess | undefined, origin: { close(): Promise<void> }): Promise<void> {
  await driver?.close();
  await nginx?.remove();
  await origin.close();
}

/** nginx logs a request after it has renamed the cache file into place (ngx_http_upstream_process_request). */
async function waitForLog(prefix: string, id: string): Promise<void> {
  const file = join(prefix, 'logs/access.log');
  const until = Date.now() + 3_000;
  while (!(existsSync(file) && readFileSync(file, 'latin1').includes(`${id} `))) {
    if (Date.now() > until) throw new Error(`nginx did not log request ${id}`);
    await sleep(5);
  }
}

export function request(
  port: number,
  path: string,
  headers: Record<string, string>,
  options: { localAddress?: string; method?: string } = {},
): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers, agent: false, localAddress: options.localAddress, signal: AbortSignal.timeout(5_000) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
