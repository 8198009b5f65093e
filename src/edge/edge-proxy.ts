// The built-in edge node: a caching reverse proxy (RFC 9111 via http-cache-semantics) that applies the
// purge log, serves hits only under a fresh lease, and prefetches on command.

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type CachePolicy from 'http-cache-semantics';
import type { Clock } from '../shared/clock.ts';
import { DEFAULT_CONNECTION_LIMITS, guardConnections, type ConnectionGuard, type ConnectionLimits } from '../shared/connection-limits.ts';
import { canonicalHost, headerValue, parseRequestTarget, parseTags, parseTargetUrl, varyNames, type HeaderMap } from './cache-key.ts';
import type { ApplyResult, EdgeCommand, PrefetchResult } from './edge-command.ts';
import { EdgeCache, type CachedObject, type EdgeCacheStats, type Fetch } from './edge-cache.ts';
import {
  clientNotModified,
  contentLength,
  endToEnd,
  isConditional,
  originRequestHeaders,
  withoutInternal,
  type OriginBody,
} from './http-headers.ts';

export interface EdgeDomain {
  /** The served host name (matched against the request's Host, port ignored). */
  readonly host: string;
  /** Origin base URL, e.g. `http://10.0.0.5:8080` (http or https). */
  readonly origin: string;
}

export interface EdgeProxyOptions {
  readonly listen: { readonly host: string; readonly port: number };
  readonly domains: readonly EdgeDomain[];
  /** Bound on cached bytes (bodies + headers + per-object overhead), LRU eviction beyond it. */
  readonly maxBytes: number;
  readonly clock: Clock;
  /** Lease length used by renewLease() without an argument. */
  readonly leaseMs: number;
  /** Largest cached body; larger responses are streamed through uncached. Default min(maxBytes/8, 64 MiB). */
  readonly maxObjectBytes?: number;
  /** Hard cap on live invalidation rules (see InvalidationIndexOptions.maxRules). Default 100 000. */
  readonly maxRules?: number;
  /** Initial applied seq. Default 0. */
  readonly appliedSeq?: number;
  /** Period of the rule sweep/compaction (EdgeCache.maintain). Default 1000 ms; 0 disables the timer. */
  readonly maintenanceIntervalMs?: number;
  /** close() waits this long for in-flight requests before cutting connections. Default 10 000 ms. */
  readonly drainTimeoutMs?: number;
  /** Socket idle timeout towards origins. Default 30 000 ms. */
  readonly originTimeoutMs?: number;
  /**
   * How long an idle origin connection is kept for reuse. Default 4000 ms: under the shortest common
   * origin keep-alive timeout (Apache's and Node's 5 s), so the edge, not the origin, closes it.
   */
  readonly originKeepAliveMs?: number;
  /** Client connection caps. Default: 256 per address, 8192 in all, 10 s to the first byte. */
  readonly connections?: ConnectionLimits;
  /** Longest a client may take to send a whole request (headers and body). Default 120 000 ms. */
  readonly requestTimeoutMs?: number;
  /** Unexpected errors (client aborts are not reported). */
  readonly onError?: (err: unknown, context: string) => void;
}

export type XCache = 'HIT' | 'MISS' | 'REVALIDATED' | 'BYPASS';

export interface EdgeStats extends EdgeCacheStats {
  readonly hits: number;
  readonly misses: number;
  readonly revalidated: number;
  readonly bypassed: number;
  readonly leaseFresh: boolean;
  /** ms since epoch; -Infinity before the first renewLease(). */
  readonly leaseUntil: number;
  /** Client connections open now, and closed on arrival (over a cap, or silent). */
  readonly connections: number;
  readonly refusedConnections: number;
}

/** One client request on its way through the cache. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly origin: Origin;
  readonly host: string;
  readonly path: string;
  /** The request as the cache policy sees it: canonical Host, method GET (HEAD is answered from GET). */
  readonly cacheReq: CachePolicy.Request;
}

interface Origin {
  readonly url: URL;
  /** The origin URL's path without a trailing slash, prefixed to every request path. */
  readonly basePath: string;
}

/** Methods that invalidate their target URI on a non-error response (RFC 9111 §4.4). */
const UNSAFE = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);

/** Tees a response body into memory while it streams to the client, giving up past `limit` bytes. */
class Capture extends Transform {
  readonly limit: number;
  chunks: Buffer[] = [];
  bytes = 0;
  overflow = false;

  constructor(limit: number) {
    super();
    this.limit = limit;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.overflow) {
      this.bytes += chunk.length;
      if (this.bytes > this.limit) {
        this.overflow = true;
        this.chunks = [];
      } else {
        this.chunks.push(chunk);
      }
    }
    cb(null, chunk);
  }
}

const NO_BODY: OriginBody = { kind: 'none' };

/**
 * The body a relayed request carries, as the client's request was framed (node's parser has already
 * refused Content-Length with Transfer-Encoding, and checks that a Content-Length body is that long).
 */
function clientBody(req: IncomingMessage): OriginBody {
  if (req.headers['transfer-encoding'] !== undefined) return { kind: 'chunked' };
  const length = contentLength(req.headers);
  return length !== undefined && length > 0 ? { kind: 'length', length } : NO_BODY;
}

/** RFC 9110 §7.2 Host = uri-host [ ":" port ]: a reg-name (unreserved, sub-delims, %XX) or an IP literal. */
const HOST_FIELD = /^(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})*(?::\d*)?$|^\[[0-9A-Fa-f:.]+\](?::\d*)?$/;

/** How many times a field occurs in node's rawHeaders (name, value, name, value, …). */
function countHeader(raw: readonly string[], name: string): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) n++;
  return n;
}

const DEFAULT_ORIGIN_KEEP_ALIVE_MS = 4000;

/** How a kept-alive socket the peer has closed fails a request sent on it, before any response byte. */
const isStaleSocket = (err: unknown): boolean =>
  err instanceof Error && 'code' in err && (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ECONNABORTED');

/** A request that failed on a reused socket the origin had closed; `cause` is the socket's error. */
class StaleSocketError extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause });
  }
}

/** Client went away, or the origin broke mid-body: nothing to answer any more. */
const isStreamAbort = (err: unknown): boolean =>
  err instanceof Error &&
  'code' in err &&
  (err.code === 'ERR_STREAM_PREMATURE_CLOSE' || err.code === 'ECONNRESET' || err.code === 'EPIPE');

/**
 * Lifecycle: start() listens, close() stops accepting, answers 503 on kept-alive connections, drains
 * in-flight requests and prefetches (idempotent). Until the first renewLease() the lease is stale, so a
 * node that has not heard from the control plane serves no hits (DESIGN invariant 4).
 */
export class EdgeProxy {
  /** The driver name this node reports with its acks (per-node progress). */
  readonly driver = 'builtin';
  readonly cache: EdgeCache;
  readonly #options: EdgeProxyOptions;
  readonly #clock: Clock;
  readonly #domains = new Map<string, Origin>();
  readonly #httpAgent: http.Agent;
  readonly #httpsAgent: https.Agent;
  #server: http.Server | undefined;
  #connections: ConnectionGuard | undefined;
  #port = 0;
  #timer: NodeJS.Timeout | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;
  readonly #prefetches = new Set<Promise<PrefetchResult>>();
  #leaseUntil = Number.NEGATIVE_INFINITY;
  #hits = 0;
  #misses = 0;
  #revalidated = 0;
  #bypassed = 0;

  constructor(options: EdgeProxyOptions) {
    this.#options = options;
    this.#clock = options.clock;
    // The agent's timeout applies to idle pooled sockets (each request sets its own, originTimeoutMs);
    // an origin's `Keep-Alive: timeout=N` hint shortens it further (node subtracts 1 s).
    const pool = { keepAlive: true, timeout: options.originKeepAliveMs ?? DEFAULT_ORIGIN_KEEP_ALIVE_MS };
    this.#httpAgent = new http.Agent(pool);
    this.#httpsAgent = new https.Agent(pool);
    for (const d of options.domains) {
      const url = new URL(d.origin);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new Error(`origin of ${d.host} must be http(s), got ${d.origin}`);
      }
      this.#domains.set(canonicalHost(d.host), { url, basePath: url.pathname.replace(/\/+$/, '') });
    }
    this.cache = new EdgeCache({
      clock: options.clock,
      maxBytes: options.maxBytes,
      ...(options.maxObjectBytes === undefined ? {} : { maxObjectBytes: options.maxObjectBytes }),
      ...(options.maxRules === undefined ? {} : { maxRules: options.maxRules }),
      ...(options.appliedSeq === undefined ? {} : { appliedSeq: options.appliedSeq }),
    });
  }

  /** Listens; resolves with the bound port (useful with port 0). Calling it again returns the same port. */
  async start(): Promise<{ port: number }> {
    if (this.#closing) throw new Error('EdgeProxy is closed');
    if (this.#server !== undefined) return { port: this.#port };
    const server = http.createServer(
      // Timeouts are enforced on node's connection sweep: run it every second, not every 30 s.
      { headersTimeout: 10_000, requestTimeout: this.#options.requestTimeoutMs ?? 120_000, connectionsCheckingInterval: 1_000 },
      (req, res) => this.#onRequest(req, res),
    );
    const limits = this.#options.connections ?? DEFAULT_CONNECTION_LIMITS;
    this.#connections = guardConnections(server, () => limits);
    this.#server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.#options.listen.port, this.#options.listen.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      this.#server = undefined;
      throw err;
    }
    this.#port = (server.address() as AddressInfo).port;
    const every = this.#options.maintenanceIntervalMs ?? 1000;
    if (every > 0) {
      this.#timer = setInterval(() => this.maintain(), every);
      this.#timer.unref();
    }
    return { port: this.#port };
  }

  /** Stops accepting, drains in-flight requests and prefetches, then releases origin sockets. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#shutdown();
    return this.#closed;
  }

  /** Applies one purge-log entry (synchronous, cost independent of the cache size). See EdgeCache.apply. */
  apply(cmd: EdgeCommand): ApplyResult {
    return this.cache.apply(cmd);
  }

  /** Marks seqs up to `seq` applied without a command (heartbeats; prefetch entries). See EdgeCache.advanceTo. */
  advanceTo(seq: number): void {
    this.cache.advanceTo(seq);
  }

  /** Highest applied seq: what the node acks. */
  get appliedSeq(): number {
    return this.cache.appliedSeq;
  }

  /**
   * Fetches `cmd.target` from its origin (with `cmd.headers`) into the cache. Fails with
   * `originPullFailed` on an origin 4xx/5xx, a network error, or a host without an origin.
   * Does not advance the applied seq: apply(cmd) or advanceTo(cmd.seq) does, before or after.
   */
  prefetch(cmd: EdgeCommand): Promise<PrefetchResult> {
    const p = this.#prefetch(cmd);
    this.#prefetches.add(p);
    void p.finally(() => this.#prefetches.delete(p));
    return p;
  }

  /** Extends the lease to `untilMs` (default now + leaseMs). Hits are served only while now <= until. */
  renewLease(untilMs?: number): void {
    this.#leaseUntil = untilMs ?? this.#clock.now() + this.#options.leaseMs;
  }

  leaseFresh(): boolean {
    return this.#clock.now() <= this.#leaseUntil;
  }

  /** Empties the cache (node fell behind the retained log) and sets appliedSeq when given; see EdgeCache.dropAll. */
  dropAll(appliedSeq?: number): number {
    return this.cache.dropAll(appliedSeq);
  }

  /** One round of rule sweep and compaction (also run on the maintenance timer). */
  maintain(budget?: number): { checked: number; retired: number } {
    return this.cache.maintain(budget);
  }

  stats(): EdgeStats {
    return {
      ...this.cache.stats(),
      hits: this.#hits,
      misses: this.#misses,
      revalidated: this.#revalidated,
      bypassed: this.#bypassed,
      leaseFresh: this.leaseFresh(),
      leaseUntil: this.#leaseUntil,
      connections: this.#connections?.open ?? 0,
      refusedConnections: this.#connections ? Object.values(this.#connections.refused).reduce((a, b) => a + b, 0) : 0,
    };
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (this.#closing) res.shouldKeepAlive = false;
    res.on('finish', () => {
      // Kept-alive sockets would otherwise linger for keepAliveTimeout after the drain.
      if (this.#closing) setImmediate(() => this.#server?.closeIdleConnections());
    });
    this.#handle(req, res).catch((err: unknown) => {
      if (!isStreamAbort(err)) this.#options.onError?.(err, `${req.method ?? ''} ${req.headers.host ?? ''}${req.url ?? ''}`);
      if (!res.headersSent) this.#text(res, 502, 'origin unreachable');
      else res.destroy();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#closing) return this.#text(res, 503, 'edge is shutting down');
    const method = req.method ?? 'GET';
    // TRACE echoes the request (credentials included) back to scripts; nothing to cache or relay.
    if (method === 'TRACE' || method === 'TRACK') return this.#text(res, 405, `${method} is not served`);
    let target: { readonly host?: string; readonly path: string };
    try {
      target = parseRequestTarget(req.url ?? '');
    } catch {
      return this.#text(res, 400, 'bad request target');
    }
    // RFC 9112 §3.2: more than one Host, or an invalid one, is a 400 — even with an absolute-form target.
    if (countHeader(req.rawHeaders, 'host') > 1 || !HOST_FIELD.test(req.headers.host ?? '')) return this.#text(res, 400, 'bad Host header');
    // The key, the origin's Host and the domain lookup all use this one canonical host.
    const host = target.host ?? canonicalHost(req.headers.host ?? '');
    const origin = this.#domains.get(host);
    if (origin === undefined) return this.#text(res, 404, `unknown host: ${host}`);
    const path = target.path;
    // The policy compares the stored Host with the request's: use the canonical one on both sides.
    const headers: HeaderMap = { ...req.headers, host };
    const x: Exchange = { req, res, origin, host, path, cacheReq: { url: path, method: 'GET', headers } };
    if (method !== 'GET' && method !== 'HEAD') return this.#bypass(x, method);

    const obj = this.cache.lookup(host, path, headers);
    if (obj !== undefined) {
      if (!obj.invalidated && this.leaseFresh()) {
        const ev = obj.policy.evaluateRequest(x.cacheReq);
        if (ev.revalidation === undefined) {
          this.#hits++;
          this.cache.touch(obj);
          return this.#serveStored(x, obj, ev.response.headers, 'HIT');
        }
      }
      // Purged, stale, lease expired, or the client asked for it: conditional request to origin.
      if (method === 'GET') return this.#revalidate(x, obj);
    }
    return this.#miss(x, method);
  }

  async #miss(x: Exchange, method: string): Promise<void> {
    const f = this.cache.beginFetch(x.host, x.path);
    try {
      const originRes = await this.#originRequest(x.origin, method, x.path, this.#toOrigin(x, x.req.headers, NO_BODY));
      this.#misses++;
      await this.#relay(x, f, originRes, { store: method === 'GET' });
    } finally {
      this.cache.endFetch(f);
    }
  }

  async #revalidate(x: Exchange, obj: CachedObject): Promise<void> {
    const f = this.cache.beginFetch(x.host, x.path);
    try {
      const conditional = obj.policy.revalidationHeaders(x.cacheReq);
      const originRes = await this.#originRequest(x.origin, 'GET', x.path, this.#toOrigin(x, conditional, NO_BODY));
      if (originRes.statusCode !== 304) {
        this.#misses++;
        return await this.#relay(x, f, originRes, { store: true, supersedes: obj });
      }
      originRes.resume();
      const resHeaders = withoutInternal(originRes.headers);
      const { policy, matches } = obj.policy.revalidatedPolicy(x.cacheReq, { status: 304, headers: resHeaders });
      if (!matches) {
        // The 304 answers the client's own validator, not ours: pass it on; the stored copy stays unconfirmed.
        if (isConditional(x.req.headers)) {
          this.#misses++;
          x.res.writeHead(304, { ...endToEnd(resHeaders), 'x-cache': 'MISS' });
          x.res.end();
          return;
        }
        this.cache.remove(obj);
        return await this.#miss(x, 'GET');
      }
      const tags = parseTags(originRes.headers);
      this.cache.refresh(f, obj, policy, tags.length > 0 ? tags : undefined);
      this.#revalidated++;
      // Served even if a purge hit the key meanwhile: this request began before it (it is not stored back).
      return this.#serveStored(x, { ...obj, policy }, policy.responseHeaders(), 'REVALIDATED');
    } finally {
      this.cache.endFetch(f);
    }
  }

  async #bypass(x: Exchange, method: string): Promise<void> {
    this.#bypassed++;
    const body = clientBody(x.req);
    const originRes = await this.#originRequest(x.origin, method, x.path, this.#toOrigin(x, x.req.headers, body), body.kind === 'none' ? undefined : x.req);
    const status = originRes.statusCode ?? 502;
    if (UNSAFE.has(method) && status < 400) this.cache.removeKey(x.host, x.path);
    x.res.writeHead(status, { ...endToEnd(withoutInternal(originRes.headers)), 'x-cache': 'BYPASS' });
    await pipeline(originRes, x.res);
  }

  /** Streams an origin response to the client, capturing it for the cache when it may be stored. */
  async #relay(
    x: Exchange,
    f: Fetch,
    originRes: IncomingMessage,
    how: { readonly store: boolean; readonly supersedes?: CachedObject },
  ): Promise<void> {
    const status = originRes.statusCode ?? 502;
    const resHeaders = withoutInternal(originRes.headers);
    const policy = how.store ? this.#storablePolicy(x.cacheReq, status, resHeaders) : undefined;
    // A new full response supersedes the stored one; a 5xx says nothing about it.
    if (policy === undefined && how.supersedes !== undefined && status < 500) this.cache.remove(how.supersedes);
    x.res.writeHead(status, { ...endToEnd(resHeaders), 'x-cache': 'MISS' });
    if (policy === undefined) {
      await pipeline(originRes, x.res);
      return;
    }
    const capture = new Capture(this.cache.maxObjectBytes);
    await pipeline(originRes, capture, x.res);
    this.#storeCaptured(f, x.host, x.path, x.cacheReq, originRes, policy, capture);
  }

  /**
   * A policy for the response when a shared cache may keep it (RFC 9111 §3 via the library: no-store,
   * private, Authorization, understood status), and further: never with Set-Cookie (a shared copy would
   * hand one visitor's cookie to all), never `Vary: *`, only when it can be reused at all (fresh for a
   * while, or carrying a validator), and only when a declared length fits the object cap.
   */
  #storablePolicy(cacheReq: CachePolicy.Request, status: number, headers: HeaderMap): CachePolicy | undefined {
    const policy = this.cache.newPolicy(cacheReq, { status, headers });
    if (!policy.storable()) return undefined;
    if (headers['set-cookie'] !== undefined) return undefined;
    if (varyNames(headerValue(headers, 'vary')).includes('*')) return undefined;
    if (!(policy.timeToLive() > 0 || headers.etag !== undefined || headers['last-modified'] !== undefined)) return undefined;
    const len = contentLength(headers);
    if (len !== undefined && len > this.cache.maxObjectBytes) return undefined;
    return policy;
  }

  /** Stores a captured body once the origin sent all of it and it fitted the object cap. */
  #storeCaptured(
    f: Fetch,
    host: string,
    path: string,
    cacheReq: CachePolicy.Request,
    originRes: IncomingMessage,
    policy: CachePolicy,
    capture: Capture,
  ): CachedObject | undefined {
    if (capture.overflow || !originRes.complete) return undefined;
    return this.cache.store(f, {
      host,
      path,
      status: originRes.statusCode ?? 502,
      policy,
      body: Buffer.concat(capture.chunks, capture.bytes),
      tags: parseTags(originRes.headers),
      responseHeaders: withoutInternal(originRes.headers),
      requestHeaders: cacheReq.headers,
    });
  }

  #serveStored(x: Exchange, obj: CachedObject, headers: HeaderMap, xcache: XCache): void {
    const out: HeaderMap = { ...headers, 'x-cache': xcache };
    if (obj.status === 200 && clientNotModified(x.req.headers, headers)) {
      x.res.writeHead(304, out);
      x.res.end();
      return;
    }
    out['content-length'] = String(obj.body.length);
    x.res.writeHead(obj.status, out);
    x.res.end(x.req.method === 'HEAD' ? undefined : obj.body);
  }

  async #prefetch(cmd: EdgeCommand): Promise<PrefetchResult> {
    const fail = (failMessage: string): PrefetchResult => ({ ok: false, failType: 'originPullFailed', failMessage });
    if (this.#closing) return fail('edge is shutting down');
    const t = parseTargetUrl(cmd.target);
    if (t === undefined) return fail(`not a URL: ${cmd.target}`);
    const origin = this.#domains.get(t.host);
    if (origin === undefined) return fail(`no origin configured for host ${t.host}`);
    const headers: HeaderMap = {};
    for (const [k, v] of Object.entries(cmd.headers ?? {})) headers[k.toLowerCase()] = v;
    headers.host = t.host;
    const cacheReq: CachePolicy.Request = { url: t.path, method: 'GET', headers };
    const f = this.cache.beginFetch(t.host, t.path);
    try {
      let originRes: IncomingMessage;
      try {
        originRes = await this.#originRequest(origin, 'GET', t.path, originRequestHeaders(headers, NO_BODY));
      } catch (err) {
        return fail(`origin unreachable: ${err instanceof Error ? err.message : String(err)}`);
      }
      const status = originRes.statusCode ?? 502;
      if (status >= 400) {
        originRes.resume();
        return fail(`origin returned ${status}`);
      }
      const capture = new Capture(this.cache.maxObjectBytes);
      try {
        // Drain to the end: the capture keeps what fits.
        await pipeline(originRes, capture, async (source: AsyncIterable<Buffer>) => {
          for await (const chunk of source) void chunk;
        });
      } catch (err) {
        return fail(`origin broke off the body: ${err instanceof Error ? err.message : String(err)}`);
      }
      const policy = this.#storablePolicy(cacheReq, status, withoutInternal(originRes.headers));
      const stored = policy !== undefined && this.#storeCaptured(f, t.host, t.path, cacheReq, originRes, policy, capture) !== undefined;
      return { ok: true, stored };
    } finally {
      this.cache.endFetch(f);
    }
  }

  /**
   * Request headers towards the origin: end-to-end ones framed by the edge (`body`), the canonical host
   * the cache key was built from (a client's port or trailing dot would otherwise reach the origin, and a
   * reflected Host be served to everyone as a HIT), and X-Forwarded-For appended.
   */
  #toOrigin(x: Exchange, headers: HeaderMap, body: OriginBody): HeaderMap {
    const out = originRequestHeaders(headers, body);
    out.host = x.host;
    const ip = x.req.socket.remoteAddress;
    if (ip !== undefined) {
      const prior = headerValue(x.req.headers, 'x-forwarded-for');
      out['x-forwarded-for'] = prior === undefined ? ip : `${prior}, ${ip}`;
    }
    return out;
  }

  /**
   * One request to the origin. A GET or HEAD without a body that fails on a reused keep-alive socket
   * before any response byte is sent again once, on a new connection: the origin closed that socket
   * just as the request went out (its keep-alive timeout won the race), so the request never reached
   * it, and repeating an idempotent one is safe (RFC 9110 §9.2.2; the node docs' `reusedSocket` advice).
   */
  async #originRequest(
    origin: Origin,
    method: string,
    path: string,
    headers: HeaderMap,
    body?: IncomingMessage,
  ): Promise<IncomingMessage> {
    const retriable = body === undefined && (method === 'GET' || method === 'HEAD');
    try {
      return await this.#originAttempt(origin, method, path, headers, body, true);
    } catch (err) {
      if (!(retriable && err instanceof StaleSocketError)) throw err instanceof StaleSocketError ? err.cause : err;
      return await this.#originAttempt(origin, method, path, headers, body, false);
    }
  }

  #originAttempt(
    origin: Origin,
    method: string,
    path: string,
    headers: HeaderMap,
    body: IncomingMessage | undefined,
    pooled: boolean,
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const u = origin.url;
      const secure = u.protocol === 'https:';
      const pool = secure ? this.#httpsAgent : this.#httpAgent;
      const request = (secure ? https : http).request({
        protocol: u.protocol,
        hostname: u.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: u.port === '' ? undefined : Number(u.port),
        method,
        path: origin.basePath + path,
        headers,
        // The retry takes a connection of its own (`Connection: close`): another pooled socket may be
        // just as stale, having idled as long.
        agent: pooled ? pool : false,
        timeout: this.#options.originTimeoutMs ?? 30_000,
      });
      request.once('response', resolve);
      request.once('error', (err) => reject(request.reusedSocket && isStaleSocket(err) ? new StaleSocketError(err) : err));
      request.once('timeout', () => request.destroy(new Error('origin timed out')));
      if (body === undefined) request.end();
      else pipeline(body, request).catch((err: unknown) => request.destroy(err instanceof Error ? err : undefined));
    });
  }

  #text(res: ServerResponse, status: number, message: string): void {
    const body = `${message}\n`;
    res.writeHead(status, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      ...(this.#closing ? { connection: 'close' } : {}),
    });
    res.end(body);
  }

  async #shutdown(): Promise<void> {
    this.#closing = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    const server = this.#server;
    if (server !== undefined && server.listening) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const cut = setTimeout(() => server.closeAllConnections(), this.#options.drainTimeoutMs ?? 10_000);
      cut.unref();
      await closed;
      clearTimeout(cut);
    }
    await Promise.allSettled([...this.#prefetches]);
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }
}
