// The nginx driver: applies purge-log entries to an nginx proxy cache through ngx_cache_purge (exact
// keys) and its own index of the cache directory (prefix, host, all, tag), and prefetches through nginx.
// What nginx executes for each type and method: src/drivers/nginx/README.md.
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsc, openSync, readSync, writeSync } from 'node:fs';
import { access, lstat, readdir, unlink } from 'node:fs/promises';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { systemClock, type Clock } from '../../shared/clock.ts';
import { canonicalHost } from '../../shared/host-port.ts';
import { silentLogger, type Logger } from '../../shared/logger.ts';
import {
  DriverError,
  type DriverCommand,
  type DriverDropReport,
  type DriverPrefetchOutcome,
  type DriverReport,
  type EdgeDriver,
} from '../edge-driver.ts';
import { deadPatch, EXPIRE_PATCH_OFFSET, expirePatch, parseLevels, CACHE_VERSION } from './cache-file.ts';
import { CacheIndex, type IndexedFile } from './cache-index.ts';
import { CacheScanner, pool, Slicer } from './cache-scanner.ts';
import { CacheWatcher } from './cache-watcher.ts';
import { MARKER_HEADER, PURGE_KEY_HEADER, PURGE_PATH, SECRET_HEADER } from './nginx-snippet.ts';

export interface NginxDriverOptions {
  /** Where nginx serves cached traffic (prefetches go through it), e.g. `http://127.0.0.1:80`. */
  readonly cacheUrl: string;
  /** Optional TLS listener for prefetching https URLs (SNI = the URL's host; the certificate is not checked). */
  readonly cacheUrlTls?: string;
  /** The snippet's purge server, e.g. `http://127.0.0.1:8079`. */
  readonly purgeUrl: string;
  /** proxy_cache_path's directory. The agent must be able to read it and delete files in it. */
  readonly cacheDir: string;
  /** proxy_cache_path's `levels=` (default `1:2`). */
  readonly levels?: string;
  /** The snippet's purge secret, when it was generated with one. */
  readonly secret?: string;
  /** Bound of each purge request (ms, default 5,000). */
  readonly timeoutMs?: number;
  /** Bound of each prefetch (ms, default 30,000). */
  readonly prefetchTimeoutMs?: number;
  /**
   * Follow the cache directory with inotify (fs.watch on every level directory) so a purge needs no
   * sweep, only a barrier (cache-watcher.ts). Default true; false, or watches unavailable
   * (fs.inotify.max_user_watches): a sweep before every purge.
   */
  readonly watch?: boolean;
  /** Background catch-up period (ms, default 1,000; 0: only before each purge): a barrier with watches, else a sweep. */
  readonly syncIntervalMs?: number;
  /**
   * How long a purge also applies to files nginx stores afterwards from a response it received before
   * the purge (an upstream fetch in flight), ms (default 120,000).
   */
  readonly inFlightGraceMs?: number;
  /** `revalidate` (default): invalidate expires the files so nginx revalidates; `delete`: unlink them. */
  readonly invalidate?: 'revalidate' | 'delete';
  /** Local address for the driver's own requests (tests bind another loopback address). */
  readonly localAddress?: string;
  /**
   * Deleted files are marked dead in place (nginx then answers MISS) before the purge is acked, and
   * unlinked this long afterwards in the background, 32 at once (ms, default 1,000): the ack waits
   * for one 32-byte write per file, not for the disk's unlinks.
   */
  readonly unlinkAfterMs?: number;
  /** Purge-module requests in flight at once (default 8). */
  readonly purgeConcurrency?: number;
  /** Must be the wall clock in production: it is compared with file and directory timestamps. */
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** A purge remembered for files nginx stores after it from responses received before it. */
interface RecentRule {
  readonly atSec: number;
  readonly untilMs: number;
  readonly method: 'invalidate' | 'delete';
  readonly matches: (f: IndexedFile) => boolean;
}

const MAX_RECENT_RULES = 10_000;
/** Node refuses header values with these; nginx request URIs can carry them. Such keys are unlinked. */
const BAD_HEADER_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

export class NginxDriver implements EdgeDriver {
  readonly name = 'nginx';
  /** nginx keeps serving hits when the agent dies; it is never counted fenced (DESIGN "Where each cache…"). */
  readonly fencesItself = false;

  readonly #o: NginxDriverOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #index = new CacheIndex();
  readonly #scanner: CacheScanner;
  /** Undefined when the cache is not watched: then every purge sweeps first. */
  #watcher: CacheWatcher | undefined;
  readonly #agent: http.Agent;
  readonly #purgeUrl: URL;
  #timer: NodeJS.Timeout | undefined;
  #recent: RecentRule[] = [];
  #closed = false;
  /** Files marked dead, to unlink in the background: the inode marked (nginx may store a new file under the name meanwhile). */
  #doomed: Array<{ readonly path: string; readonly ino: number }> = [];
  #unlinkTimer: NodeJS.Timeout | undefined;
  #draining: Promise<void> | undefined;

  constructor(options: NginxDriverOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? silentLogger;
    let levels: number[];
    try {
      levels = parseLevels(options.levels ?? '1:2');
    } catch (err) {
      throw new DriverError(`nginx driver: ${(err as Error).message}; copy levels= from your proxy_cache_path`, { retryable: false });
    }
    this.#scanner = new CacheScanner({ root: options.cacheDir, levels, index: this.#index, clock: this.#clock });
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: options.purgeConcurrency ?? 8 });
    this.#purgeUrl = new URL(PURGE_PATH, options.purgeUrl);
  }

  /** The index (read-only use: tests and the bench look into it). */
  get index(): CacheIndex {
    return this.#index;
  }

  /** The watcher following the cache directory; undefined when purges sweep instead (tests and the bench look into it). */
  get watcher(): CacheWatcher | undefined {
    return this.#watcher;
  }

  /** Brings the index up to date now (what every apply does first). */
  sync(): Promise<{ added: IndexedFile[]; removed: number }> {
    return this.#sync();
  }

  async start(): Promise<void> {
    const dir = this.#o.cacheDir;
    try {
      await access(dir, fsc.R_OK | fsc.W_OK | fsc.X_OK);
    } catch (err) {
      throw new DriverError(
        `nginx cache directory ${dir} is not readable and writable by the agent (${code(err) ?? String(err)}): ` +
          `set cacheDir to proxy_cache_path's directory and run the agent as the user nginx's workers run as (user directive)`,
        { retryable: code(err) !== 'EACCES' && code(err) !== 'ENOENT', cause: err },
      );
    }
    await this.#checkLayout();
    await this.#checkReachable(new URL(this.#o.cacheUrl), 'the cache listener (cacheUrl)');
    // The purge location answers a key that cannot be cached with 404 + the snippet's marker.
    const probe = await this.#purgeKey(`edgepurge-probe:${randomBytes(8).toString('hex')}`);
    if (probe.status !== 404 && probe.status !== 200) {
      throw new DriverError(`nginx purge probe answered ${probe.status}`, { retryable: true });
    }
    if ((this.#o.watch ?? true) && this.#watcher === undefined) this.#startWatcher();
    const t0 = performance.now();
    const stats = await this.#scanner.sweep();
    this.#log.info('nginx cache indexed', {
      files: this.#index.size,
      dirs: stats.dirs,
      ms: Math.round(performance.now() - t0),
      watched: this.#watcher?.watched ?? 0,
      unreadable: stats.unreadable,
      foreignKeys: stats.foreignKeys,
    });
    if (stats.foreignKeys > 0) {
      this.#log.warn('nginx cache files with keys not in the $scheme://$host$request_uri form: prefix, host and tag purges cannot find them', {
        files: stats.foreignKeys,
        fix: 'include edgepurge.conf and remove other proxy_cache_key lines',
      });
    }
    const every = this.#o.syncIntervalMs ?? 1_000;
    if (every > 0 && !this.#closed && this.#timer === undefined) {
      this.#timer = setInterval(() => {
        this.#sync().catch((err: unknown) => this.#log.warn('nginx cache index sync failed', { err }));
      }, every);
      this.#timer.unref();
    }
  }

  async apply(command: DriverCommand): Promise<DriverReport> {
    if (command.type === 'prefetch_url') {
      throw new DriverError('prefetch_url is executed by prefetch(), not apply()', { retryable: false });
    }
    // Every file that exists now gets into the index before the purge is resolved against it.
    await this.#sync();
    const soft = command.method === 'invalidate' && (this.#o.invalidate ?? 'revalidate') === 'revalidate';
    const method = soft ? 'invalidate' : 'delete';
    const target = this.#resolve(command);
    this.#remember(target.matches, method);
    let matched = 0;
    let note: string | undefined;
    if (soft) {
      matched = await this.#expireAll(target.files());
    } else if (command.type === 'purge_url' && target.exact) {
      const r = await this.#purgeUrlKeys(target.exact.host, target.exact.urlPath);
      matched = r.module + r.unlinked;
      if (r.unlinked > 0) note = `${r.unlinked} file(s) (Vary variants, heads over 4 KiB) deleted directly: the purge module reaches one file per key`;
    } else {
      matched = await this.#deleteAll(target.files());
    }
    if (command.method === 'invalidate' && !soft) note = 'invalidate executed as delete (driver option invalidate: delete)';
    if (target.note) note = note ? `${target.note}; ${note}` : target.note;
    return note === undefined ? { executedAs: method, matched } : { executedAs: method, matched, note };
  }

  async prefetch(command: DriverCommand): Promise<DriverPrefetchOutcome> {
    let url: URL;
    try {
      url = new URL(command.target);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('not http(s)');
    } catch {
      return { ok: false, failType: 'originPullFailed', failMessage: `"${command.target}" is not an http(s) URL` };
    }
    const tls = url.protocol === 'https:' && this.#o.cacheUrlTls !== undefined;
    const base = new URL(tls ? this.#o.cacheUrlTls! : this.#o.cacheUrl);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(command.headers ?? {})) if (k.toLowerCase() !== 'host') headers[k] = v;
    headers.host = url.host;
    let res;
    try {
      res = await this.#request(new URL(url.pathname + url.search, base), {
        method: 'GET',
        headers,
        timeoutMs: this.#o.prefetchTimeoutMs ?? 30_000,
        what: 'prefetch through nginx',
        servername: tls ? url.hostname : undefined,
      });
    } catch (err) {
      // A prefetch whose own headers cannot be sent fails alone; it must not stop the node's log.
      if (err instanceof DriverError && !err.retryable) return { ok: false, failType: 'originPullFailed', failMessage: err.message };
      throw err;
    }
    if (res.status >= 400) {
      return { ok: false, failType: 'originPullFailed', failMessage: `nginx answered ${res.status} for ${url.href}` };
    }
    return { ok: true };
  }

  /** Deletes every cache file, indexed or not, and counts them. */
  async dropAll(): Promise<DriverDropReport> {
    return { matched: await this.#dropAll() };
  }

  async #dropAll(): Promise<number> {
    this.#remember(() => true, 'delete');
    let removed = 0;
    const walk = async (dir: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (code(err) === 'ENOENT') return;
        throw this.#fsError(err, dir);
      }
      const files = entries.filter((e) => e.isFile() && /^[0-9a-f]{32}$/.test(e.name)).map((e) => ({ path: join(dir, e.name) }));
      const n = await this.#unlinkAll(files);
      removed += n; // not `removed += await …`, which would add to a value read before other walks added theirs
      await pool(
        entries.filter((e) => e.isDirectory()),
        16,
        (e) => walk(join(dir, e.name)),
      );
    };
    await walk(this.#o.cacheDir);
    await this.#scanner.reset();
    await this.#scanner.sweep();
    await this.#sync();
    this.#log.info('nginx cache dropped', { files: removed });
    return removed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    // The files purged last are unlinked now rather than left for nginx to overwrite or evict.
    clearTimeout(this.#unlinkTimer);
    await this.#drainUnlinks();
    await this.#watcher?.close();
    await this.#scanner.idle();
    this.#agent.destroy();
  }

  /** Watches the cache directory; without watches (limit reached, no inotify) purges sweep instead. */
  #startWatcher(): void {
    const w = new CacheWatcher({
      root: this.#o.cacheDir,
      levels: parseLevels(this.#o.levels ?? '1:2'),
      scanner: this.#scanner,
      logger: this.#log,
      // Within the watcher's sync: a purge waits for the rules of the purges before it.
      onIndexed: (files) => (this.#recent.length > 0 ? this.#applyRecent(files) : Promise.resolve()),
    });
    try {
      w.start();
      this.#watcher = w;
    } catch (err) {
      void w.close();
      this.#log.warn('nginx cache directory cannot be watched: every purge sweeps the cache directories first (slower)', {
        err: (err as Error).message,
        fix: 'raise fs.inotify.max_user_watches (one watch per level directory: 4,113 for levels=1:2)',
      });
    }
  }

  /** Brings the index up to date: a barrier on the watcher (or a sweep), then the in-flight rules on the files found. */
  async #sync(): Promise<{ added: IndexedFile[]; removed: number }> {
    if (this.#watcher) return this.#watcher.sync();
    const stats = await this.#scanner.sweep();
    if (stats.added.length > 0 && this.#recent.length > 0) await this.#applyRecent(stats.added);
    return stats;
  }

  /** What a command covers: the files now, and a predicate for files stored later. */
  #resolve(command: DriverCommand): {
    files: () => IndexedFile[];
    matches: (f: IndexedFile) => boolean;
    exact?: { host: string; urlPath: string };
    note?: string;
  } {
    const ix = this.#index;
    const hostsOf = (hosts: readonly string[]) => [...new Set(hosts.map(canonicalHost))].filter((h) => h !== '');
    const wholeHosts = (hosts: string[], note?: string) => ({
      files: () => hosts.flatMap((h) => ix.byHost(h)),
      matches: (f: IndexedFile) => hosts.includes(f.host),
      note,
    });
    switch (command.type) {
      case 'purge_url':
      case 'purge_prefix': {
        const t = parseTarget(command.target);
        if (!t) return wholeHosts(hostsOf(command.hosts), `target is not a URL: purged the hosts ${command.hosts.join(', ')}`);
        if (command.type === 'purge_url') {
          return { files: () => ix.byUrl(t.host, t.urlPath), matches: (f) => f.host === t.host && f.urlPath === t.urlPath, exact: t };
        }
        return { files: () => ix.byPrefix(t.host, t.urlPath), matches: (f) => f.host === t.host && f.urlPath.startsWith(t.urlPath) };
      }
      case 'purge_host': {
        const host = command.target.includes('://') ? parseTarget(command.target)?.host : canonicalHost(command.target);
        return wholeHosts(host === undefined || host === '' ? hostsOf(command.hosts) : [host]);
      }
      case 'purge_all':
        return wholeHosts(hostsOf(command.hosts));
      case 'purge_cache_tag': {
        const hosts = hostsOf(command.hosts);
        const tag = command.target;
        return { files: () => hosts.flatMap((h) => ix.byTag(h, tag)), matches: (f) => hosts.includes(f.host) && f.tags.includes(tag) };
      }
      default:
        throw new DriverError(`unknown command type ${String(command.type)}`, { retryable: false });
    }
  }

  #remember(matches: (f: IndexedFile) => boolean, method: 'invalidate' | 'delete'): void {
    const now = this.#clock.now();
    this.#recent = this.#recent.filter((r) => r.untilMs > now).slice(-(MAX_RECENT_RULES - 1));
    this.#recent.push({ atSec: Math.floor(now / 1000), untilMs: now + (this.#o.inFlightGraceMs ?? 120_000), method, matches });
  }

  /**
   * Files that appeared since the last sweep from a response nginx received before a recent purge
   * (header `date` < the purge's second: an upstream fetch that was in flight) get that purge too.
   * Strictly earlier seconds only, so a prefetch right after a purge is not undone.
   */
  async #applyRecent(files: IndexedFile[]): Promise<void> {
    const now = this.#clock.now();
    this.#recent = this.#recent.filter((r) => r.untilMs > now);
    const del: IndexedFile[] = [];
    const soft: IndexedFile[] = [];
    for (const f of files) {
      let action: 'invalidate' | 'delete' | undefined;
      for (const r of this.#recent) {
        if (f.dateSec < r.atSec && r.matches(f)) action = r.method === 'delete' || action === 'delete' ? 'delete' : 'invalidate';
        if (action === 'delete') break;
      }
      if (action === 'delete') del.push(f);
      else if (action === 'invalidate') soft.push(f);
    }
    if (del.length + soft.length === 0) return;
    this.#log.info('nginx: files stored from responses older than a recent purge', { deleted: del.length, expired: soft.length });
    await this.#deleteAll(del);
    await this.#expireAll(soft);
  }

  /**
   * purge_url delete: each key through the purge module (keeps nginx's keys_zone accounting right),
   * then whatever file of the URL remains (Vary variants: the module purges the one variant its own
   * request headers select) unlinked.
   */
  async #purgeUrlKeys(host: string, urlPath: string): Promise<{ module: number; unlinked: number }> {
    const keys = [...new Set(this.#index.byUrl(host, urlPath).map((f) => f.key))].filter((k) => !BAD_HEADER_CHAR.test(k));
    let module = 0;
    await pool(keys, this.#o.purgeConcurrency ?? 8, async (key) => {
      const r = await this.#purgeKey(key);
      if (r.status !== 200) return;
      module++;
      const path = /Path: ([^\n<]+)/.exec(r.body)?.[1]?.trim();
      if (path !== undefined) this.#index.remove(path);
    });
    const unlinked = await this.#deleteAll(this.#index.byUrl(host, urlPath));
    return { module, unlinked };
  }

  /** One exact key through the snippet's purge location: 200 purged, 404 not cached; else DriverError. */
  async #purgeKey(key: string): Promise<{ status: number; body: string }> {
    const headers: Record<string, string> = { [PURGE_KEY_HEADER]: key };
    if (this.#o.secret !== undefined) headers[SECRET_HEADER] = this.#o.secret;
    const res = await this.#request(this.#purgeUrl, { method: 'GET', headers, timeoutMs: this.#o.timeoutMs ?? 5_000, what: 'nginx purge' });
    const marked = res.headers[MARKER_HEADER] !== undefined;
    if (res.status === 403) {
      throw new DriverError(
        `nginx refused the purge (403 from ${this.#purgeUrl.origin}): allow the agent's address in the edgepurge.conf server block` +
          (this.#o.secret === undefined ? '' : ' and check that the agent and the snippet use the same secret'),
        { retryable: false },
      );
    }
    if ((res.status === 404 || res.status === 200) && !marked) {
      throw new DriverError(
        `${this.#purgeUrl.href} is not the EdgePurge purge location (answered ${res.status} without ${MARKER_HEADER}): ` +
          `include edgepurge.conf in nginx's http {} block and point purgeUrl at its listen address`,
        { retryable: false },
      );
    }
    if (res.status >= 500) throw new DriverError(`nginx purge answered ${res.status}`, { retryable: true });
    if (res.status !== 200 && res.status !== 404) {
      throw new DriverError(`nginx purge answered ${res.status}`, { retryable: false });
    }
    return { status: res.status, body: res.body.toString('latin1') };
  }

  /**
   * Deletes indexed files the fast way and counts them: each marked dead in place (cache-file.ts
   * deadPatch: one 32-byte write; nginx answers the next request with a MISS, even through a
   * descriptor open_file_cache holds) and dropped from the index, then unlinked in the background
   * unlinkAfterMs later. Synchronous writes in slices of at most 10 ms, as #expireAll.
   */
  async #deleteAll(files: readonly IndexedFile[]): Promise<number> {
    const patch = deadPatch(Math.floor(this.#clock.now() / 1000));
    const slice = new Slicer();
    let n = 0;
    for (const f of files) {
      if (slice.due()) await slice.yield();
      let fd: number;
      try {
        fd = openSync(f.path, 'r+');
      } catch (err) {
        if (code(err) !== 'ENOENT') throw this.#fsError(err, f.path);
        this.#index.remove(f.path);
        continue;
      }
      try {
        writeSync(fd, patch, 0, patch.length, 0);
      } catch (err) {
        throw this.#fsError(err, f.path);
      } finally {
        closeSync(fd);
      }
      n++;
      this.#index.remove(f.path);
      this.#doomed.push({ path: f.path, ino: Number(f.stamp.split(':', 1)[0]) });
    }
    this.#scheduleUnlinks();
    return n;
  }

  #scheduleUnlinks(): void {
    if (this.#doomed.length === 0 || this.#unlinkTimer !== undefined || this.#closed) return;
    this.#unlinkTimer = setTimeout(() => {
      this.#unlinkTimer = undefined;
      void this.#drainUnlinks();
    }, this.#o.unlinkAfterMs ?? 1_000);
    this.#unlinkTimer.unref();
  }

  /**
   * Unlinks the files marked dead, 32 at once, each only if it is still the inode that was marked
   * (a file nginx stored under the same name since is a fresh response). A failure is logged, not
   * thrown: the purge was done by the mark, and nginx overwrites or evicts a dead file itself.
   */
  #drainUnlinks(): Promise<void> {
    this.#draining ??= (async () => {
      let failed = 0;
      while (this.#doomed.length > 0) {
        const batch = this.#doomed.splice(0, 4_096);
        await pool(batch, 32, async ({ path, ino }) => {
          try {
            const st = await lstat(path);
            if (st.ino === ino || !Number.isFinite(ino)) await unlink(path);
          } catch (err) {
            if (code(err) !== 'ENOENT') failed++;
          }
        });
      }
      if (failed > 0) this.#log.warn('nginx: files marked dead could not be unlinked (nginx overwrites or evicts them)', { files: failed });
    })().finally(() => {
      this.#draining = undefined;
      this.#scheduleUnlinks(); // marked while this drain was ending
    });
    return this.#draining;
  }

  /** Files marked dead and not yet unlinked (tests and the bench look into it). */
  get pendingUnlinks(): number {
    return this.#doomed.length;
  }

  /** Unlinks now what is waiting for unlinkAfterMs (tests and the bench). */
  flushUnlinks(): Promise<void> {
    clearTimeout(this.#unlinkTimer);
    this.#unlinkTimer = undefined;
    return this.#drainUnlinks();
  }

  /**
   * Deletes files synchronously (dropAll: the cache must be empty when it returns), expiring each first: nginx with open_file_cache on keeps serving a cached descriptor
   * of an unlinked file (open_file_cache_valid, 60 s by default) as a HIT; expired first, that
   * descriptor yields a revalidation instead (test "open_file_cache"), never the stale copy. The
   * expiry is synchronous system calls in slices (#expireAll: cheaper than thread-pool round trips);
   * the unlinks go through the thread pool, several at once, because an unlink can wait on the disk
   * (the journal), and those waits overlap there.
   */
  async #unlinkAll(files: ReadonlyArray<{ readonly path: string }>): Promise<number> {
    const present: Array<{ readonly path: string }> = [];
    await this.#expireAll(files, present);
    let n = 0;
    await pool(present, 32, async (f) => {
      if (await this.#unlink(f.path)) n++;
    });
    for (const f of files) this.#index.remove(f.path);
    return n;
  }

  async #unlink(path: string): Promise<boolean> {
    try {
      await unlink(path);
      return true;
    } catch (err) {
      if (code(err) === 'ENOENT') return false;
      throw this.#fsError(err, path);
    }
  }

  /** Writes the expire patch into a version-5 cache file; false when it is not one. Throws ENOENT. */
  #patch(path: string, patch: Buffer): boolean {
    const fd = openSync(path, 'r+');
    try {
      const v = Buffer.alloc(8);
      readSync(fd, v, 0, 8, 0);
      if (v.readBigUInt64LE(0) !== BigInt(CACHE_VERSION)) return false;
      writeSync(fd, patch, 0, patch.length, EXPIRE_PATCH_OFFSET);
      return true;
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Marks files expired in place (cache-file.ts expirePatch) and counts them; `present` collects the
   * files that exist. Synchronous system calls in slices of at most 10 ms with the event loop let
   * through in between, as the scanner reads.
   */
  async #expireAll(files: ReadonlyArray<{ readonly path: string }>, present: Array<{ readonly path: string }> = []): Promise<number> {
    const patch = expirePatch(Math.floor(this.#clock.now() / 1000));
    const slice = new Slicer();
    let n = 0;
    for (const f of files) {
      if (slice.due()) await slice.yield();
      try {
        if (this.#patch(f.path, patch)) n++;
        present.push(f);
      } catch (err) {
        if (code(err) !== 'ENOENT') throw this.#fsError(err, f.path);
        this.#index.remove(f.path);
      }
    }
    return n;
  }

  #fsError(err: unknown, path: string): DriverError {
    const c = code(err);
    const denied = c === 'EACCES' || c === 'EPERM' || c === 'EROFS';
    return new DriverError(
      denied
        ? `the agent may not change ${path} (${c}): run it as the user nginx's workers run as, or give it write access to ${this.#o.cacheDir}`
        : `nginx cache file ${path}: ${(err as Error).message}`,
      { retryable: !denied, cause: err },
    );
  }

  async #checkLayout(): Promise<void> {
    const levels = parseLevels(this.#o.levels ?? '1:2');
    const entries = await readdir(this.#o.cacheDir, { withFileTypes: true });
    const bad = entries.find((e) =>
      levels.length === 0
        ? e.isDirectory() && e.name !== 'temp'
        : (e.isFile() && /^[0-9a-f]{32}$/.test(e.name)) || (e.isDirectory() && e.name !== 'temp' && e.name.length !== levels[0]),
    );
    if (bad) {
      throw new DriverError(
        `${this.#o.cacheDir} does not look like levels=${this.#o.levels ?? '1:2'} (found "${bad.name}"): set levels to proxy_cache_path's`,
        { retryable: false },
      );
    }
  }

  /** A TCP connect to nginx's cache listener, bounded by the timeout. */
  async #checkReachable(url: URL, what: string): Promise<void> {
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    await new Promise<void>((resolve, reject) => {
      const s = net.connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port, localAddress: this.#o.localAddress });
      s.setTimeout(this.#o.timeoutMs ?? 5_000, () => s.destroy(new Error('timed out')));
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', (err) => reject(new DriverError(`nginx is not reachable at ${url.host}, ${what}: ${err.message}; start nginx or fix the address`, { retryable: true, cause: err })));
    });
  }

  #request(
    url: URL,
    o: { method: string; headers: Record<string, string>; timeoutMs: number; what: string; servername?: string | undefined },
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const fail = (err: Error) =>
        reject(err instanceof DriverError ? err : new DriverError(`${o.what} to ${url.host} failed: ${err.message}`, { retryable: true, cause: err }));
      const tls = url.protocol === 'https:';
      const options: https.RequestOptions = {
        method: o.method,
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || (tls ? 443 : 80),
        path: url.pathname + url.search,
        headers: o.headers,
        localAddress: this.#o.localAddress,
        signal: AbortSignal.timeout(o.timeoutMs),
      };
      if (tls) Object.assign(options, { servername: o.servername, rejectUnauthorized: false });
      else options.agent = this.#agent;
      let req: http.ClientRequest;
      try {
        req = (tls ? https : http).request(options, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', fail);
        });
      } catch (err) {
        // Node refuses the request itself (a header name or value it cannot send): retrying cannot help.
        reject(new DriverError(`${o.what}: ${(err as Error).message}`, { retryable: false, cause: err }));
        return;
      }
      req.on('error', (err) => fail(err.name === 'AbortError' || err.name === 'TimeoutError' ? new Error(`timed out after ${o.timeoutMs} ms`) : err));
      req.end();
    });
  }
}

/** A purge target URL as the index names it; undefined when it is not an http(s) URL. */
function parseTarget(target: string): { host: string; urlPath: string } | undefined {
  let u: URL;
  try {
    u = new URL(target);
  } catch {
    return undefined;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.host === '') return undefined;
  return { host: canonicalHost(u.host), urlPath: u.pathname + u.search };
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
