// The invalidation index: prefix, host, all and tag purges kept as seq-stamped rules and checked at
// lookup, so applying a purge never walks the cache (DESIGN invariant 5, PEERS §2.8 "lazy rule list"
// made O(path length) per lookup by a trie instead of O(#rules)).

import type { EdgeMethod } from './edge-command.ts';

/** What the rules say about one object: nothing, revalidate before serving, or drop it. */
export type PurgeVerdict = 'none' | 'invalidate' | 'delete';

/** The newest rule seq per method at one rule site; 0 = no live rule (real seqs are >= 1). */
interface Site {
  del: number;
  inv: number;
}

/**
 * A node of a per-host radix tree (compressed character trie) over the object's path+query string.
 * Every prefix rule ends exactly at a node, so a lookup follows at most one edge per node and checks
 * the seqs of the nodes it passes: cost O(length of the path), whatever the number of rules.
 * A radix tree rather than a plain segment trie because a prefix without a trailing slash is a plain
 * string prefix (`/img/a` matches `/img/abc`); prefixes ending in `/` end on a segment boundary anyway.
 */
class PrefixNode implements Site {
  /** The edge label from the parent ('' for the root). */
  label: string;
  parent: PrefixNode | null;
  /** Children by the first char code of their label. */
  children: Map<number, PrefixNode> | null = null;
  del = 0;
  inv = 0;
  /** Unlinked from its tree (pruned, merged or coalesced away). */
  dead = false;

  constructor(label: string, parent: PrefixNode | null) {
    this.label = label;
    this.parent = parent;
  }
}

interface HostRules {
  readonly host: string;
  /** purge_host / purge_all and coalesced rules. */
  readonly all: Site;
  root: PrefixNode;
  tags: Map<string, Site>;
  /** Live rule records of this host (prefix, tag and host-wide). */
  ruleCount: number;
  /** Newest seq of any rule ever added for this host: the lookup fast path. */
  maxSeq: number;
  /** Newest delete / invalidate seq among its prefix and tag rules (what coalescing must cover). */
  maxDel: number;
  maxInv: number;
}

/** One applied rule, kept in seq order so rules can be retired from the front. */
interface RuleRecord {
  readonly seq: number;
  readonly host: HostRules;
  readonly site: Site;
  /** Tag rules: the tag, to unlink the site from the host's tag map once retired. */
  readonly tag?: string;
}

export interface InvalidationIndexOptions {
  /**
   * Hard cap on live rules. Above it the host with the most rules is coalesced into one host-wide rule
   * carrying the newest seq of each method among them (conservative: everything any of its rules
   * matched is still matched, plus the rest of the host). If the biggest host has a single rule left,
   * everything is coalesced into one global rule. Default 100 000.
   */
  readonly maxRules?: number;
}

const maxOf = (a: number, b: number): number => (a > b ? a : b);

/** Length of the common prefix of `label` and `s` starting at `pos`. */
function commonPrefix(label: string, s: string, pos: number): number {
  const n = Math.min(label.length, s.length - pos);
  let i = 0;
  while (i < n && label.charCodeAt(i) === s.charCodeAt(pos + i)) i++;
  return i;
}

/**
 * Rules are recorded with the seq of the command that created them. An object stored at seq `s`
 * (the edge's applied seq when its fetch started) is affected by a matching rule whose seq > s.
 * Rules with seq <= the oldest stamp still in the cache can affect nothing and are retired with
 * `retireThrough`, which keeps the rule set bounded by what the cache still holds.
 */
export class InvalidationIndex {
  readonly maxRules: number;
  readonly #hosts = new Map<string, HostRules>();
  /** Live records in (mostly) ascending seq; `#head` is the first live one. */
  #records: RuleRecord[] = [];
  #head = 0;
  /** Newest seq of any rule ever added: objects stamped at or above it need no check at all. */
  #maxSeq = 0;
  /** Everything-coalesced rule (the last-resort fallback of the hard cap). */
  readonly #global: Site = { del: 0, inv: 0 };
  #coalesced = 0;

  constructor(options: InvalidationIndexOptions = {}) {
    this.maxRules = options.maxRules ?? 100_000;
    if (!(this.maxRules >= 1)) throw new RangeError(`maxRules must be >= 1, got ${this.maxRules}`);
  }

  /** Live rules. */
  get size(): number {
    return this.#records.length - this.#head;
  }

  /** How many times the hard cap forced a coalesce (for stats and tests). */
  get coalesced(): number {
    return this.#coalesced;
  }

  /** Newest rule seq ever added (0 when none). */
  get maxSeq(): number {
    return this.#maxSeq;
  }

  /** Every path on `host` starting with the string `prefix` (path + query, e.g. `/img/`). */
  addPrefix(host: string, prefix: string, seq: number, method: EdgeMethod): void {
    const h = this.#hostRules(host);
    const node = this.#insert(h, prefix);
    this.#stamp(node, seq, method);
    this.#noteScoped(h, seq, method);
    this.#push({ seq, host: h, site: node });
  }

  /** Every object of `host` (purge_host, and purge_all for each of its hosts). */
  addHost(host: string, seq: number, method: EdgeMethod): void {
    const h = this.#hostRules(host);
    this.#stamp(h.all, seq, method);
    h.maxSeq = maxOf(h.maxSeq, seq);
    this.#push({ seq, host: h, site: h.all });
  }

  /** Every object of `host` carrying `tag`. */
  addTag(host: string, tag: string, seq: number, method: EdgeMethod): void {
    const h = this.#hostRules(host);
    let site = h.tags.get(tag);
    if (site === undefined) {
      site = { del: 0, inv: 0 };
      h.tags.set(tag, site);
    }
    this.#stamp(site, seq, method);
    this.#noteScoped(h, seq, method);
    this.#push({ seq, host: h, site, tag });
  }

  /**
   * The strongest rule newer than `stamp` matching an object: `delete` wins over `invalidate`.
   * O(1) when no rule is newer than the stamp; otherwise O(path length + number of the object's tags).
   */
  verdict(host: string, path: string, tags: readonly string[], stamp: number): PurgeVerdict {
    if (this.#maxSeq <= stamp) return 'none';
    let del = this.#global.del;
    let inv = this.#global.inv;
    const h = this.#hosts.get(host);
    if (h !== undefined && h.maxSeq > stamp) {
      del = maxOf(del, h.all.del);
      inv = maxOf(inv, h.all.inv);
      let node = h.root;
      let pos = 0;
      for (;;) {
        del = maxOf(del, node.del);
        inv = maxOf(inv, node.inv);
        const children = node.children;
        if (children === null || pos >= path.length) break;
        const child = children.get(path.charCodeAt(pos));
        if (child === undefined || !path.startsWith(child.label, pos)) break;
        pos += child.label.length;
        node = child;
      }
      if (h.tags.size > 0) {
        for (const tag of tags) {
          const site = h.tags.get(tag);
          if (site !== undefined) {
            del = maxOf(del, site.del);
            inv = maxOf(inv, site.inv);
          }
        }
      }
    }
    if (del > stamp) return 'delete';
    if (inv > stamp) return 'invalidate';
    return 'none';
  }

  /**
   * Retires every rule with seq <= `seq` (callers pass the oldest stamp still cached or in flight:
   * such rules can no longer affect anything). Cost O(rules retired).
   */
  retireThrough(seq: number): number {
    let retired = 0;
    const records = this.#records;
    while (this.#head < records.length) {
      const r = records[this.#head];
      if (r === undefined || r.seq > seq) break;
      this.#head++;
      retired++;
      this.#retire(r, seq);
    }
    // Keep the array from growing without bound: drop the retired front once it dominates.
    if (this.#head > 1024 && this.#head * 2 > records.length) {
      this.#records = records.slice(this.#head);
      this.#head = 0;
    }
    if (this.#global.del <= seq) this.#global.del = 0;
    if (this.#global.inv <= seq) this.#global.inv = 0;
    return retired;
  }

  clear(): void {
    this.#hosts.clear();
    this.#records = [];
    this.#head = 0;
    this.#global.del = 0;
    this.#global.inv = 0;
    // #maxSeq is kept: it only gates the fast path, and a lower value would be as correct but no cheaper.
  }

  #hostRules(host: string): HostRules {
    let h = this.#hosts.get(host);
    if (h === undefined) {
      h = {
        host,
        all: { del: 0, inv: 0 },
        root: new PrefixNode('', null),
        tags: new Map(),
        ruleCount: 0,
        maxSeq: 0,
        maxDel: 0,
        maxInv: 0,
      };
      this.#hosts.set(host, h);
    }
    return h;
  }

  #stamp(site: Site, seq: number, method: EdgeMethod): void {
    if (method === 'delete') site.del = maxOf(site.del, seq);
    else site.inv = maxOf(site.inv, seq);
    this.#maxSeq = maxOf(this.#maxSeq, seq);
  }

  #noteScoped(h: HostRules, seq: number, method: EdgeMethod): void {
    h.maxSeq = maxOf(h.maxSeq, seq);
    if (method === 'delete') h.maxDel = maxOf(h.maxDel, seq);
    else h.maxInv = maxOf(h.maxInv, seq);
  }

  #push(r: RuleRecord): void {
    this.#records.push(r);
    r.host.ruleCount++;
    if (this.size > this.maxRules) this.#enforceCap();
  }

  /** The node where `prefix` ends, splitting an edge if it ends inside one. */
  #insert(h: HostRules, prefix: string): PrefixNode {
    let node = h.root;
    let pos = 0;
    while (pos < prefix.length) {
      const c = prefix.charCodeAt(pos);
      node.children ??= new Map();
      const child = node.children.get(c);
      if (child === undefined) {
        const leaf = new PrefixNode(prefix.slice(pos), node);
        node.children.set(c, leaf);
        return leaf;
      }
      const common = commonPrefix(child.label, prefix, pos);
      if (common < child.label.length) {
        // Split `child` so that the prefix ends (or branches) at a node.
        const mid = new PrefixNode(child.label.slice(0, common), node);
        child.label = child.label.slice(common);
        child.parent = mid;
        mid.children = new Map([[child.label.charCodeAt(0), child]]);
        node.children.set(c, mid);
        node = mid;
      } else {
        node = child;
      }
      pos += common;
    }
    return node;
  }

  #retire(r: RuleRecord, through: number): void {
    r.host.ruleCount--;
    const site = r.site;
    if (site.del <= through) site.del = 0;
    if (site.inv <= through) site.inv = 0;
    if (site.del !== 0 || site.inv !== 0) return;
    if (r.tag !== undefined) {
      if (r.host.tags.get(r.tag) === site) r.host.tags.delete(r.tag);
    } else if (site instanceof PrefixNode) {
      this.#prune(site);
    }
    const h = r.host;
    if (h.ruleCount === 0 && h.all.del === 0 && h.all.inv === 0 && h.tags.size === 0 && h.root.children === null) {
      if (this.#hosts.get(h.host) === h) this.#hosts.delete(h.host);
    }
  }

  /** Unlinks rule-less leaves upwards and merges rule-less single-child nodes into their child. */
  #prune(start: PrefixNode): void {
    let node: PrefixNode | null = start;
    while (node !== null && !node.dead && node.parent !== null && node.del === 0 && node.inv === 0) {
      const parent: PrefixNode = node.parent;
      if (node.children === null || node.children.size === 0) {
        parent.children?.delete(node.label.charCodeAt(0));
        if (parent.children?.size === 0) parent.children = null;
        node.dead = true;
        node.parent = null;
        node = parent;
        continue;
      }
      if (node.children.size === 1) {
        const [only] = node.children.values();
        if (only !== undefined) {
          only.label = node.label + only.label;
          only.parent = parent;
          parent.children?.set(only.label.charCodeAt(0), only);
          node.dead = true;
          node.parent = null;
        }
      }
      break;
    }
  }

  /**
   * Hard-cap fallback (see InvalidationIndexOptions.maxRules): coalesce the host with the most rules
   * into its host-wide rule, or everything into the global rule when no host has more than one.
   */
  #enforceCap(): void {
    let biggest: HostRules | undefined;
    for (const h of this.#hosts.values()) if (biggest === undefined || h.ruleCount > biggest.ruleCount) biggest = h;
    this.#coalesced++;
    if (biggest !== undefined && biggest.ruleCount > 1) {
      const h = biggest;
      h.all.del = maxOf(h.all.del, h.maxDel);
      h.all.inv = maxOf(h.all.inv, h.maxInv);
      for (const n of h.root.children?.values() ?? []) n.dead = true;
      h.root = new PrefixNode('', null);
      h.tags = new Map();
      this.#records = this.#records.slice(this.#head).filter((r) => r.host !== h);
      this.#head = 0;
      h.ruleCount = 0;
      // One record retires the coalesced rule; its seq may be below later records' (retiring is only
      // delayed by that, never early: #retire compares the site's own seqs with the bound).
      this.#records.push({ seq: maxOf(h.all.del, h.all.inv), host: h, site: h.all });
      h.ruleCount = 1;
      return;
    }
    for (const h of this.#hosts.values()) {
      this.#global.del = maxOf(this.#global.del, maxOf(h.all.del, h.maxDel));
      this.#global.inv = maxOf(this.#global.inv, maxOf(h.all.inv, h.maxInv));
    }
    this.#hosts.clear();
    this.#records = [];
    this.#head = 0;
  }
}
