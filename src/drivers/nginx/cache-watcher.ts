// Keeps the nginx cache index current from inotify events instead of a sweep per purge.
//
// nginx adds a cache file by rename() into its level directory and removes one by unlink(); fs.watch
// on every level directory (4,113 for levels=1:2) reports both with the file's name, and the file is
// re-read (cache-scanner.ts refresh). A purge must see every file nginx stored before it, so it first
// passes a **barrier**: the watcher creates a file in a directory of its own and waits for that event.
// libuv reads every fs.watch of a process from one inotify descriptor, whose events come in the order
// the kernel queued them (queued inside the rename/unlink system call, before it returns), and Node
// runs the listeners synchronously as libuv reads them; so once the barrier's own event is here, the
// event of every rename that completed before the barrier was created has been handled.
//
// Lost events: when inotify's queue (fs.inotify.max_queued_events, 16,384) fills, the kernel drops
// events and queues IN_Q_OVERFLOW, which libuv ignores: Node never says so. But libuv drains the
// descriptor until it is empty in one go, so a queue that overflowed arrives as one run of at least
// that many events between two turns of the event loop; the watcher counts each run and treats a run
// of half the queue or more as a loss. A barrier whose event does not come (dropped by a full queue),
// a watch error, a watch that cannot be added (fs.inotify.max_user_watches) or a directory removed are
// losses too. After a loss the next sync runs a full **rescan** (the scanner's sweep: every directory
// stat'ed, the changed ones listed, their files stat'ed), counted and logged.
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, watch, type FSWatcher } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../shared/logger.ts';
import type { IndexedFile } from './cache-index.ts';
import type { CacheScanner } from './cache-scanner.ts';

const NAME = /^[0-9a-f]{32}$/;
const HEX = /^[0-9a-f]+$/;

export interface CacheWatcherOptions {
  /** proxy_cache_path's directory. */
  readonly root: string;
  /** Parsed `levels=` ([1, 2]). */
  readonly levels: readonly number[];
  /** The scanner that owns the index: the watcher only tells it which files and directories to re-read. */
  readonly scanner: CacheScanner;
  readonly logger: Logger;
  /** Called with the files each refresh or rescan indexed, before the sync that ran it resolves. */
  readonly onIndexed?: (files: IndexedFile[]) => Promise<void>;
  /** How long a barrier waits for its own event before events are presumed lost (ms, default 5,000). */
  readonly barrierTimeoutMs?: number;
  /** inotify's queue length (default: /proc/sys/fs/inotify/max_queued_events, else 16,384). */
  readonly maxQueuedEvents?: number;
}

/** What one sync did. */
export interface WatchSyncStats {
  /** Files indexed (new or replaced). */
  readonly added: IndexedFile[];
  readonly removed: number;
  /** Why this sync ran a full rescan; undefined when the events were enough. */
  readonly rescan: string | undefined;
  /** Files and directories the events named, re-read. */
  readonly refreshed: number;
}

export class CacheWatcher {
  readonly #o: CacheWatcherOptions;
  readonly #watchers = new Map<string, FSWatcher>();
  #pendingFiles = new Set<string>();
  #pendingDirs = new Set<string>();
  /** Why the next drain must rescan (the first reason since the last rescan). */
  #lost: string | undefined;
  /** Some directory is not watched (a watch failed): every drain rescans until all are watched again. */
  #incomplete = false;
  /** Events in the current run (one libuv read of the inotify descriptor, or more). */
  #run = 0;
  readonly #overflowAt: number;
  #barrierDir: string | undefined;
  #barrierSeq = 0;
  readonly #barriers = new Map<string, () => void>();
  #chain: Promise<unknown> = Promise.resolve();
  #drainScheduled = false;
  #closed = false;
  #rescans = 0;
  #rescanMs = 0;
  #events = 0;

  constructor(options: CacheWatcherOptions) {
    this.#o = options;
    this.#overflowAt = Math.floor((options.maxQueuedEvents ?? maxQueuedEvents()) / 2);
  }

  /** Full rescans run so far (after lost events, watch errors, removed directories). */
  get rescans(): number {
    return this.#rescans;
  }

  /** Milliseconds the last rescan took. */
  get lastRescanMs(): number {
    return this.#rescanMs;
  }

  /** Events received so far. */
  get events(): number {
    return this.#events;
  }

  /** Directories watched. */
  get watched(): number {
    return this.#watchers.size;
  }

  /**
   * Watches every level directory. Call it before the index is built, so that nothing nginx writes
   * during the build is missed. Throws when a watch cannot be added (the caller falls back to sweeps).
   */
  start(): void {
    this.#barrierDir = mkdtempSync(join(tmpdir(), 'edgepurge-nginx-barrier-'));
    this.#watch(this.#barrierDir, -1);
    this.#watchTree(this.#o.root, 0);
  }

  /**
   * Brings the index up to date with every file nginx stored or removed before this call: the barrier,
   * then the files the events named (or a full rescan after a loss). Syncs and background refreshes
   * run one at a time.
   */
  async sync(): Promise<WatchSyncStats> {
    await this.#barrier();
    return this.#enqueueDrain();
  }

  /** Makes the next sync rescan everything (the bench measures the fallback's cost with it). */
  markLost(reason: string): void {
    if (this.#lost === undefined) this.#lost = reason;
    // A barrier still waiting may never get its event now: let it through to the rescan.
    for (const resolve of this.#barriers.values()) resolve();
    this.#barriers.clear();
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
    for (const resolve of this.#barriers.values()) resolve();
    this.#barriers.clear();
    await this.#chain;
    if (this.#barrierDir) rmSync(this.#barrierDir, { recursive: true, force: true });
  }

  #barrier(): Promise<void> {
    if (this.#closed || !this.#barrierDir) return Promise.resolve();
    const name = `b${++this.#barrierSeq}`;
    const path = join(this.#barrierDir, name);
    return new Promise<void>((resolve) => {
      const timeoutMs = this.#o.barrierTimeoutMs ?? 5_000;
      const timer = setTimeout(() => {
        if (!this.#barriers.delete(name)) return;
        this.markLost(`the barrier's inotify event did not arrive within ${timeoutMs} ms`);
        this.#removeBarrierFile(name);
        resolve();
      }, timeoutMs);
      this.#barriers.set(name, () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        closeSync(openSync(path, 'w'));
      } catch (err) {
        this.markLost(`barrier file ${path}: ${(err as Error).message}`);
      }
    });
  }

  #onBarrierEvent(name: string): void {
    const resolve = this.#barriers.get(name);
    if (!resolve) return;
    this.#barriers.delete(name);
    // Every event queued before the barrier's has been handled; one of them may have ended a loss.
    if (this.#run >= this.#overflowAt) this.markLost(`inotify queue may have overflowed (${this.#run} events in one read)`);
    this.#removeBarrierFile(name);
    resolve();
  }

  #removeBarrierFile(name: string): void {
    try {
      unlinkSync(join(this.#barrierDir!, name));
    } catch {
      // Already gone (close() removed the directory): nothing to clean.
    }
  }

  /** Watches `dir` (depth 0 = the cache root) and every level directory under it; returns the leaf directories newly watched. */
  #watchTree(dir: string, depth: number): string[] {
    const leaf = depth === this.#o.levels.length;
    const fresh = this.#watchers.has(dir) ? [] : [dir];
    if (!this.#watchers.has(dir)) this.#watch(dir, depth);
    if (leaf) return fresh;
    const width = this.#o.levels[depth]!;
    const out: string[] = [];
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch (err) {
      if (code(err) !== 'ENOENT' && code(err) !== 'ENOTDIR') throw err;
    }
    for (const n of names) if (n.length === width && HEX.test(n)) out.push(...this.#watchTree(join(dir, n), depth + 1));
    return out;
  }

  /** One fs.watch; depth -1 is the barrier directory. */
  #watch(dir: string, depth: number): void {
    const w = watch(dir, { persistent: false }, (event, name) => this.#onEvent(dir, depth, event, name));
    w.on('error', (err) => {
      w.close();
      if (this.#watchers.get(dir) === w) this.#watchers.delete(dir);
      this.#incomplete = true;
      this.markLost(`watch of ${dir} failed: ${err.message}`);
      this.#scheduleDrain();
    });
    this.#watchers.set(dir, w);
  }

  #onEvent(dir: string, depth: number, event: string, name: string | null): void {
    this.#events++;
    if (this.#run++ === 0) {
      setImmediate(() => {
        if (this.#run >= this.#overflowAt) {
          this.markLost(`inotify queue may have overflowed (${this.#run} events in one read)`);
          this.#scheduleDrain();
        }
        this.#run = 0;
      });
    }
    if (depth === -1) {
      if (name !== null) this.#onBarrierEvent(name);
      return;
    }
    if (name === null) {
      this.markLost(`an event without a file name in ${dir}`);
      this.#scheduleDrain();
      return;
    }
    // In place writes (a 304 revalidation rewrites the header, our own expire patch) change no key or tag.
    if (event !== 'rename') return;
    const levels = this.#o.levels;
    if (depth === levels.length) {
      if (!NAME.test(name)) return; // nginx's temp files (name.0000000001), anything foreign
      this.#pendingFiles.add(join(dir, name));
    } else {
      if (name.length !== levels[depth] || !HEX.test(name)) return;
      this.#onDirEvent(join(dir, name), depth + 1);
    }
    this.#scheduleDrain();
  }

  /** A level directory created or removed under a watched one. */
  #onDirEvent(path: string, depth: number): void {
    const st = statSync(path, { throwIfNoEntry: false });
    if (st?.isDirectory()) {
      try {
        // Watched before it is listed (by the drain): a file renamed in before the watch is listed, one after is an event.
        for (const leaf of this.#watchTree(path, depth)) this.#pendingDirs.add(leaf);
      } catch (err) {
        this.#incomplete = true;
        this.markLost(`cannot watch ${path}: ${(err as Error).message}`);
      }
      return;
    }
    for (const [dir, w] of this.#watchers) {
      if (dir === path || dir.startsWith(`${path}/`)) {
        w.close();
        this.#watchers.delete(dir);
      }
    }
    this.markLost(`level directory ${path} removed`);
  }

  #scheduleDrain(): void {
    if (this.#drainScheduled || this.#closed) return;
    this.#drainScheduled = true;
    this.#enqueueDrain().catch((err: unknown) => this.#o.logger.warn('nginx cache index refresh failed', { err }));
  }

  #enqueueDrain(): Promise<WatchSyncStats> {
    const run = this.#chain.then(() => this.#drain());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #drain(): Promise<WatchSyncStats> {
    this.#drainScheduled = false;
    const { scanner, logger } = this.#o;
    if (this.#incomplete) {
      try {
        for (const leaf of this.#watchTree(this.#o.root, 0)) this.#pendingDirs.add(leaf);
        this.#incomplete = false;
      } catch (err) {
        this.markLost(`cannot watch every level directory: ${(err as Error).message}`);
      }
    }
    const rescan = this.#lost;
    this.#lost = undefined;
    const files = this.#pendingFiles;
    const dirs = this.#pendingDirs;
    this.#pendingFiles = new Set();
    this.#pendingDirs = new Set();
    const added: IndexedFile[] = [];
    let removed = 0;
    if (rescan !== undefined) {
      this.#rescans++;
      const t0 = performance.now();
      const s = await scanner.sweep();
      this.#rescanMs = performance.now() - t0;
      added.push(...s.added);
      removed += s.removed;
      logger.warn('nginx cache index: full rescan', { reason: rescan, rescans: this.#rescans, ms: Math.round(this.#rescanMs), added: s.added.length, removed: s.removed });
    }
    if (files.size + dirs.size > 0) {
      const r = await scanner.refresh({ files, dirs });
      added.push(...r.added);
      removed += r.removed;
    }
    if (added.length > 0 && this.#o.onIndexed) await this.#o.onIndexed(added);
    return { added, removed, rescan, refreshed: files.size + dirs.size };
  }
}

function maxQueuedEvents(): number {
  try {
    const n = Number(readFileSync('/proc/sys/fs/inotify/max_queued_events', 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : 16_384;
  } catch {
    return 16_384;
  }
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
