// Keeps a CacheIndex in step with an nginx cache directory by comparing directory mtimes (a sweep):
// the build at start, the full rescan after the watcher lost events (cache-watcher.ts), and the way to
// stay current when the directory cannot be watched (then a sweep runs before every purge). It also
// re-reads the single files the watcher's events name (refresh).
//
// nginx adds a cache file by rename() into its level directory (ngx_http_file_cache_update) and removes
// one by unlink(); both change that directory's mtime. A sweep stats every leaf directory (4,096 for
// levels=1:2) and reads only directories whose mtime moved, then only the files in them that are new
// or replaced (inode/size/mtime), and of those only the head (≤ body_start bytes).
//
// Racy mtimes (the same trick as git's racy index): the kernel stamps mtimes from a coarse clock, so a
// file added in the same tick as the stat we compared against leaves the mtime unchanged. A directory
// whose mtime is within RACY_MS of the sweep's start is therefore read again on the next sweep too.
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync, type Stats } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { Clock } from '../../shared/clock.ts';
import { CacheFileError, cacheFileName, cacheTags, headLength, parseCacheFileHead, type CacheFileHead } from './cache-file.ts';
import { parseCacheKey, type CacheIndex, type IndexedFile } from './cache-index.ts';
import { readHeads } from './head-readers.ts';

/** A directory mtime this close to the sweep's start may still change within the same clock tick (a jiffy: ≤ 10 ms). */
const RACY_MS = 100;
/** First read of a file: most heads fit; a longer one is read again up to body_start. */
const FIRST_READ = 4_096;
const NAME = /^[0-9a-f]{32}$/;
const SLICE_MS = 10;
/** A sweep with fewer heads to read than this reads them itself: a thread costs more to start. */
const PARALLEL_MIN = 2_000;
const READERS = Math.min(4, availableParallelism());

interface DirState {
  readonly path: string;
  readonly depth: number;
  mtimeMs: number | undefined;
  racy: boolean;
  /** Names of the subdirectories (non-leaf) or cache files (leaf) seen at the last read. */
  names: Set<string>;
}

export interface SweepStats {
  /** Directories stat'ed. */
  readonly dirs: number;
  /** Directories whose listing was read. */
  readonly readDirs: number;
  /** Files whose head was read and indexed (new or replaced). */
  readonly added: IndexedFile[];
  /** Files dropped from the index (gone from disk). */
  readonly removed: number;
  /** Files that are not nginx cache files of version 5 or whose key is not in the snippet's format. */
  readonly unreadable: number;
  readonly foreignKeys: number;
}

/** What a refresh did. */
export interface RefreshStats {
  readonly added: IndexedFile[];
  readonly removed: number;
  readonly unreadable: number;
  readonly foreignKeys: number;
  /** Directories listed (the requested ones and those no sweep had listed yet). */
  readonly readDirs: number;
}

export interface ScannerOptions {
  readonly root: string;
  /** `levels=` of proxy_cache_path, parsed ([1, 2]). */
  readonly levels: readonly number[];
  readonly index: CacheIndex;
  readonly clock: Clock;
  /** Longest stretch of synchronous file-system work before the event loop is let through (ms). */
  readonly sliceMs?: number;
  /** Threads that read heads when a sweep has many to read (default: one per CPU, at most 4; 0: none). */
  readonly readers?: number;
}

export class CacheScanner {
  readonly #o: ScannerOptions;
  /** Directories by depth: [root], level-1 dirs, …, leaf dirs. */
  readonly #dirs: Array<Map<string, DirState>>;
  #chain: Promise<unknown> = Promise.resolve();
  #lastSweepStartMs = 0;

  constructor(options: ScannerOptions) {
    this.#o = options;
    this.#dirs = Array.from({ length: options.levels.length + 1 }, () => new Map<string, DirState>());
    this.#dirs[0]!.set(options.root, newDir(options.root, 0));
  }

  /** Wall-clock start of the last completed sweep: every file that existed then is indexed. */
  get lastSweepStartMs(): number {
    return this.#lastSweepStartMs;
  }

  /** Number of directories tracked (all levels). */
  get dirCount(): number {
    return this.#dirs.reduce((n, m) => n + m.size, 0);
  }

  /**
   * Brings the index up to date with the disk: every file present when the sweep starts is indexed
   * when it resolves. Sweeps run one at a time; a call made while one runs waits for it and then runs
   * its own (the running one may have started before the file it must see was written).
   */
  sweep(): Promise<SweepStats> {
    const run = this.#chain.then(() => this.#sweep());
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Re-reads the named files (absolute paths of cache files in leaf directories) and lists the named
   * leaf directories in full, and nothing else: indexes new or replaced files, drops vanished ones.
   * What a file-system watcher calls with the names its events carried. A leaf directory no sweep has
   * seen yet is adopted (and listed in full). Chained with sweeps like sweep().
   */
  refresh(what: { files: Iterable<string>; dirs?: Iterable<string> }): Promise<RefreshStats> {
    const run = this.#chain.then(() => this.#refresh(what.files, what.dirs ?? []));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Forgets every directory and file (after the cache was emptied), between sweeps. */
  reset(): Promise<void> {
    const run = this.#chain.then(() => {
      for (const level of this.#dirs) level.clear();
      this.#dirs[0]!.set(this.#o.root, newDir(this.#o.root, 0));
      this.#o.index.clear();
    });
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Resolves when no sweep is running. */
  async idle(): Promise<void> {
    await this.#chain;
  }

  async #sweep(): Promise<SweepStats> {
    const start = this.#o.clock.now();
    const { levels, index } = this.#o;
    const slice = new Slicer(this.#o.sliceMs ?? SLICE_MS);
    let dirs = 0;
    let readDirs = 0;
    let removed = 0;
    const toRead: Array<{ path: string; name: string }> = [];
    for (let depth = 0; depth <= levels.length; depth++) {
      const level = this.#dirs[depth]!;
      const leaf = depth === levels.length;
      const changed: DirState[] = [];
      for (const d of [...level.values()]) {
        if (slice.due()) await slice.yield();
        dirs++;
        const st = statSync(d.path, { throwIfNoEntry: false });
        if (!st?.isDirectory()) {
          removed += this.#dropDir(d);
          continue;
        }
        const moved = st.mtimeMs !== d.mtimeMs;
        const wasRacy = d.racy;
        d.mtimeMs = st.mtimeMs;
        d.racy = st.mtimeMs >= start - RACY_MS;
        if (moved || wasRacy) changed.push(d);
      }
      for (const d of changed) {
        if (slice.due()) await slice.yield();
        let names: string[];
        try {
          names = readdirSync(d.path);
        } catch (err) {
          if (code(err) !== 'ENOENT' && code(err) !== 'ENOTDIR') throw err;
          removed += this.#dropDir(d);
          continue;
        }
        readDirs++;
        if (!leaf) {
          const width = levels[depth]!;
          const seen = new Set(names.filter((n) => n.length === width && /^[0-9a-f]+$/.test(n)));
          const next = this.#dirs[depth + 1]!;
          for (const n of d.names) if (!seen.has(n)) removed += this.#dropDir(next.get(join(d.path, n)));
          for (const n of seen) if (!d.names.has(n)) next.set(join(d.path, n), newDir(join(d.path, n), depth + 1));
          d.names = seen;
          continue;
        }
        const seen = new Set(names.filter((n) => NAME.test(n)));
        for (const n of d.names) {
          if (!seen.has(n) && index.remove(join(d.path, n))) removed++;
        }
        d.names = seen;
        // Known files too: the same name with a new stamp is a new response nginx stored for the key.
        for (const n of seen) toRead.push({ path: join(d.path, n), name: n });
      }
    }
    const files = new FileReads(index);
    const fresh: string[] = [];
    for (const { path } of toRead) {
      if (slice.due()) await slice.yield();
      if (!files.unchanged(path)) fresh.push(path);
    }
    const readers = this.#o.readers ?? READERS;
    if (readers > 0 && fresh.length >= PARALLEL_MIN) {
      // Many heads (the build, a big rescan): read in threads, indexed here as they come.
      await readHeads(fresh, readers, (path, summary) => void files.take(path, summary));
    } else {
      for (const path of fresh) {
        if (slice.due()) await slice.yield();
        files.take(path, summarizeHead(path));
      }
    }
    removed += files.removed;
    const { added, unreadable, foreignKeys } = files;
    this.#lastSweepStartMs = start;
    return { dirs, readDirs, added, removed, unreadable, foreignKeys };
  }

  async #refresh(paths: Iterable<string>, dirs: Iterable<string>): Promise<RefreshStats> {
    const slice = new Slicer(this.#o.sliceMs ?? SLICE_MS);
    const files = new FileReads(this.#o.index);
    let readDirs = 0;
    const listed = new Set<string>();
    const list = async (d: DirState): Promise<void> => {
      listed.add(d.path);
      let names: string[];
      try {
        names = readdirSync(d.path);
      } catch (err) {
        if (code(err) !== 'ENOENT' && code(err) !== 'ENOTDIR') throw err;
        return;
      }
      readDirs++;
      for (const n of names) {
        if (!NAME.test(n)) continue;
        if (slice.due()) await slice.yield();
        if (files.read(join(d.path, n)) === 'gone') d.names.delete(n);
        else d.names.add(n);
      }
    };
    for (const dir of dirs) {
      const leaf = this.#leaf(dir);
      if (leaf) await list(leaf.d);
    }
    for (const path of paths) {
      if (slice.due()) await slice.yield();
      const dir = dirname(path);
      if (listed.has(dir)) continue;
      const leaf = this.#leaf(dir);
      if (!leaf) continue;
      const { d, created } = leaf;
      if (created) {
        // A directory neither a sweep nor the caller listed: files in it may have come before any event did.
        await list(d);
        continue;
      }
      const name = basename(path);
      if (files.read(path) === 'gone') d.names.delete(name);
      else d.names.add(name);
    }
    const { added, removed, unreadable, foreignKeys } = files;
    return { readDirs, added, removed, unreadable, foreignKeys };
  }

  /** The leaf directory state for `dir`, created (with its parents) if no sweep has seen it; undefined if `dir` is not a leaf directory of this cache. */
  #leaf(dir: string): { d: DirState; created: boolean } | undefined {
    const { root, levels } = this.#o;
    const rel = relative(root, dir);
    const parts = rel === '' ? [] : rel.split(sep);
    if (parts.length !== levels.length || parts.some((p, i) => p.length !== levels[i] || !/^[0-9a-f]+$/.test(p))) return undefined;
    let d = this.#dirs[0]!.get(root)!;
    let created = false;
    for (let i = 0; i < parts.length; i++) {
      const path = join(d.path, parts[i]!);
      let next = this.#dirs[i + 1]!.get(path);
      if (!next) {
        this.#dirs[i + 1]!.set(path, (next = newDir(path, i + 1)));
        d.names.add(parts[i]!);
        created = true;
      }
      d = next;
    }
    return { d, created };
  }

  /** Stops tracking a vanished directory and everything under it; returns the files dropped. */
  #dropDir(d: DirState | undefined): number {
    if (!d) return 0;
    this.#dirs[d.depth]!.delete(d.path);
    let n = 0;
    if (d.depth === this.#o.levels.length) {
      for (const name of d.names) if (this.#o.index.remove(join(d.path, name))) n++;
    } else {
      for (const name of d.names) n += this.#dropDir(this.#dirs[d.depth + 1]!.get(join(d.path, name)));
    }
    return n;
  }
}

/** Reads cache files into the index one at a time and counts the outcomes (sweeps and refreshes share it). */
class FileReads {
  readonly added: IndexedFile[] = [];
  removed = 0;
  unreadable = 0;
  foreignKeys = 0;
  readonly #index: CacheIndex;
  constructor(index: CacheIndex) {
    this.#index = index;
  }

  /** Whether the index already holds this very file (same stamp): then it need not be read. */
  unchanged(path: string): boolean {
    const known = this.#index.get(path);
    if (!known) return false;
    const st = statSync(path, { throwIfNoEntry: false });
    return st !== undefined && known.stamp === stampOf(st);
  }

  /**
   * Indexes the file at `path` unless the index already holds this very file (same stamp); drops it
   * when it is gone or not a cache file nginx would serve.
   */
  read(path: string): 'indexed' | 'unchanged' | 'unreadable' | 'gone' {
    return this.unchanged(path) ? 'unchanged' : this.take(path, summarizeHead(path));
  }

  /** Indexes (or drops) the file at `path` as `summarizeHead` read it, here or in a reader thread. */
  take(path: string, s: HeadSummary): 'indexed' | 'unreadable' | 'gone' {
    const index = this.#index;
    if (s === 'gone') {
      if (index.remove(path)) this.removed++;
      return 'gone';
    }
    if (s === 'unreadable') {
      this.unreadable++;
      index.remove(path);
      return 'unreadable';
    }
    const k = parseCacheKey(s.key);
    if (!k) this.foreignKeys++;
    const file: IndexedFile = {
      path,
      key: s.key,
      host: k?.host ?? '',
      urlPath: k?.urlPath ?? s.key,
      tags: s.tags,
      dateSec: s.dateSec,
      variant: s.variant,
      stamp: s.stamp,
    };
    index.add(file);
    this.added.push(file);
    return 'indexed';
  }
}

/** What the index keeps of a cache file's head (plain data: it crosses from reader threads). */
export type HeadSummary = 'gone' | 'unreadable' | { key: string; tags: string[]; dateSec: number; variant: boolean; stamp: string };

/** Reads the head of the cache file at `path` into what the index keeps. Throws only unexpected errors (EACCES, EIO). */
export function summarizeHead(path: string): HeadSummary {
  let read: { head: CacheFileHead; stamp: string };
  try {
    read = readHead(path);
  } catch (err) {
    if (code(err) === 'ENOENT') return 'gone';
    if (err instanceof CacheFileError) return 'unreadable';
    throw err;
  }
  const { head, stamp } = read;
  return { key: head.key, tags: cacheTags(head), dateSec: head.dateSec, variant: cacheFileName(head.key) !== basename(path), stamp };
}

function newDir(path: string, depth: number): DirState {
  return { path, depth, mtimeMs: undefined, racy: false, names: new Set() };
}

const firstRead = Buffer.alloc(FIRST_READ);

/** Reads a cache file's head (its first body_start bytes, never the body) and its identity stamp. */
export function readHead(path: string): { head: CacheFileHead; stamp: string } {
  const fd = openSync(path, 'r');
  try {
    const stamp = stampOf(fstatSync(fd));
    // One buffer for every first read (the parse copies out what it keeps): no 4 KiB garbage per file.
    let buf = firstRead;
    let bytesRead = readSync(fd, buf, 0, FIRST_READ, 0);
    const need = headLength(buf.subarray(0, bytesRead));
    if (need !== undefined && need > bytesRead && bytesRead === FIRST_READ) {
      buf = Buffer.allocUnsafe(need);
      bytesRead = readSync(fd, buf, 0, need, 0);
    }
    return { head: parseCacheFileHead(buf.subarray(0, bytesRead)), stamp };
  } finally {
    closeSync(fd);
  }
}

/**
 * Synchronous file-system work cut into slices of at most `ms`, with the event loop let through in
 * between: a sweep of 4,000 directories or a build of 100,000 heads never holds the loop for long,
 * and costs no thread-pool round trip per call (which, for these tiny calls, is most of their cost).
 */
export class Slicer {
  readonly #ms: number;
  #since = performance.now();
  constructor(ms: number = SLICE_MS) {
    this.#ms = ms;
  }
  due(): boolean {
    return performance.now() - this.#since >= this.#ms;
  }
  async yield(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#since = performance.now();
  }
}

/** Runs `fn` over `items` with at most `n` at once. */
export async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async (): Promise<void> => {
    while (i < items.length) await fn(items[i++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

/** inode, size and mtime: nginx replaces a file by rename, so a new inode means new content. */
function stampOf(st: Stats): string {
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
