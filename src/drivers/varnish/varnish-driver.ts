// The Varnish driver: applies purge-log entries to one varnishd running edgepurge.vcl — URL purges
// through vmod_purge, tags through xkey (both over HTTP, authenticated by a token), prefix/host/all
// as lurker-friendly bans through the admin CLI — and keeps the lease Varnish fences itself with.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import type { Logger } from '../../shared/logger.ts';
import { silentLogger } from '../../shared/logger.ts';
import { DriverError, type DriverCommand, type DriverDropReport, type DriverPrefetchOutcome, type DriverReport, type EdgeDriver } from '../edge-driver.ts';
import { canonicalHost, parseTargetUrl, purgeHostTargets } from '../purge-target.ts';
import { EDGEPURGE_VCL_VERSION } from './edgepurge-vcl.ts';
import { pipeline, type PipelinedAnswer, type PipelinedRequest } from './pipelined-http.ts';
import { cliQuote, VarnishAdmin } from './varnish-admin.ts';

export interface VarnishDriverOptions {
  /** Varnish's HTTP listener (-a), e.g. http://127.0.0.1:6081. Purges and prefetches go here. */
  readonly url: string;
  /** Varnish's admin listener (-T), host:port, e.g. 127.0.0.1:6082. Bans and the token go here. */
  readonly admin: string;
  /** The secret file varnishd was started with (-S), e.g. /etc/varnish/secret. */
  readonly adminSecretFile: string;
  /** Bound on every request to Varnish (default 5 s); loading the token VCL gets max(this, 60 s). */
  readonly timeoutMs?: number;
  /** Connections applyBatch pipelines its URL and tag purges over, 32 requests in flight on each (default 4). */
  readonly batchConnections?: number;
  readonly logger?: Logger;
}

interface HttpAnswer {
  readonly status: number;
  readonly reason: string;
  readonly headers: IncomingHttpHeaders;
}

/** An answer from node:http or from the pipeline. */
type Answer = HttpAnswer | PipelinedAnswer;

/** A purge that is one authenticated request to edgepurge.vcl. */
interface AgentPlan {
  readonly kind: 'agent';
  /** X-EdgePurge-Do */
  readonly what: 'url' | 'tag';
  readonly path: string;
  readonly host?: string;
  readonly extra: Readonly<Record<string, string>>;
}

/** Every PCRE metacharacter escaped, so a path or host matches only itself in a ban regex. */
export const regexEscape = (s: string): string => s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');

/**
 * A header value as bytes: node writes strings as latin1, so UTF-8 text (a tag) is passed byte for byte
 * the way an origin would have sent it in Cache-Tag.
 */
const bytes = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

const BAN_IS_HARD =
  'Varnish bans are hard: the matched objects were removed and will be refetched, not revalidated (no soft ban in Varnish)';

/** The xkey key edgepurge.vcl stores for a tag on a host. */
export const tagKey = (host: string, tag: string): string => `ep:${canonicalHost(host)}#${tag}`;

export class VarnishDriver implements EdgeDriver {
  readonly name = 'varnish';
  readonly fencesItself = true;
  readonly #o: VarnishDriverOptions;
  readonly #url: URL;
  readonly #agent: http.Agent;
  readonly #log: Logger;
  readonly #timeoutMs: number;
  /** Sent in X-EdgePurge-Token; fresh per driver, pushed into Varnish through the admin CLI. */
  readonly #token = randomBytes(24).toString('hex');
  #admin: VarnishAdmin | undefined;
  #pushing: Promise<void> | undefined;
  #closed = false;

  constructor(options: VarnishDriverOptions) {
    this.#o = options;
    this.#url = new URL(options.url);
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#log = options.logger ?? silentLogger;
    // Idle sockets are dropped before Varnish's timeout_idle (5 s) closes them under us.
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: 8, timeout: 4000 });
  }

  /** Checks the VCL answers, pushes the token through the admin CLI, and checks the VCL accepts it. */
  async start(): Promise<void> {
    const a = await this.#send('PURGE', '/', this.#controlHeaders('probe'));
    this.#checkVcl(a);
    await this.#pushToken();
    await this.#agentRequest('probe');
    await this.#ban(PRE_V3_OBJECTS);
    this.#log.info('varnish driver ready', { url: this.#o.url, admin: this.#o.admin });
  }

  async apply(cmd: DriverCommand): Promise<DriverReport> {
    const plan = this.#plan(cmd);
    if (plan.kind === 'run') return plan.run();
    const a = await this.#agentRequest(plan.what, plan.path, plan.host, plan.extra);
    return { executedAs: cmd.method, ...matched(a) };
  }

  /**
   * Applies purges (no prefetch_url) as if one by one: purges commute — each only removes or expires
   * objects — so the URL and tag purges are pipelined over a few connections (HTTP/1.1 pipelining: far
   * less CPU per purge than one request/response each) while the bans go through the admin CLI.
   */
  async applyBatch(commands: readonly DriverCommand[]): Promise<DriverReport[]> {
    if (commands.some((c) => c.type === 'prefetch_url')) throw new DriverError('applyBatch takes purges only; prefetch_url goes through prefetch()', { retryable: false });
    const reports = new Array<DriverReport>(commands.length);
    const viaHttp: Array<{ readonly i: number; readonly plan: AgentPlan }> = [];
    const runs: Array<{ readonly i: number; readonly run: () => Promise<DriverReport> }> = [];
    commands.forEach((c, i) => {
      const plan = this.#plan(c);
      if (plan.kind === 'run') runs.push({ i, run: plan.run });
      else viaHttp.push({ i, plan });
    });
    const bans = (async () => {
      for (const { i, run } of runs) reports[i] = await run();
    })();
    const purges = (async () => {
      if (viaHttp.length === 0) return;
      for (let attempt = 0; ; attempt++) {
        const answers = await this.#pipeline(viaHttp.map(({ plan }) => ({ method: 'PURGE', path: plan.path, headers: this.#controlHeaders(plan.what, plan.host, plan.extra) })));
        // Varnish restarted (no token): push it and send the batch again (purges are idempotent).
        if (attempt === 0 && answers.some((a) => a.status === 403 && header(a, 'x-edgepurge-reason') === 'token-not-set')) {
          await this.#pushToken();
          continue;
        }
        answers.forEach((a, k) => {
          const { i, plan } = viaHttp[k]!;
          this.#accept(a, plan.what);
          reports[i] = { executedAs: commands[i]!.method, ...matched(a) };
        });
        return;
      }
    })();
    // Both finish before we answer, so a rejection leaves nothing in flight.
    const [b, p] = await Promise.allSettled([bans, purges]);
    for (const r of [p, b]) if (r.status === 'rejected') throw r.reason;
    return reports;
  }

  /** What a purge becomes: an authenticated request to edgepurge.vcl, or something to run (bans, no-ops). */
  #plan(cmd: DriverCommand): AgentPlan | { readonly kind: 'run'; readonly run: () => Promise<DriverReport> } {
    const run = (f: () => Promise<DriverReport>) => ({ kind: 'run' as const, run: f });
    const soft: Record<string, string> = cmd.method === 'invalidate' ? { 'x-edgepurge-soft': '1' } : {};
    switch (cmd.type) {
      case 'purge_url': {
        const t = parseTargetUrl(cmd.target);
        if (t === undefined) return run(() => this.#banHosts(cmd.hosts.map(canonicalHost), cmd.method, 'the target is not a URL: purged its hosts instead'));
        return { kind: 'agent', what: 'url', path: t.path, host: t.host, extra: soft };
      }
      case 'purge_prefix': {
        const t = parseTargetUrl(cmd.target);
        if (t === undefined) return run(() => this.#banHosts(cmd.hosts.map(canonicalHost), cmd.method, 'the target is not a URL: purged its hosts instead'));
        if (t.path === '/') return run(() => this.#banHosts([t.host], cmd.method));
        return run(async () => {
          await this.#ban(`obj.http.X-EdgePurge-Key ~ ${cliQuote(`^${regexEscape(t.host)}${KEY_SEPARATOR}${regexEscape(t.path)}`)}`);
          return banReport(cmd.method);
        });
      }
      case 'purge_host':
        return run(() => this.#banHosts(purgeHostTargets(cmd.target, cmd.hosts), cmd.method));
      case 'purge_all':
        return run(() => this.#banHosts(cmd.hosts.map(canonicalHost), cmd.method));
      case 'purge_cache_tag': {
        if (cmd.hosts.length === 0) return run(async () => ({ executedAs: cmd.method, matched: 0, note: 'no hosts to purge the tag on' }));
        if (/[\s,]/.test(cmd.target) || cmd.target === '') {
          // edgepurge.vcl splits Cache-Tag / Surrogate-Key on whitespace and commas: no stored key has them.
          return run(async () => ({ executedAs: cmd.method, matched: 0, note: 'a tag with whitespace or commas cannot be an xkey key: nothing can carry it' }));
        }
        const keys = cmd.hosts.map((h) => tagKey(h, cmd.target)).join(' ');
        return { kind: 'agent', what: 'tag', path: '/', extra: { 'x-edgepurge-keys': bytes(keys), ...soft } };
      }
      case 'prefetch_url':
        return run(() => Promise.reject(new DriverError('prefetch_url goes through prefetch(), not apply()', { retryable: false })));
    }
  }

  async prefetch(cmd: DriverCommand): Promise<DriverPrefetchOutcome> {
    const t = parseTargetUrl(cmd.target);
    if (t === undefined) return { ok: false, failType: 'originPullFailed', failMessage: `not a URL: ${cmd.target}` };
    const headers: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(cmd.headers ?? {})) {
      if (!/^(host|connection|content-length|transfer-encoding|keep-alive|upgrade|te|trailer|x-edgepurge-.*)$/i.test(k)) headers[k] = bytes(v);
    }
    headers.host = t.host;
    const a = await this.#send('GET', t.path, headers);
    if (a.status >= 400) return { ok: false, failType: 'originPullFailed', failMessage: `Varnish answered ${a.status} ${a.reason} for ${cmd.target}` };
    return { ok: true };
  }

  /** Bans every object (lurker-friendly: it tests only obj.*, so the ban lurker retires it). Varnish does not count what a ban matches. */
  async dropAll(): Promise<DriverDropReport> {
    await this.#ban('obj.status != 0');
    return {};
  }

  async renewLease(untilMs: number): Promise<void> {
    await this.#agentRequest('lease', '/', undefined, { 'x-edgepurge-lease': (untilMs / 1000).toFixed(3) });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#agent.destroy();
    await this.#admin?.close();
  }

  // ---- bans (admin CLI) ----

  async #banHosts(hosts: readonly string[], method: DriverCommand['method'], why?: string): Promise<DriverReport> {
    const unique = [...new Set(hosts.filter((h) => h !== ''))];
    if (unique.length === 0) return { executedAs: method, matched: 0, note: why ?? 'no hosts to purge' };
    await this.#ban(hostCondition(unique));
    const r = banReport(method);
    return why === undefined ? r : { ...r, note: r.note === undefined ? why : `${why}; ${r.note}` };
  }

  async #ban(expression: string): Promise<void> {
    const a = await this.#adminClient().command(`ban ${expression}`, this.#timeoutMs);
    if (a.status !== 200) {
      // 300 (CLIS_CANT): the child is not running — it comes back; anything else is our bug.
      throw new DriverError(`varnishd refused \`ban ${expression}\` (${a.status}): ${a.body.trim()}`, { retryable: a.status === 300 || a.status >= 400 });
    }
  }

  #adminClient(): VarnishAdmin {
    if (this.#closed) throw new DriverError('the Varnish driver is closed', { retryable: false });
    if (this.#admin === undefined) {
      const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(this.#o.admin);
      if (m === null) throw new DriverError(`admin address must be host:port, got ${JSON.stringify(this.#o.admin)}`, { retryable: false });
      const secretFile = this.#o.adminSecretFile;
      // The secret is read on each connect, so a corrected file is picked up without a restart.
      this.#admin = new VarnishAdmin({ host: m[1]!, port: Number(m[2]), secret: () => readSecret(secretFile), secretFile, timeoutMs: Math.max(this.#timeoutMs, 10_000) });
    }
    return this.#admin;
  }

  // ---- the token ----

  /** Pushes this driver's token into the vmod_var global through a throw-away VCL's vcl_init. */
  #pushToken(): Promise<void> {
    this.#pushing ??= (async () => {
      const admin = this.#adminClient();
      const name = `edgepurge_token_${randomBytes(4).toString('hex')}`;
      const vcl = `vcl 4.1;\nimport var;\nbackend edgepurge_none none;\nsub vcl_init {\n    var.global_set("edgepurge.token", "${this.#token}");\n}\n`;
      const loaded = await admin.command(`vcl.inline ${name} ${cliQuote(vcl)}`, Math.max(this.#timeoutMs, 60_000));
      if (loaded.status !== 200) {
        throw new DriverError(
          `varnishd could not load the token VCL (${loaded.status}): ${loaded.body.trim().slice(0, 300)} — is varnish-modules (vmod_var) installed?`,
          { retryable: loaded.status === 300 },
        );
      }
      const discarded = await admin.command(`vcl.discard ${name}`);
      if (discarded.status !== 200) this.#log.warn('could not discard the token VCL', { name, status: discarded.status, body: discarded.body.trim() });
    })().finally(() => {
      this.#pushing = undefined;
    });
    return this.#pushing;
  }

  // ---- HTTP ----

  #controlHeaders(what: string, host?: string, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
    return { host: host ?? 'edgepurge.invalid', 'x-edgepurge-token': this.#token, 'x-edgepurge-do': what, ...extra };
  }

  /**
   * One authenticated request to edgepurge.vcl. When Varnish has no token (it restarted), the token is
   * pushed again and the request retried once; any other refusal throws with the fix.
   */
  async #agentRequest(what: string, path = '/', host?: string, extra: Record<string, string> = {}): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      const a = await this.#send('PURGE', path, this.#controlHeaders(what, host, extra));
      if (attempt === 0 && a.status === 403 && header(a, 'x-edgepurge-reason') === 'token-not-set' && header(a, 'x-edgepurge-vcl') !== undefined) {
        this.#log.info('varnish has no EdgePurge token (restarted?): pushing it again', { url: this.#o.url });
        await this.#pushToken();
        continue;
      }
      this.#accept(a, what);
      return a;
    }
  }

  /** Returns for a 200 from edgepurge.vcl; otherwise throws with the fix. */
  #accept(a: Answer, what: string): void {
    this.#checkVcl(a);
    if (a.status === 200) return;
    const reason = header(a, 'x-edgepurge-reason');
    if (a.status === 403 && reason === 'token-mismatch') {
      throw new DriverError(
        `Varnish at ${this.#o.url} holds another EdgePurge token: a second agent (or driver) has taken this Varnish over. ` +
          'Run exactly one agent per Varnish, then restart this one (it pushes its token on start)',
        { retryable: false },
      );
    }
    if (a.status === 403 && reason === 'token-not-set') {
      throw new DriverError(`Varnish at ${this.#o.url} lost the EdgePurge token again right after it was pushed (restarting?)`, { retryable: true });
    }
    throw new DriverError(`Varnish at ${this.#o.url} refused ${what}: ${a.status} ${a.reason}`, { retryable: false });
  }

  /** Pipelined requests to Varnish (applyBatch); I/O failures and timeouts are retryable. */
  async #pipeline(requests: readonly PipelinedRequest[]): Promise<PipelinedAnswer[]> {
    if (this.#closed) throw new DriverError('the Varnish driver is closed', { retryable: false });
    try {
      return await pipeline(requests, {
        host: this.#url.hostname,
        port: Number(this.#url.port || 80),
        connections: Math.max(1, this.#o.batchConnections ?? 4),
        timeoutMs: this.#timeoutMs,
      });
    } catch (e) {
      throw new DriverError(`cannot reach Varnish at ${this.#o.url}: ${e instanceof Error ? e.message : String(e)}`, { retryable: true, cause: e });
    }
  }

  /** Throws unless the answer comes from edgepurge.vcl of the version this driver speaks. */
  #checkVcl(a: Answer): void {
    if (a.status >= 500) throw new DriverError(`Varnish at ${this.#o.url} answered ${a.status} ${a.reason}`, { retryable: true });
    const version = header(a, 'x-edgepurge-vcl');
    if (version === undefined) {
      throw new DriverError(
        `Varnish at ${this.#o.url} answered ${a.status} ${a.reason} without X-EdgePurge-Vcl: edgepurge.vcl is not active. ` +
          'Add `include "edgepurge.vcl";` right after `vcl 4.1;` (before your own subroutines; `edgepurge agent vcl` prints the file) and reload the VCL',
        { retryable: false },
      );
    }
    if (version !== EDGEPURGE_VCL_VERSION) {
      throw new DriverError(
        `Varnish runs edgepurge.vcl version ${version}, this agent needs ${EDGEPURGE_VCL_VERSION}: replace the file with \`edgepurge agent vcl\`'s output and reload the VCL`,
        { retryable: false },
      );
    }
  }

  /** One request, bounded by the timeout; the body is read and dropped. Network failures are retryable. */
  async #send(method: string, path: string, headers: OutgoingHttpHeaders): Promise<HttpAnswer> {
    if (this.#closed) throw new DriverError('the Varnish driver is closed', { retryable: false });
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#sendOnce(method, path, headers);
      } catch (e) {
        // A kept-alive socket Varnish closed just as we reused it: the request never ran; send it again.
        if (attempt === 0 && (e as { reusedSocket?: boolean }).reusedSocket === true) continue;
        if (e instanceof DriverError) throw e;
        throw new DriverError(`cannot reach Varnish at ${this.#o.url}: ${e instanceof Error ? e.message : String(e)}`, { retryable: true, cause: e });
      }
    }
  }

  #sendOnce(method: string, path: string, headers: OutgoingHttpHeaders): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const req = http.request({ protocol: this.#url.protocol, hostname: this.#url.hostname, port: this.#url.port, method, path, headers, agent: this.#agent });
      const timer = setTimeout(() => {
        req.destroy(new DriverError(`Varnish at ${this.#o.url} did not answer ${method} ${path} within ${this.#timeoutMs} ms`, { retryable: true }));
      }, this.#timeoutMs);
      req.on('response', (res) => {
        res.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? '', headers: res.headers });
        });
        res.resume();
      });
      req.on('error', (e) => {
        clearTimeout(timer);
        if (req.reusedSocket && (e as NodeJS.ErrnoException).code === 'ECONNRESET') Object.assign(e, { reusedSocket: true });
        reject(e);
      });
      req.end();
    });
  }
}

async function readSecret(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new DriverError(`cannot read the Varnish admin secret ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)}): point the agent at varnishd's -S file`, {
      retryable: false,
      cause: e,
    });
  }
}

const header = (a: Answer, name: string): string | undefined => {
  const v = a.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

function matched(a: Answer): { matched?: number } {
  const n = Number(header(a, 'x-edgepurge-matched'));
  return Number.isInteger(n) && n >= 0 ? { matched: n } : {};
}

function banReport(method: DriverCommand['method']): DriverReport {
  return method === 'invalidate' ? { executedAs: 'delete', note: BAN_IS_HARD } : { executedAs: 'delete' };
}

/** The ban condition for objects of these hosts (X-EdgePurge-Key is "<canonical host> <path>", stored by edgepurge.vcl). */
function hostCondition(hosts: readonly string[]): string {
  const alternatives = hosts.length === 1 ? regexEscape(hosts[0]!) : `(${hosts.map(regexEscape).join('|')})`;
  return `obj.http.X-EdgePurge-Key ~ ${cliQuote(`^${alternatives}${KEY_SEPARATOR}`)}`;
}

/** The space between host and path in X-EdgePurge-Key, as a regex: the ban CLI refuses an argument with a space in it. */
const KEY_SEPARATOR = '\\x20';

/**
 * Objects stored by edgepurge.vcl before version 3 carry X-EdgePurge-Host / -Url, which no ban of this
 * driver tests any more: they go once, when the driver starts on a version-3 VCL (a refetch each), so no
 * purge can miss them. Once none is left the ban matches nothing and the lurker retires it.
 */
const PRE_V3_OBJECTS = 'obj.http.X-EdgePurge-Host ~ .';
