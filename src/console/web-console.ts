// The web console at /console/: routing, sessions, CSRF and origin checks, security headers, static
// assets. Every purge and history read goes through the EdgeOne action handlers the API runs, with an
// ActionContext for the signed-in account, so validation messages, quotas and tenant walls are the API's.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ActionContext, ActionHandler } from '../actions/context.ts';
import { createPrefetchTask } from '../actions/teo/create-prefetch-task.ts';
import { createPurgeTask } from '../actions/teo/create-purge-task.ts';
import { describeContentQuota } from '../actions/teo/describe-content-quota.ts';
import { describePrefetchTasks } from '../actions/teo/describe-prefetch-tasks.ts';
import { describePurgeTasks } from '../actions/teo/describe-purge-tasks.ts';
import type { AccountConfig, Config } from '../config/schema.ts';
import type { FanoutHub } from '../fanout/fanout-hub.ts';
import type { Directory } from '../purge/directory.ts';
import type { PurgeService } from '../purge/purge-service.ts';
import { quotaDay } from '../purge/quotas.ts';
import { readBody } from '../protocols/http-body.ts';
import { clientIp } from '../protocols/request-parts.ts';
import { constantTimeEqual, secretsEqual } from '../protocols/hmac-signature.ts';
import type { Clock } from '../shared/clock.ts';
import { addressKey } from '../shared/connection-limits.ts';
import { ApiError } from '../shared/errors.ts';
import type { Logger } from '../shared/logger.ts';
import { TokenBuckets } from '../shared/token-bucket.ts';
import type { TaskStore } from '../store/task-store.ts';
import { ASSETS } from './assets.ts';
import { fleetFragment, fleetPage, type FleetRow } from './fleet-page.ts';
import { historyPage, historyParams, readHistoryFilters, type ApiTask } from './history-page.ts';
import type { SafeHtml } from './html.ts';
import { LiveEventStreams } from './live-events.ts';
import { jobFragment, jobNotFound, jobPage, jobSettled, type JobSnapshot } from './job-page.ts';
import type { Viewer } from './layout.ts';
import { emptyPurgeForm, purgePage, purgeParams, readPurgeForm } from './purge-page.ts';
import { quotaPage, type ApiQuota } from './quota-page.ts';
import { csrfTokenValid, digestSecret, readCookie, sameOrigin, sessionCookie, SessionStore, type Session, type SessionLimits } from './sessions.ts';
import { messagePage, signInPage } from './sign-in-page.ts';
import { SignInThrottle, type ThrottleLimits } from './sign-in-throttle.ts';

export interface WebConsoleDeps {
  /** Read per request: a reloaded configuration (SIGHUP) applies at once, and sessions of removed or rotated keys end. */
  readonly directory: () => Directory;
  readonly purge: () => PurgeService;
  readonly config: () => Readonly<Config>;
  readonly store: TaskStore;
  readonly hub: FanoutHub;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Tests shorten these. */
  readonly sessions?: Partial<SessionLimits>;
  readonly signIn?: Partial<ThrottleLimits> & { readonly failureDelayMs?: number };
  /** The API's rate limit (shared by replicas on one store); default: buckets in this process. */
  readonly rateLimits?: { take(key: string, perSecond: number, burst: number): boolean | Promise<boolean> };
}

const COOKIE = 'edgepurge_session';

/**
 * One policy for every console answer (STYLE 16a): scripts and styles only from /console/assets/, no
 * inline script or style, no framing, forms post only to us.
 */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'same-origin',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Where sign-in may send the browser back to: console pages only (no open redirect). */
const safeNext = (v: string | null | undefined): string | undefined => (v && /^\/console\/[A-Za-z0-9/_-]{0,200}$/.test(v) && !v.includes('//') ? v : undefined);

const isTls = (req: IncomingMessage): boolean => (req.socket as TLSSocket).encrypted === true;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface SignedIn {
  readonly cookie: string;
  readonly session: Session;
  readonly account: AccountConfig;
  readonly viewer: Viewer;
}

type ApiFailure = { code: string; message: string };

export class WebConsole {
  readonly #d: WebConsoleDeps;
  readonly #sessions: SessionStore;
  readonly #throttle: SignInThrottle;
  readonly #buckets: NonNullable<WebConsoleDeps['rateLimits']>;
  readonly #events: LiveEventStreams;
  readonly #unsubscribe: Array<() => void>;

  constructor(deps: WebConsoleDeps) {
    this.#d = deps;
    this.#sessions = new SessionStore(deps.clock, deps.sessions);
    this.#throttle = new SignInThrottle(deps.clock, deps.signIn);
    this.#buckets = deps.rateLimits ?? new TokenBuckets(deps.clock);
    this.#events = new LiveEventStreams(deps.clock, { maxLifetimeMs: 2 * deps.config().fanout.taskTimeoutMs + 60_000 });
    this.#unsubscribe = [deps.hub.onSettled(() => this.#events.wake('jobs')), deps.hub.onAck(() => this.#events.wake('fleet'))];
  }

  /** Ends live streams; sessions die with the process. Idempotent. */
  close(): void {
    for (const u of this.#unsubscribe) u();
    this.#events.close();
  }

  /** Serves /console and everything under /console/; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = URL.parse(req.url ?? '/', 'http://console');
    const path = url?.pathname ?? '/';
    if (path !== '/console' && !path.startsWith('/console/')) return false;
    this.#route(req, res, path, url!.searchParams).catch((e: unknown) => {
      this.#d.logger.error('console request failed', { path, error: e });
      if (!res.headersSent) this.#html(res, 500, messagePage('Something went wrong', 'The request failed on the server; it has been logged. Try again.'));
      else res.destroy();
    });
    return true;
  }

  async #route(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const asset = /^\/console\/assets\/([a-z.-]+)$/.exec(path);
    if (asset) return this.#asset(req, res, asset[1]!, query.get('v'));
    if (path === '/console/sign-in') {
      if (method === 'POST') return this.#signIn(req, res);
      return this.#only(res, method, 'GET', () => {
        if (this.#signedIn(req)) return this.#redirect(res, '/console/history');
        this.#html(res, 200, signInPage(query.get('next') ? { next: safeNext(query.get('next')) } : {}));
      });
    }
    const job = /^\/console\/jobs\/([a-z0-9]{1,64})(\/events)?$/.exec(path);
    const fleetEvents = path === '/console/fleet/events';
    const known = ['/console', '/console/', '/console/history', '/console/purge', '/console/quota', '/console/fleet', '/console/sign-out'].includes(path) || job || fleetEvents;
    if (!known) return this.#html(res, 404, messagePage('Not found', `There is no console page ${path}.`));
    const me = this.#signedIn(req);
    if (!me) {
      if (job?.[2] || fleetEvents) return this.#text(res, 401, 'sign in first');
      if (method !== 'GET') return this.#redirect(res, '/console/sign-in');
      const next = safeNext(path);
      return this.#redirect(res, next && path !== '/console/' ? `/console/sign-in?next=${encodeURIComponent(next)}` : '/console/sign-in');
    }
    if (path === '/console' || path === '/console/') return this.#redirect(res, '/console/history');
    if (path === '/console/sign-out') return this.#only(res, method, 'POST', () => this.#mutation(req, res, me, () => this.#signOut(req, res, me)));
    if (path === '/console/history') return this.#only(res, method, 'GET', () => this.#history(req, res, me, query));
    if (path === '/console/quota') return this.#only(res, method, 'GET', () => this.#quota(req, res, me));
    if (path === '/console/fleet') return this.#only(res, method, 'GET', () => this.#fleet(res, me));
    if (fleetEvents) return this.#only(res, req.method ?? 'GET', 'GET', () => this.#fleetEvents(res, me));
    if (path === '/console/purge') {
      if (method === 'POST') return this.#mutation(req, res, me, (body) => this.#submit(req, res, me, body));
      return this.#only(res, method, 'GET', () => this.#html(res, 200, purgePage(me.viewer, me.account, emptyPurgeForm(me.account))));
    }
    const jobId = job![1]!;
    // A stream has no end to send a HEAD answer at: GET only.
    if (job![2]) return this.#only(res, req.method ?? 'GET', 'GET', () => this.#jobEvents(res, me, jobId));
    return this.#only(res, method, 'GET', () => this.#job(res, me, jobId));
  }

  async #only(res: ServerResponse, method: string, allowed: 'GET' | 'POST', run: () => unknown): Promise<void> {
    if (method !== allowed) return void res.writeHead(405, { ...SECURITY_HEADERS, Allow: allowed === 'GET' ? 'GET, HEAD' : 'POST', 'Content-Type': 'text/plain' }).end(`${allowed} only\n`);
    await run();
  }

  // ---- sessions ----

  /** The request's live session and its account, re-checked against the current configuration. */
  #signedIn(req: IncomingMessage): SignedIn | undefined {
    const cookie = readCookie(req.headers.cookie, COOKIE);
    const session = this.#sessions.get(cookie);
    if (!cookie || !session) return undefined;
    const cred = this.#d.directory().credential(session.secretId);
    if (!cred || cred.account.appId !== session.appId || !constantTimeEqual(digestSecret(cred.secretKey), session.keyDigest)) {
      // The key was removed or rotated (SIGHUP): the session ends with it.
      this.#sessions.destroy(cookie);
      return undefined;
    }
    const viewer: Viewer = {
      accountName: cred.account.name ?? `AppId ${cred.account.appId}`,
      appId: cred.account.appId,
      secretId: session.secretId,
      csrfToken: session.csrfToken,
      timezone: this.#d.config().server.timezone,
    };
    return { cookie, session, account: cred.account, viewer };
  }

  async #signIn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // No session yet, so no CSRF token: the Origin check (and SameSite on what follows) stops login CSRF.
    if (!sameOrigin(req.headers, isTls(req))) return this.#forbidden(res);
    const body = await this.#form(req, res);
    if (!body) return;
    const secretId = (body.get('secretId') ?? '').trim();
    const secretKey = body.get('secretKey') ?? '';
    const next = safeNext(body.get('next'));
    const keys = [`ip ${addressKey(req.socket.remoteAddress)}`, `id ${secretId.slice(0, 128)}`];
    const wait = this.#throttle.retryAfterMs(keys);
    if (wait > 0) {
      const s = Math.ceil(wait / 1000);
      return this.#html(res, 429, signInPage({ secretId, ...(next ? { next } : {}), error: `Too many failed sign-ins from this address or for this SecretId. Try again in ${s} s.` }), { 'Retry-After': String(s) });
    }
    const cred = this.#d.directory().credential(secretId);
    // Compared even for an unknown SecretId, so the answer time does not tell which SecretIds exist.
    const keyMatches = secretsEqual(cred?.secretKey ?? '', secretKey);
    if (!cred || !keyMatches || secretKey === '') {
      this.#throttle.fail(keys);
      // Every failure costs the guesser time, on top of the brake above.
      await sleep(this.#d.signIn?.failureDelayMs ?? 1000);
      return this.#html(res, 401, signInPage({ secretId, ...(next ? { next } : {}), error: 'Unknown SecretId or wrong SecretKey.' }));
    }
    // A fresh session id at every sign-in (no session fixation); an old session of this browser ends.
    this.#sessions.destroy(readCookie(req.headers.cookie, COOKIE));
    const { cookie } = this.#sessions.create({ appId: cred.account.appId, secretId, secretKey: cred.secretKey });
    this.#redirect(res, next ?? '/console/history', { 'Set-Cookie': sessionCookie(COOKIE, cookie, isTls(req), this.#sessionMaxAgeMs()) });
  }

  #sessionMaxAgeMs(): number {
    return this.#d.sessions?.maxAgeMs ?? 12 * 3_600_000;
  }

  #signOut(req: IncomingMessage, res: ServerResponse, me: SignedIn): void {
    this.#sessions.destroy(me.cookie);
    this.#html(res, 200, signInPage({ notice: 'Signed out.' }), { 'Set-Cookie': sessionCookie(COOKIE, undefined, isTls(req), 0) });
  }

  /**
   * Every state-changing request: same origin (a cross-site page cannot forge Origin), then the session's
   * CSRF token in the form (SameSite=Strict already keeps the cookie off cross-site requests).
   */
  async #mutation(req: IncomingMessage, res: ServerResponse, me: SignedIn, run: (body: URLSearchParams) => Promise<void> | void): Promise<void> {
    if (!sameOrigin(req.headers, isTls(req))) return this.#forbidden(res);
    const body = await this.#form(req, res);
    if (!body) return;
    if (!csrfTokenValid(me.session, body.get('csrf'))) return this.#forbidden(res);
    await run(body);
  }

  #forbidden(res: ServerResponse): void {
    this.#html(res, 403, messagePage('Request refused', 'This form came from another site or from an expired page. Reload the page and try again.'));
  }

  /** The urlencoded form body, or undefined after answering a refusal. */
  async #form(req: IncomingMessage, res: ServerResponse): Promise<URLSearchParams | undefined> {
    const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') {
      this.#html(res, 415, messagePage('Unsupported form', 'The console takes forms as application/x-www-form-urlencoded.'));
      return undefined;
    }
    try {
      return new URLSearchParams((await readBody(req, this.#d.config().server.maxBodyBytes)).toString('utf8'));
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      res.shouldKeepAlive = false;
      this.#html(res, e.code === 'RequestSizeLimitExceeded' ? 413 : 400, messagePage('Form refused', e.message));
      return undefined;
    }
  }

  // ---- pages ----

  /** An action context for the signed-in account, exactly what the API builds for a signed request. */
  #context(req: IncomingMessage, me: SignedIn): ActionContext {
    const config = this.#d.config();
    return {
      account: me.account,
      secretId: me.session.secretId,
      clientIp: clientIp(req.socket.remoteAddress ?? ''),
      purge: this.#d.purge(),
      store: this.#d.store,
      directory: this.#d.directory(),
      clock: this.#d.clock,
      timezone: config.server.timezone,
    };
  }

  /** Runs an API action under the account's rate limit; an ApiError comes back as its code and message. */
  async #call(ctx: ActionContext, action: string, handler: ActionHandler, params: Record<string, unknown>): Promise<{ data: Record<string, unknown> } | { error: ApiFailure }> {
    try {
      const rl = ctx.account.rateLimit;
      if (rl !== false && !(await this.#buckets.take(`${ctx.account.appId} console:${action}`, rl.perSecond, rl.burst))) {
        throw new ApiError('RequestLimitExceeded', `Requests to ${action} exceed ${rl.perSecond} per second for this account; wait and retry.`);
      }
      return { data: await handler(ctx, params) };
    } catch (e) {
      if (e instanceof ApiError) return { error: { code: e.code, message: e.message } };
      this.#d.logger.error('console action failed', { action, error: e });
      return { error: { code: 'InternalError', message: 'The server failed to process the request; it has been logged.' } };
    }
  }

  async #history(req: IncomingMessage, res: ServerResponse, me: SignedIn, query: URLSearchParams): Promise<void> {
    const tz = me.viewer.timezone;
    const filters = readHistoryFilters(query, this.#d.clock.now(), tz);
    const { prefetch, params } = historyParams(filters, tz);
    const out = await this.#call(this.#context(req, me), prefetch ? 'DescribePrefetchTasks' : 'DescribePurgeTasks', prefetch ? describePrefetchTasks : describePurgeTasks, params);
    const result = 'error' in out ? out : { total: out.data.TotalCount as number, tasks: out.data.Tasks as ApiTask[] };
    this.#html(res, 'error' in out ? 400 : 200, historyPage(me.viewer, me.account, filters, result));
  }

  async #submit(req: IncomingMessage, res: ServerResponse, me: SignedIn, body: URLSearchParams): Promise<void> {
    const form = readPurgeForm(body);
    const { action, params } = purgeParams(form);
    const out = await this.#call(this.#context(req, me), action, action === 'CreatePrefetchTask' ? createPrefetchTask : createPurgeTask, params);
    if ('error' in out) return this.#html(res, 400, purgePage(me.viewer, me.account, form, out.error));
    const failed = (out.data.FailedList as Array<{ Reason: string; Targets: string[] }>) ?? [];
    if (failed.length) me.session.flash = `Refused, not purged: ${failed.map((f) => `${f.Reason}: ${f.Targets.join(', ')}`).join('; ')}`;
    this.#redirect(res, `/console/jobs/${String(out.data.JobId)}`);
  }

  async #quota(req: IncomingMessage, res: ServerResponse, me: SignedIn): Promise<void> {
    const out = await this.#call(this.#context(req, me), 'DescribeContentQuota', describeContentQuota, { ZoneId: '*' });
    if ('error' in out) return this.#html(res, 500, messagePage('Quota unavailable', `${out.error.code}: ${out.error.message}`));
    const quotas = [...(out.data.PurgeQuota as ApiQuota[]), ...(out.data.PrefetchQuota as ApiQuota[])];
    this.#html(res, 200, quotaPage(me.viewer, quotaDay(this.#d.clock.now(), me.viewer.timezone), quotas));
  }

  /** The nodes that serve the account's domains, with their lag. */
  async #fleetRows(me: SignedIn): Promise<{ lastSeq: number; rows: FleetRow[] }> {
    const mine = new Set(me.account.zones.flatMap((z) => z.domains.map((d) => d.host)));
    const nodes = this.#d.hub.fleet().filter((s) => !s.node.hosts || s.node.hosts.some((h) => mine.has(h)));
    const lastSeq = await this.#d.store.lastSeq();
    // The lag as the admin fleet view computes it (one log read per distinct applied seq).
    const lag = new Map((await this.#d.hub.nodeStatuses()).map((s) => [s.nodeId, s]));
    const rows: FleetRow[] = nodes.map((status) => ({ status, lagEntries: lag.get(status.nodeId)?.lagEntries ?? 0, lagMs: lag.get(status.nodeId)?.lagMs ?? 0 }));
    return { lastSeq, rows };
  }

  async #fleet(res: ServerResponse, me: SignedIn): Promise<void> {
    const { lastSeq, rows } = await this.#fleetRows(me);
    this.#html(res, 200, fleetPage(me.viewer, lastSeq, rows));
  }

  /** The fleet page's stream: re-rendered on every ack (at most 4 times a second) and every second (leases count down). */
  async #fleetEvents(res: ServerResponse, me: SignedIn): Promise<void> {
    const refusal = this.#events.refusal(me.session.csrfToken);
    if (refusal) return this.#text(res, 429, refusal);
    await this.#events.serve(res, me.session.csrfToken, {
      topic: 'fleet',
      event: 'fleet',
      minGapMs: 250,
      source: {
        load: async () => {
          if (!this.#sessions.get(me.cookie)) return null;
          const { lastSeq, rows } = await this.#fleetRows(me);
          return { fragment: fleetFragment(me.viewer, lastSeq, rows).text, settled: false };
        },
      },
    }, SECURITY_HEADERS);
  }

  /** The job with every task's per-node progress, or null when the account has no such job (DESIGN invariant 7). */
  async #snapshot(appId: number, jobId: string): Promise<JobSnapshot | null> {
    const job = await this.#d.store.getJob(appId, jobId);
    if (!job) return null;
    const [tasks, reports] = await Promise.all([this.#d.store.jobTasks(appId, jobId), this.#d.store.jobNodeReports(appId, jobId)]);
    const views = await this.#d.hub.jobViews(tasks, reports);
    return { job, tasks: tasks.map((task) => ({ task, nodes: views.get(task.id) ?? [] })) };
  }

  async #job(res: ServerResponse, me: SignedIn, jobId: string): Promise<void> {
    const snap = await this.#snapshot(me.account.appId, jobId);
    if (!snap) return this.#html(res, 404, jobNotFound(me.viewer, jobId));
    const flash = me.session.flash;
    delete me.session.flash;
    // The job's webhook delivery log (issue 10): read on page load; the live stream carries tasks only.
    const deliveries = (await this.#d.store.webhookDeliveries?.({ appId: me.account.appId, jobId, limit: 50 })) ?? [];
    this.#html(res, 200, jobPage(me.viewer, snap, flash, deliveries));
  }

  async #jobEvents(res: ServerResponse, me: SignedIn, jobId: string): Promise<void> {
    const appId = me.account.appId;
    if (!(await this.#d.store.getJob(appId, jobId))) return this.#text(res, 404, `no job ${jobId} in this account`);
    const refusal = this.#events.refusal(me.session.csrfToken);
    if (refusal) return this.#text(res, 429, refusal);
    const tz = me.viewer.timezone;
    await this.#events.serve(res, me.session.csrfToken, {
      topic: 'jobs',
      event: 'job',
      source: {
        load: async () => {
          // The session may end (sign-out, key rotated) while the stream is open: then the stream ends too.
          const snap = this.#sessions.get(me.cookie) ? await this.#snapshot(appId, jobId) : null;
          return snap && { fragment: jobFragment(snap, tz).text, settled: jobSettled(snap) };
        },
      },
    }, SECURITY_HEADERS);
  }

  // ---- answers ----

  #asset(req: IncomingMessage, res: ServerResponse, name: string, version: string | null): void {
    const a = ASSETS.get(name);
    if (!a) return this.#text(res, 404, 'no such asset');
    const etag = `"${a.version}"`;
    // A hashed URL never changes content: cache it for good. Anything else is revalidated.
    const cache = version === a.version ? 'public, max-age=31536000, immutable' : 'no-cache';
    const headers = { ...SECURITY_HEADERS, 'Content-Type': a.type, ETag: etag, 'Cache-Control': cache };
    if (req.headers['if-none-match'] === etag) return void res.writeHead(304, headers).end();
    res.writeHead(200, { ...headers, 'Content-Length': String(a.body.length) }).end(a.body);
  }

  #html(res: ServerResponse, status: number, page: SafeHtml, headers: Readonly<Record<string, string>> = {}): void {
    const body = Buffer.from(page.text, 'utf8');
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': String(body.length), ...headers }).end(body);
  }

  #text(res: ServerResponse, status: number, text: string): void {
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' }).end(`${text}\n`);
  }

  /** 303 See Other: the browser follows with a GET (Post/Redirect/Get). */
  #redirect(res: ServerResponse, location: string, headers: Readonly<Record<string, string>> = {}): void {
    res.writeHead(303, { ...SECURITY_HEADERS, Location: location, 'Cache-Control': 'no-store', 'Content-Length': '0', ...headers }).end();
  }
}
