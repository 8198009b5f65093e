// The edge cache engine without HTTP: stored objects, the applied purge seq, lazy purge verdicts,
// in-flight fetch stamps and the background sweep that keeps the rule set bounded.

import CachePolicy from 'http-cache-semantics';
import type { Clock } from '../shared/clock.ts';
import { cacheKey, canonicalHost, headerValue, parseTargetUrl, varyNames, type HeaderMap } from './cache-key.ts';
import type { ApplyResult, EdgeCommand, EdgeMethod } from './edge-command.ts';
import { InvalidationIndex, type PurgeVerdict } from './invalidation-index.ts';
import { MemoryStorage } from './memory-storage.ts';

/** One stored response: one Vary variant of one cache key. */
export interface CachedObject {
  /** host + path: what purge_url names. */
  readonly key: string;
  readonly host: string;
  /** path + query. */
  readonly path: string;
  status: number;
  /** Freshness and revalidation state (http-cache-semantics, on the injected clock). */
  policy: CachePolicy;
  body: Buffer;
  tags: readonly string[];
  /** Lower-cased names from the response's Vary, and the request's values for them at store time. */
  readonly varyNames: readonly string[];
  readonly varyValues: readonly (string | undefined)[];
  /** The applied seq when the fetch that produced (or last revalidated) it started. */
  stamp: number;
  /** Must be revalidated with the origin before it is served again (DESIGN invariant 6). */
  invalidated: boolean;
}

/**
 * One origin fetch in progress (miss, revalidation or prefetch). Its stamp is taken before the request
 * leaves, so a purge applied while it is in flight still affects what it stores (conservative).
 */
export interface Fetch {
  readonly key: string;
  readonly startSeq: number;
  readonly epoch: number;
  /** Strongest purge_url applied to this key while in flight. */
  purged: 'none' | EdgeMethod;
}

/** Everything needed to store one response. */
export interface NewObject {
  readonly host: string;
  readonly path: string;
  readonly status: number;
  readonly policy: CachePolicy;
  readonly body: Buffer;
  readonly tags: readonly string[];
  /** The response headers the policy was built from (for size accounting and Vary). */
  readonly responseHeaders: HeaderMap;
  /** The request headers (for the Vary values). */
  readonly requestHeaders: HeaderMap;
}

export interface EdgeCacheOptions {
  readonly clock: Clock;
  /** Bound on stored bytes (bodies + headers + a fixed per-object overhead). */
  readonly maxBytes: number;
  /** Largest body stored; larger ones are streamed through uncached. Default min(maxBytes / 8, 64 MiB). */
  readonly maxObjectBytes?: number;
  /** Variants kept per cache key (oldest dropped first). Default 32. */
  readonly maxVariants?: number;
  /** Hard cap on live invalidation rules (see InvalidationIndexOptions). Default 100 000. */
  readonly maxRules?: number;
  /** Initial applied seq (e.g. where the stream resumes). Default 0. */
  readonly appliedSeq?: number;
  /**
   * Re-stamp an object with the applied seq after a lookup found no rule against it, so popular
   * objects stop pinning old rules. Default true; benchmarks turn it off to measure the full check.
   */
  readonly restampOnLookup?: boolean;
}

export interface EdgeCacheStats {
  readonly objects: number;
  readonly bytes: number;
  readonly rules: number;
  readonly appliedSeq: number;
  readonly evictions: number;
  /** Objects dropped or flagged lazily by prefix/host/all/tag rules. */
  readonly lazyDeletes: number;
  readonly lazyInvalidations: number;
  /** Times the rule cap forced a coalesce. */
  readonly coalesced: number;
  /** Purge-log entries applied (replays not counted), by type. */
  readonly appliedByType: Readonly<Record<string, number>>;
}

/** Accounted per-object overhead beyond body and headers (policy, maps, bookkeeping). */
export const OBJECT_OVERHEAD_BYTES = 512;

function headerBytes(headers: HeaderMap): number {
  let n = 0;
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    n += k.length + 4;
    if (Array.isArray(v)) for (const x of v) n += x.length + k.length + 4;
    else n += v.length;
  }
  return n;
}

/** An http-cache-semantics policy class whose notion of "now" is the injected clock (STYLE 9). */
function clockedPolicyClass(clock: Clock): typeof CachePolicy {
  return class ClockedCachePolicy extends CachePolicy {
    // Overrides the library's (undeclared) `now()`; it is read for the response time and for Age.
    now(): number {
      return clock.now();
    }
  };
}

export class EdgeCache {
  readonly clock: Clock;
  readonly maxObjectBytes: number;
  readonly maxVariants: number;
  readonly #storage: MemoryStorage<CachedObject>;
  readonly #index: InvalidationIndex;
  readonly #restamp: boolean;
  readonly #Policy: typeof CachePolicy;
  #appliedSeq: number;
  /** Bumped by dropAll(): fetches that started before it store nothing. */
  #epoch = 0;
  /** stamp → objects carrying it; the smallest key bounds which rules can still matter. */
  readonly #buckets = new Map<number, Set<CachedObject>>();
  readonly #inflight = new Map<string, Set<Fetch>>();
  #evictions = 0;
  #lazyDeletes = 0;
  #lazyInvalidations = 0;
  readonly #appliedByType: Record<string, number> = {};

  constructor(options: EdgeCacheOptions) {
    this.clock = options.clock;
    this.#storage = new MemoryStorage(options.maxBytes);
    this.maxObjectBytes = options.maxObjectBytes ?? Math.min(Math.floor(options.maxBytes / 8), 64 * 1024 * 1024);
    this.maxVariants = options.maxVariants ?? 32;
    this.#index = new InvalidationIndex(options.maxRules === undefined ? {} : { maxRules: options.maxRules });
    this.#restamp = options.restampOnLookup ?? true;
    this.#appliedSeq = options.appliedSeq ?? 0;
    this.#Policy = clockedPolicyClass(options.clock);
  }

  /** The highest seq applied (the ack high-water mark). */
  get appliedSeq(): number {
    return this.#appliedSeq;
  }

  /** A cache policy for a request/response pair, on the injected clock, evaluated as a shared cache. */
  newPolicy(req: CachePolicy.Request, res: CachePolicy.Response): CachePolicy {
    return new this.#Policy(req, res, { shared: true });
  }

  /**
   * Applies one purge-log entry, synchronously, in O(1) + O(variants of one key) for purge_url and
   * O(length of the target) for the rule-based purges, whatever the size of the cache.
   * Entries at or below the applied seq are replays and are ignored (`alreadyApplied`).
   * A URL or prefix target that does not parse purges the command's hosts instead (conservative).
   * prefetch_url only advances the seq here; the fetch itself is EdgeProxy.prefetch().
   * Rules are retired by maintain(), not here (that needs the lowest stamp); past the hard cap the index
   * coalesces instead (InvalidationIndexOptions.maxRules).
   */
  apply(cmd: EdgeCommand): ApplyResult {
    const method: EdgeMethod = cmd.method === 'delete' ? 'delete' : 'invalidate';
    if (!(cmd.seq > this.#appliedSeq)) return { executedAs: method, matched: 0, alreadyApplied: true };
    let result: ApplyResult = { executedAs: method };
    const seq = cmd.seq;
    switch (cmd.type) {
      case 'purge_url': {
        const t = parseTargetUrl(cmd.target);
        if (t === undefined) this.#purgeHosts(cmd.hosts, seq, method);
        else result = { executedAs: method, matched: this.#purgeKey(cacheKey(t.host, t.path), method) };
        break;
      }
      case 'purge_prefix': {
        const t = parseTargetUrl(cmd.target);
        if (t === undefined) this.#purgeHosts(cmd.hosts, seq, method);
        else this.#index.addPrefix(t.host, t.path, seq, method);
        break;
      }
      case 'purge_host': {
        // The target is a host name; tolerate a URL, and fall back to the command's hosts when empty.
        const host = cmd.target.includes('://') ? parseTargetUrl(cmd.target)?.host : cmd.target;
        this.#purgeHosts(host === undefined || host === '' ? cmd.hosts : [host], seq, method);
        break;
      }
      case 'purge_all':
        this.#purgeHosts(cmd.hosts, seq, method);
        break;
      case 'purge_cache_tag':
        for (const h of cmd.hosts) this.#index.addTag(canonicalHost(h), cmd.target, seq, method);
        break;
      case 'prefetch_url':
        break;
    }
    this.#appliedSeq = seq;
    this.#appliedByType[cmd.type] = (this.#appliedByType[cmd.type] ?? 0) + 1;
    return result;
  }

  /**
   * Marks every seq up to `seq` applied although none of them concerned this node (stream heartbeats,
   * or a prefetch entry whose fetch runs separately). Lower or equal seqs are ignored.
   */
  advanceTo(seq: number): void {
    if (seq > this.#appliedSeq) this.#appliedSeq = seq;
  }

  /**
   * The stored variant of `host`+`path` matching the request's Vary fields, after applying any rule
   * newer than its stamp: a delete rule drops it (undefined is returned), an invalidate rule flags it.
   * The caller decides whether it may be served (flag, lease, freshness). Does not touch the LRU.
   */
  lookup(host: string, path: string, requestHeaders: HeaderMap): CachedObject | undefined {
    const variants = this.#storage.variants(cacheKey(host, path));
    if (variants === undefined) return undefined;
    for (const obj of variants) {
      if (varyMatches(obj, requestHeaders)) return this.#check(obj) === 'delete' ? undefined : obj;
    }
    return undefined;
  }

  /** Marks an object just served most recently used. */
  touch(obj: CachedObject): void {
    this.#storage.touch(obj);
  }

  /** Registers an origin fetch for `host`+`path`; pair with endFetch() in a finally. */
  beginFetch(host: string, path: string): Fetch {
    const f: Fetch = { key: cacheKey(host, path), startSeq: this.#appliedSeq, epoch: this.#epoch, purged: 'none' };
    let set = this.#inflight.get(f.key);
    if (set === undefined) {
      set = new Set();
      this.#inflight.set(f.key, set);
    }
    set.add(f);
    return f;
  }

  endFetch(f: Fetch): void {
    const set = this.#inflight.get(f.key);
    if (set === undefined) return;
    set.delete(f);
    if (set.size === 0) this.#inflight.delete(f.key);
  }

  /**
   * Stores a complete response fetched by `f`, replacing the variant it supersedes. Refused (undefined)
   * when the body is over maxObjectBytes, the cache was dropped meanwhile, or a purge_url delete of the
   * key arrived while in flight; a purge_url invalidate in flight stores it already flagged.
   */
  store(f: Fetch, o: NewObject): CachedObject | undefined {
    if (f.epoch !== this.#epoch || f.purged === 'delete') return undefined;
    if (o.body.length > this.maxObjectBytes) return undefined;
    const names = varyNames(headerValue(o.responseHeaders, 'vary'));
    if (names.includes('*')) return undefined;
    const obj: CachedObject = {
      key: cacheKey(o.host, o.path),
      host: o.host,
      path: o.path,
      status: o.status,
      policy: o.policy,
      body: o.body,
      tags: o.tags,
      varyNames: names,
      varyValues: names.map((n) => headerValue(o.requestHeaders, n)),
      stamp: f.startSeq,
      invalidated: f.purged === 'invalidate',
    };
    return this.insert(obj, headerBytes(o.responseHeaders)) ? obj : undefined;
  }

  /**
   * Low-level insertion (also the benchmarks' way to fill the cache without HTTP): replaces the variant
   * with the same Vary values (and variants keyed on other Vary fields), keeps at most maxVariants.
   */
  insert(obj: CachedObject, headerSize = 0): boolean {
    const existing = this.#storage.variants(obj.key);
    if (existing !== undefined) {
      for (const old of [...existing]) {
        if (!sameVaryNames(old, obj) || sameVaryValues(old, obj)) this.remove(old);
      }
      const left = this.#storage.variants(obj.key);
      if (left !== undefined && left.length >= this.maxVariants) {
        for (const old of left.slice(0, left.length - this.maxVariants + 1)) this.remove(old);
      }
    }
    const { stored, evicted } = this.#storage.add(obj, obj.body.length + headerSize + OBJECT_OVERHEAD_BYTES);
    for (const e of evicted) this.#evicted(e);
    if (stored) this.#bucketAdd(obj);
    return stored;
  }

  /**
   * After a 304 for `f`: the stored body is kept, the policy (headers) replaced. The object is
   * re-stamped with the fetch's start seq and unflagged, unless a purge_url hit the key in flight.
   * Returns false when the object is gone meanwhile (deleted, evicted, dropped): it must not be re-added.
   * The accounted size stays: a 304 only updates header fields the stored response already had.
   */
  refresh(f: Fetch, obj: CachedObject, policy: CachePolicy, tags: readonly string[] | undefined): boolean {
    if (f.epoch !== this.#epoch || f.purged === 'delete' || !this.#storage.has(obj)) return false;
    obj.policy = policy;
    if (tags !== undefined && tags.length > 0) obj.tags = tags;
    obj.invalidated = f.purged === 'invalidate';
    this.#setStamp(obj, f.startSeq);
    this.#storage.touch(obj);
    return true;
  }

  /** Drops one object. */
  remove(obj: CachedObject): void {
    if (this.#storage.remove(obj)) this.#bucketRemove(obj);
  }

  /** Drops every variant of `host`+`path` (unsafe methods invalidate their target, RFC 9111 §4.4). */
  removeKey(host: string, path: string): number {
    const removed = this.#storage.removeKey(cacheKey(host, path));
    for (const o of removed) this.#bucketRemove(o);
    return removed.length;
  }

  /**
   * Empties the cache and the rules (the node fell behind the retained log). Fetches in flight store
   * nothing. `appliedSeq`, when given, becomes the high-water mark (even a lower one: with nothing
   * cached and nothing in flight able to store, no stamp can predate the entries applied next).
   */
  dropAll(appliedSeq?: number): number {
    const n = this.#storage.count;
    this.#storage.clear();
    this.#buckets.clear();
    this.#index.clear();
    this.#epoch++;
    if (appliedSeq !== undefined) this.#appliedSeq = appliedSeq;
    return n;
  }

  /**
   * Background upkeep (EdgeProxy runs it on a timer): checks up to `budget` of the oldest-stamped
   * objects against the rules (dropping, flagging or re-stamping them, like Varnish's ban lurker),
   * then retires the rules no cached or in-flight object can match any more.
   */
  maintain(budget = 10_000): { checked: number; retired: number } {
    let checked = 0;
    while (checked < budget) {
      const low = this.#lowestStamp();
      if (low === undefined || low >= this.#appliedSeq) break;
      const bucket = this.#buckets.get(low);
      if (bucket === undefined) break;
      for (const obj of bucket) {
        if (checked >= budget) break;
        checked++;
        this.#check(obj, true);
      }
    }
    return { checked, retired: this.compact() };
  }

  /** Retires rules older than every stamp still cached or in flight. Cost O(distinct stamps + retired). */
  compact(): number {
    let floor = this.#lowestStamp() ?? this.#appliedSeq;
    for (const set of this.#inflight.values()) for (const f of set) if (f.startSeq < floor) floor = f.startSeq;
    return this.#index.retireThrough(Math.min(floor, this.#appliedSeq));
  }

  stats(): EdgeCacheStats {
    return {
      objects: this.#storage.count,
      bytes: this.#storage.bytes,
      rules: this.#index.size,
      appliedSeq: this.#appliedSeq,
      evictions: this.#evictions,
      lazyDeletes: this.#lazyDeletes,
      lazyInvalidations: this.#lazyInvalidations,
      coalesced: this.#index.coalesced,
      appliedByType: { ...this.#appliedByType },
    };
  }

  /** The rule index (tests and benchmarks). */
  get index(): InvalidationIndex {
    return this.#index;
  }

  #purgeHosts(hosts: readonly string[], seq: number, method: EdgeMethod): void {
    for (const h of hosts) this.#index.addHost(canonicalHost(h), seq, method);
  }

  /** purge_url: a map lookup; every Vary variant, and fetches of the key in flight. */
  #purgeKey(key: string, method: EdgeMethod): number {
    let matched = 0;
    const inflight = this.#inflight.get(key);
    if (inflight !== undefined) for (const f of inflight) if (f.purged !== 'delete') f.purged = method;
    if (method === 'delete') {
      const removed = this.#storage.removeKey(key);
      for (const o of removed) this.#bucketRemove(o);
      matched = removed.length;
    } else {
      const variants = this.#storage.variants(key);
      if (variants !== undefined) {
        for (const o of variants) o.invalidated = true;
        matched = variants.length;
      }
    }
    return matched;
  }

  /**
   * Applies the rules newer than the object's stamp. Sound to re-stamp afterwards: every rule up to the
   * applied seq has just been checked against it (apply() is synchronous), so only newer ones matter.
   */
  #check(obj: CachedObject, sweeping = false): PurgeVerdict {
    if (obj.stamp >= this.#appliedSeq) return 'none';
    const v = this.#index.verdict(obj.host, obj.path, obj.tags, obj.stamp);
    if (v === 'delete') {
      this.remove(obj);
      this.#lazyDeletes++;
      return v;
    }
    if (v === 'invalidate') {
      if (!obj.invalidated) this.#lazyInvalidations++;
      obj.invalidated = true;
    }
    if (this.#restamp || sweeping) this.#setStamp(obj, this.#appliedSeq);
    return v;
  }

  #evicted(obj: CachedObject): void {
    this.#bucketRemove(obj);
    this.#evictions++;
  }

  #setStamp(obj: CachedObject, stamp: number): void {
    if (obj.stamp === stamp) return;
    this.#bucketRemove(obj);
    obj.stamp = stamp;
    this.#bucketAdd(obj);
  }

  #bucketAdd(obj: CachedObject): void {
    let b = this.#buckets.get(obj.stamp);
    if (b === undefined) {
      b = new Set();
      this.#buckets.set(obj.stamp, b);
    }
    b.add(obj);
  }

  #bucketRemove(obj: CachedObject): void {
    const b = this.#buckets.get(obj.stamp);
    if (b === undefined) return;
    b.delete(obj);
    if (b.size === 0) this.#buckets.delete(obj.stamp);
  }

  #lowestStamp(): number | undefined {
    let low: number | undefined;
    for (const s of this.#buckets.keys()) if (low === undefined || s < low) low = s;
    return low;
  }
}

function varyMatches(obj: CachedObject, headers: HeaderMap): boolean {
  const names = obj.varyNames;
  for (let i = 0; i < names.length; i++) {
    const n = names[i];
    if (n === undefined || headerValue(headers, n) !== obj.varyValues[i]) return false;
  }
  return true;
}

function sameVaryNames(a: CachedObject, b: CachedObject): boolean {
  return a.varyNames.length === b.varyNames.length && a.varyNames.every((n, i) => n === b.varyNames[i]);
}

function sameVaryValues(a: CachedObject, b: CachedObject): boolean {
  return a.varyValues.length === b.varyValues.length && a.varyValues.every((v, i) => v === b.varyValues[i]);
}
