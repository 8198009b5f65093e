// The control plane's HTTP server: API 3.0 at "/", legacy v2 at "/v2/index.php", edge streams under
// "/edge/". Decoding and rendering belong to src/protocols; the work belongs to src/actions.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/schema.ts';
import type { ActionContext, ActionHandler } from '../actions/context.ts';
import { API3_ACTIONS } from '../actions/registry.ts';
import { V2_ACTIONS } from '../actions/v2/registry.ts';
import { Directory } from '../purge/directory.ts';
import { PurgeService } from '../purge/purge-service.ts';
import { readBody } from '../protocols/http-body.ts';
import type { JsonReply } from '../protocols/json-reply.ts';
import { clientIp, type RawRequest } from '../protocols/request-parts.ts';
import { NonceCache, nonceCapacity, nonceExpiresAt, nonceKey, replayAttack, reserveNonce, type NonceClaim } from '../protocols/nonce-cache.ts';
import { API3_TIMESTAMP_WINDOW_SECONDS, authenticateApi3Request } from '../protocols/tc3/api3-request.ts';
import { renderApi3Error, renderApi3Success } from '../protocols/tc3/api3-envelope.ts';
import { claimedSecretId } from '../protocols/tc3/tc3-signature.ts';
import { decodeV2Request, V2_TIMESTAMP_WINDOW_SECONDS } from '../protocols/v2/v2-request.ts';
import { renderV2Error, renderV2Success } from '../protocols/v2/v2-envelope.ts';
import type { Clock } from '../shared/clock.ts';
import { guardConnections, lingeringClose, type ConnectionGuard } from '../shared/connection-limits.ts';
import { ApiError } from '../shared/errors.ts';
import { splitHostPort } from '../shared/host-port.ts';
import { newRequestId } from '../shared/ids.ts';
import type { Logger } from '../shared/logger.ts';
import type { TaskStore } from '../store/task-store.ts';
import type { ReplicaCoordination } from '../store/replica-coordination.ts';
import { FanoutHub } from '../fanout/fanout-hub.ts';
import { adminRoutes, jobView, type AdminRoutes } from './admin-routes.ts';
import { Duties, periodicDuty } from './duties.ts';
import { RateLimits } from './rate-limits.ts';
import { WebhookDispatcher, type DeliveryResult } from '../webhooks/webhook-dispatcher.ts';
import { webhookRouter } from '../webhooks/webhook-router.ts';
import type { WebhookRouter } from '../store/task-store.ts';
import { api3Name, ControlPlaneObservability, errorCode } from './control-plane-observability.ts';
import { WebConsole, type WebConsoleDeps } from '../console/web-console.ts';
import { overflowedHead, overflowedProtocol } from './overflow-protocol.ts';

export interface ControlPlaneOptions {
  readonly config: Readonly<Config>;
  readonly store: TaskStore;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Heartbeat/settle period of the fan-out (tests shorten it). */
  readonly heartbeatMs?: number;
  /** Web console session and sign-in limits (tests shorten them). */
  readonly console?: Pick<WebConsoleDeps, 'sessions' | 'signIn'>;
  /**
   * Whether this process delivers the webhook outbox (default true): a duty, so with replicas only the
   * leader delivers. Every replica that settles enqueues. false leaves `webhooks.start()`/`stop()` to the caller.
   */
  readonly deliverWebhooks?: boolean;
}

/** Rate-limit buckets of API 3.0, one per (version, action) (see #throttle): they size an account's Nonce share. */
const API3_BUCKETS = [...API3_ACTIONS.values()].reduce((n, actions) => n + actions.size, 0);

/** Request line plus headers: room for a 32 KB GET query (TENCENT-API §2.2) and the signed headers. */
const MAX_HEADER_BYTES = 64 * 1024;
/**
 * node's own limit is twice ours: up to it the request reaches JavaScript and is refused in its own
 * protocol's envelope (path and method known); only beyond it does #clientError have to guess.
 */
const PARSER_HEADER_BYTES = 2 * MAX_HEADER_BYTES;

const headTooLarge = (): ApiError =>
  new ApiError('RequestSizeLimitExceeded', `The request line and headers exceed ${MAX_HEADER_BYTES} bytes; send large inputs as a POST body.`);

/** Bytes of the request line and header block as sent (CRLFs and ": " included). */
function headBytes(req: IncomingMessage): number {
  let n = (req.method?.length ?? 0) + (req.url?.length ?? 0) + 12;
  for (let i = 0; i < req.rawHeaders.length; i += 2) n += req.rawHeaders[i]!.length + req.rawHeaders[i + 1]!.length + 4;
  return n;
}

export class ControlPlane {
  #directory: Directory;
  #purge: PurgeService;
  /** Streams the purge log to edge nodes and derives task status from their acks. */
  readonly hub: FanoutHub;
  readonly #admin: AdminRoutes;
  readonly #console: WebConsole;
  #o: ControlPlaneOptions;
  readonly #server: Server;
  readonly #rates: RateLimits;
  /** Replicas sharing the store (PostgreSQL): their election, rate limit and replay memory; undefined alone. */
  readonly #replicas: ReplicaCoordination | undefined;
  /**
   * The duties that must run on one replica at a time (settling and timeouts here, nonce expiry, pruning and
   * webhook delivery registered by their owners): they run while this process leads.
   */
  readonly duties: Duties;
  /** Per-address and total connection caps (issue 7: slow clients exhausted the descriptors). */
  readonly connections: ConnectionGuard;
  /** Accepted Nonces of legacy v2 and of API 3.0 v1-signed requests, per account (one window each). */
  readonly #v2Nonces = new NonceCache({ windowSeconds: V2_TIMESTAMP_WINDOW_SECONDS });
  readonly #api3Nonces = new NonceCache({ windowSeconds: API3_TIMESTAMP_WINDOW_SECONDS });
  #closing = false;
  #closed: Promise<void> | undefined;
  /** /metrics, /healthz, /readyz, request metrics and the access log; it also hands out the (observed) store. */
  readonly #obs: ControlPlaneObservability;
  /** Unsubscribes from the store's log wake-ups (stores shared by replicas: commits of the others). */
  #unsubscribeAppend: (() => void) | undefined;
  /** Delivers the webhook outbox (docs/webhooks.md); a duty (the leading replica delivers) unless deliverWebhooks is false. */
  readonly webhooks: WebhookDispatcher;
  /** The current configuration's webhook subscriptions (rebuilt on reload). */
  #webhookRouter: WebhookRouter;

  constructor(options: ControlPlaneOptions) {
    this.#obs = new ControlPlaneObservability({ ...options, hub: () => this.hub, closing: () => this.#closing });
    this.#o = { ...options, store: this.#obs.store };
    this.#directory = new Directory(options.config);
    this.#webhookRouter = webhookRouter(options.config);
    this.hub = new FanoutHub({
      webhooks: (job) => this.#webhookRouter(job),
      config: options.config,
      store: this.#o.store,
      directory: this.#directory,
      clock: options.clock,
      logger: options.logger,
      ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
    });
    this.#purge = this.#purgeService(options.config, this.#directory);
    this.#admin = adminRoutes({ directory: () => this.#directory, store: this.#o.store, hub: this.hub });
    const webhookMetrics = this.#obs.webhooks;
    this.webhooks = new WebhookDispatcher({
      store: this.#o.store,
      config: () => this.#o.config,
      clock: options.clock,
      logger: options.logger,
      jobView: (appId, jobId) => jobView({ directory: () => this.#directory, store: this.#o.store, hub: this.hub }, appId, jobId),
      ...(webhookMetrics ? { onAttempt: (r: DeliveryResult) => webhookMetrics.attempt(r) } : {}),
    });
    // A settled job's rows are committed before the hub tells its listeners: deliver them now, not at the next poll.
    this.hub.onSettled(() => this.webhooks.wake());
    this.#replicas = options.store.replicas?.();
    this.#rates = new RateLimits(options.clock, this.#replicas);
    this.#console = new WebConsole({ ...options, ...options.console, directory: () => this.#directory, purge: () => this.#purge, config: () => this.#o.config, hub: this.hub, rateLimits: this.#rates });
    this.duties = new Duties({ logger: options.logger, ...(this.#replicas ? { lease: this.#replicas.leaderLock('duties') } : {}) });
    this.duties.register({ name: 'settle', start: () => this.hub.lead(true), stop: () => this.hub.lead(false) });
    if (options.deliverWebhooks ?? true) this.duties.register({ name: 'webhook delivery', start: () => this.webhooks.start(), stop: () => this.webhooks.stop() });
    if (this.#replicas) {
      const replicas = this.#replicas;
      this.duties.register(periodicDuty('nonce expiry', 60_000, async () => void (await replicas.expireNonces(options.clock.now())), options.logger));
    }
    // TENCENT-API §2.2: a GET may carry up to 32 KB of query; Node's default header limit is 16 KB.
    // Timeouts are enforced on node's connection sweep: run it every second, not every 30 s.
    const timeouts = { requestTimeout: 30_000, headersTimeout: 10_000, connectionsCheckingInterval: 1_000 };
    this.#server = createServer({ ...timeouts, maxHeaderSize: PARSER_HEADER_BYTES }, (req, res) => {
      this.#route(req, res).catch((e: unknown) => {
        options.logger.error('request handler crashed', { error: e });
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.#clientError(err, socket));
    // The edge ack channel (FanoutHub.upgrade); any other upgrade is refused.
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!this.hub.upgrade(req, socket, head)) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    this.connections = guardConnections(this.#server, () => this.#o.config.server.connections);
    // Keep-alive clients reuse sockets across many calls (the benchmark, the SDKs' agents).
    this.#server.keepAliveTimeout = 65_000;
  }

  get directory(): Directory {
    return this.#directory;
  }

  get purge(): PurgeService {
    return this.#purge;
  }

  #purgeService(config: Readonly<Config>, directory: Directory): PurgeService {
    return new PurgeService({
      store: this.#o.store,
      directory,
      clock: this.#o.clock,
      timezone: config.server.timezone,
      // A store that announces its commits itself (onAppend, with their entries) wakes the streams: not twice.
      ...(this.#o.store.onAppend ? {} : { onCommitted: (seq: number) => this.hub.notify(seq) }),
      webhooks: (job) => this.#webhookRouter(job),
      onSettled: () => this.webhooks.wake(),
    });
  }

  /**
   * Applies a reloaded configuration (SIGHUP): accounts, credentials, quotas, rate limits, zones,
   * domains, nodes, timezone, body limit and fan-out timings take effect for the next request.
   * The listen address and the store cannot change under a running server: they are kept, and the
   * returned notes say a restart is needed.
   */
  reload(config: Readonly<Config>): string[] {
    const notes: string[] = [];
    const old = this.#o.config;
    if (config.server.listen !== old.server.listen) notes.push(`server.listen stays ${old.server.listen} until a restart`);
    if (JSON.stringify(config.store) !== JSON.stringify(old.store)) notes.push('store changes need a restart');
    if (config.metrics.enabled !== old.metrics.enabled) notes.push(`metrics.enabled stays ${old.metrics.enabled} until a restart`);
    const effective: Readonly<Config> = { ...config, server: { ...config.server, listen: old.server.listen }, store: old.store };
    const directory = new Directory(effective);
    this.#o = { ...this.#o, config: effective };
    this.#directory = directory;
    this.#webhookRouter = webhookRouter(effective);
    this.#purge = this.#purgeService(effective, directory);
    this.hub.reconfigure(effective, directory);
    this.#obs.reconfigure(effective);
    return notes;
  }

  /** Listens on `listen` ("host:port"; port 0 picks a free one) and resolves with the bound port. */
  async start(listen = this.#o.config.server.listen): Promise<{ host: string; port: number }> {
    const { host, port } = splitHostPort(listen);
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    await this.hub.start();
    this.duties.start();
    await this.#obs.start();
    // A shared store (PostgreSQL) tells of entries other replicas commit: their streams wake here too.
    this.#unsubscribeAppend = this.#o.store.onAppend?.((seq, entries) => this.hub.notify(seq, entries));
    const addr = this.#server.address() as AddressInfo;
    return { host, port: addr.port };
  }

  /** Stops accepting, answers new requests on open sockets with ServiceUnavailable, drains in-flight ones. Idempotent. */
  close(): Promise<void> {
    this.#closing = true;
    this.#closed ??= (async () => {
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      this.#unsubscribeAppend?.();
      // Edge streams, job event streams and the console's live views are long-lived responses: end them so close() can finish.
      this.#admin.close();
      this.#console.close();
      await this.duties.close();
      await this.hub.close();
      // Keep-alive sockets that go idle while we drain would hold close() for keepAliveTimeout.
      const idle = setInterval(() => this.#server.closeIdleConnections(), 50);
      const force = setTimeout(() => this.#server.closeAllConnections(), 5000);
      this.#server.closeIdleConnections();
      await closed;
      clearInterval(idle);
      clearTimeout(force);
    })();
    return this.#closed;
  }

  /** Extra listeners (the fan-out) attach to the same server. */
  get server(): Server {
    return this.#server;
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // RFC 9112 §3.2.2: a server accepts absolute-form; everything below reads origin-form.
    if (/^https?:\/\//i.test(req.url ?? '')) {
      const u = URL.parse(req.url ?? '');
      req.url = u ? u.pathname + u.search : '*';
    }
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path?.startsWith('/edge/') && this.hub.route(req, res)) return;
    if (path?.startsWith('/admin/')) {
      this.#obs.observeAdmin(req, res);
      if (this.#admin(req, res)) return;
    }
    if (this.#obs.route(req, res)) return;
    if (path?.startsWith('/console') && this.#console.handle(req, res)) return;
    if (path === '/v2/index.php') return this.#legacy(req, res);
    if (path === '/') return this.#api3(req, res);
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: API 3.0 is served at "/", legacy v2 at "/v2/index.php"\n');
  }

  async #raw(req: IncomingMessage): Promise<RawRequest> {
    this.#head(req);
    return this.#withBody(req);
  }

  /** What is refused before anything else: a closing server, an over-long head. */
  #head(req: IncomingMessage): void {
    if (this.#closing) throw new ApiError('ServiceUnavailable');
    if (headBytes(req) > MAX_HEADER_BYTES) throw headTooLarge();
  }

  async #withBody(req: IncomingMessage): Promise<RawRequest> {
    const body = req.method === 'GET' || req.method === 'HEAD' ? Buffer.alloc(0) : await readBody(req, this.#o.config.server.maxBodyBytes);
    return { method: req.method ?? 'GET', rawUrl: req.url ?? '/', headers: req.headers, body, remoteAddress: req.socket.remoteAddress ?? '' };
  }

  #context(appId: number, secretId: string, ip: string): ActionContext {
    const cred = this.#directory.credential(secretId);
    if (!cred || cred.account.appId !== appId) throw new ApiError('AuthFailure.SecretIdNotFound');
    return {
      account: cred.account,
      secretId,
      clientIp: ip,
      purge: this.#purge,
      store: this.#o.store,
      directory: this.#directory,
      clock: this.#o.clock,
      timezone: this.#o.config.server.timezone,
    };
  }

  /**
   * The last checks before an action runs: the replay check (when the request carries a Nonce), the
   * rate limit, then the Nonce is recorded. Only a request that passed everything uses up a Nonce, so
   * nobody's refused requests fill the cache; an account's share (its rate limit's worth of requests
   * inside the window, see nonceCapacity) bounds only that account.
   *
   * Alone on its store the checks are synchronous: a refusal throws here, and undefined means admitted
   * (no promise per request, and no rejected one for a storm's every refusal). With replicas, a promise.
   */
  #admit(ctx: ActionContext, scope: string, action: string, replay?: { claim: NonceClaim; cache: NonceCache; buckets: number }): Promise<void> | undefined {
    let record: (() => void) | undefined;
    if (replay) {
      const capacity = nonceCapacity(ctx.account.rateLimit, replay.buckets, replay.cache.windowSeconds);
      record = reserveNonce(replay.cache, ctx.account.appId, replay.claim, capacity, this.#o.clock.now());
    }
    const throttled = this.#throttle(ctx, scope, action);
    if (!throttled && !(replay && this.#replicas)) {
      record?.();
      return undefined;
    }
    return (async () => {
      if (throttled) await throttled;
      // Replicas: the store's memory is the one that counts (a copy may have gone to another replica); its
      // INSERT is atomic, so of two copies racing through this process or two, one is refused.
      if (replay && this.#replicas && !(await this.#replicas.claimNonce(`${scope} ${nonceKey(replay.claim)}`, nonceExpiresAt(replay.claim, replay.cache.windowSeconds)))) {
        throw replayAttack(replay.claim);
      }
      record?.();
    })();
  }

  /**
   * Per account and action (TENCENT-API §7.8: 20 requests/s is Tencent's default). `scope` keeps the
   * products apart: CDN's and EdgeOne's DescribePurgeTasks are two actions with their own limits.
   */
  #throttle(ctx: ActionContext, scope: string, action: string): Promise<void> | undefined {
    const rl = ctx.account.rateLimit;
    if (rl === false) return undefined;
    const refused = () => rateLimited(action, rl.perSecond);
    const taken = this.#rates.take(rateKey(ctx.account.appId, scope, action), rl.perSecond, rl.burst);
    // In memory the answer is immediate: no await between the Nonce check and its record (see reserveNonce).
    if (typeof taken === 'boolean') {
      if (!taken) throw refused();
      return undefined;
    }
    return taken.then((ok) => {
      if (!ok) throw refused();
    });
  }

  /**
   * A storm's refusals, answered before the body is read and the signature checked: a TC3 request whose
   * key's account has no token left for the action it names is refused at once (RequestLimitExceeded).
   * It takes nothing: only a request whose signature checked out takes a token (#throttle), so a forged
   * or unsigned request can never spend a tenant's limit, and one refused here costs the tenant nothing.
   * What it can learn is only what the answer says: that the account is over its limit for that action
   * right now. Not logged under the account (nothing proves who sent it). With replicas the shared
   * bucket is in the store: no early refusal there (see RateLimits.exhausted).
   */
  #refuseEarly(req: IncomingMessage, action: string | undefined, version: string | undefined): void {
    const authorization = headerOf(req, 'authorization');
    if (authorization === undefined || action === undefined || version === undefined) return;
    const secretId = claimedSecretId(authorization);
    const account = secretId === undefined ? undefined : this.#directory.credential(secretId)?.account;
    const rl = account?.rateLimit;
    if (!account || !rl || !API3_ACTIONS.get(version)?.has(action)) return;
    if (this.#rates.exhausted(rateKey(account.appId, version, action), rl.perSecond, rl.burst)) throw rateLimited(action, rl.perSecond);
  }

  async #api3(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = newRequestId();
    const version = headerOf(req, 'x-tc-version');
    const seen = this.#obs.begin(api3Name(version), requestId);
    seen.action = headerOf(req, 'x-tc-action');
    let reply: JsonReply;
    try {
      this.#head(req);
      this.#refuseEarly(req, seen.action, version);
      const raw = await this.#withBody(req);
      const call = authenticateApi3Request(raw, { clock: this.#o.clock, lookupSecret: (id) => this.#lookup(id) });
      Object.assign(seen, { api: api3Name(call.version), action: call.action, appId: call.appId });
      const actions = API3_ACTIONS.get(call.version);
      if (!actions) throw new ApiError('NoSuchVersion', `The API version \`${call.version}\` does not exist; use 2022-09-01 (EdgeOne) or 2018-06-06 (CDN).`);
      const handler = actions.get(call.action);
      if (!handler) throw new ApiError('InvalidAction', `The action \`${call.action}\` does not exist in version ${call.version}.`);
      const ctx = this.#context(call.appId, call.secretId, call.clientIp);
      const admitting = this.#admit(ctx, call.version, call.action, call.nonce && { claim: call.nonce, cache: this.#api3Nonces, buckets: API3_BUCKETS });
      if (admitting) await admitting;
      // The body is parsed only now: a refused request (a storm past the rate limit) does not pay for it.
      reply = renderApi3Success(await handler(ctx, call.params()), requestId);
      this.#obs.api.finish(seen, 'Success');
    } catch (e) {
      reply = renderApi3Error(e, requestId, (msg, err) => this.#o.logger.error(msg, { error: err, requestId }));
      this.#obs.api.finish(seen, errorCode(e));
      this.#afterError(req, res, e);
    }
    this.#send(res, reply, requestId);
  }

  async #legacy(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const seen = this.#obs.begin('v2');
    let reply: JsonReply;
    try {
      const raw = await this.#raw(req);
      const call = decodeV2Request(raw, { clock: this.#o.clock, lookupSecret: (id) => this.#lookup(id) });
      Object.assign(seen, { action: call.action, appId: call.appId });
      const handler: ActionHandler | undefined = V2_ACTIONS.get(call.action);
      if (!handler) throw new ApiError('InvalidAction', `The action ${call.action} does not exist in CDN API v2.`);
      const ctx = this.#context(call.appId, call.secretId, call.clientIp);
      const admitting = this.#admit(ctx, 'v2', call.action, { claim: call.nonce, cache: this.#v2Nonces, buckets: V2_ACTIONS.size });
      if (admitting) await admitting;
      const data = await handler(ctx, call.params);
      reply = renderV2Success(Object.keys(data).length ? data : undefined);
      this.#obs.api.finish(seen, 'Success');
    } catch (e) {
      reply = renderV2Error(e, (msg, err) => this.#o.logger.error(msg, { error: err }));
      this.#obs.api.finish(seen, errorCode(e));
      this.#afterError(req, res, e);
    }
    this.#send(res, reply);
  }

  #lookup(secretId: string) {
    const c = this.#directory.credential(secretId);
    return c ? { secretKey: c.secretKey, appId: c.account.appId } : undefined;
  }

  /**
   * Requests the HTTP parser refused. Over-long headers or query still get the envelope of the protocol
   * they spoke (HTTP 200, RequestSizeLimitExceeded) so clients see a code; the rest keep Node's default answers.
   */
  #clientError(err: NodeJS.ErrnoException & { rawPacket?: unknown }, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      const tooLarge = headTooLarge();
      const requestId = newRequestId();
      const legacy = overflowedProtocol(err.rawPacket) === 'legacy';
      const reply = legacy ? renderV2Error(tooLarge, () => {}) : renderApi3Error(tooLarge, requestId, () => {});
      const head = Object.entries({
        ...reply.headers,
        'Content-Length': String(Buffer.byteLength(reply.body)),
        ...(legacy ? {} : { 'X-TC-RequestId': requestId }),
        Connection: 'close',
      });
      const body = overflowedHead(err.rawPacket) ? '' : reply.body;
      socket.write(`HTTP/1.1 ${reply.status} OK\r\n${head.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`);
      // The client may still be sending the rest of its headers: read them away rather than reset.
      return lingeringClose(socket as Socket);
    }
    socket.end(err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
  }

  /**
   * An oversized body is not read to the end: answer, then close with a lingering close, so that a
   * client still sending its body reads the answer instead of a connection reset.
   */
  #afterError(req: IncomingMessage, res: ServerResponse, e: unknown): void {
    if (e instanceof ApiError && e.code === 'RequestSizeLimitExceeded') {
      res.shouldKeepAlive = false;
      const socket = req.socket;
      // node ends a non-keep-alive response with socket.destroySoon(), which would cut the unread body.
      socket.destroySoon = () => lingeringClose(socket);
    }
  }

  #send(res: ServerResponse, reply: JsonReply, requestId?: string): void {
    const headers: Record<string, string> = { ...reply.headers, 'Content-Length': String(Buffer.byteLength(reply.body)) };
    if (requestId) headers['X-TC-RequestId'] = requestId;
    if (this.#closing) res.shouldKeepAlive = false;
    res.writeHead(reply.status, headers).end(reply.body);
  }
}

/** The rate-limit bucket of an account's action in one API version (or `v2`). */
const rateKey = (appId: number, scope: string, action: string): string => `${appId} ${scope}:${action}`;

/** RequestLimitExceeded, without a stack (a storm's every refusal would capture one). */
const rateLimited = (action: string, perSecond: number): ApiError =>
  ApiError.withoutStack('RequestLimitExceeded', `Requests to ${action} exceed ${perSecond} per second for this account; wait and retry.`);

/** A request header given once, else undefined. */
const headerOf = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
};

export { clientIp };
