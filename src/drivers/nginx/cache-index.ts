// The in-memory index of an nginx cache directory: which file holds which key, host, path and tags,
// so that prefix, host, all and tag purges find their files in O(matches) instead of walking the
// cache (PEERS §2.2, §2.8: nginx names files by the key's md5, so it cannot answer "every file under
// /img/" itself).
import { canonicalHost } from '../../shared/host-port.ts';

/** One cache file as indexed. */
export interface IndexedFile {
  /** Absolute path of the file. */
  readonly path: string;
  /** The cache key, byte for byte (latin1), as the purge module must be given it. */
  readonly key: string;
  /** Canonical host ('' when the key is not in the snippet's `$scheme://$host$request_uri` form). */
  readonly host: string;
  /** WHATWG-normalised path + query, as purge targets are; the raw key tail for foreign keys. */
  readonly urlPath: string;
  readonly tags: readonly string[];
  /** When nginx stored it (cache header `date`, seconds). */
  readonly dateSec: number;
  /** A secondary Vary variant (its file name is not md5(key)): the purge module cannot reach it. */
  readonly variant: boolean;
  /** inode + size + mtime when read: a different stamp under the same name is a different file. */
  readonly stamp: string;
}

/** The parts of a cache key written as `$scheme://$host$request_uri` (the snippet's proxy_cache_key). */
export interface ParsedKey {
  readonly scheme: 'http' | 'https';
  readonly host: string;
  /** Path + query normalised the way purge targets are (WHATWG URL serialisation). */
  readonly urlPath: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a key back into host and path; undefined when it is not in the snippet's format (another
 * proxy_cache_key). `$request_uri` is the raw request target, so it is normalised here exactly as
 * src/purge normalises target URLs (dot segments, percent-encoding of non-ASCII), which is what lets a
 * purge of `http://a.test/x/../é` find the file stored for `/%C3%A9`.
 */
export function parseCacheKey(key: string): ParsedKey | undefined {
  const m = /^(https?):\/\/([^/?#]*)(.*)$/s.exec(key);
  if (!m) return undefined;
  const [, scheme, rawHost = '', rest = ''] = m;
  let text: string;
  try {
    text = utf8.decode(Buffer.from(rest, 'latin1'));
  } catch {
    text = rest;
  }
  const host = canonicalHost(rawHost);
  if (host === '') return undefined;
  let urlPath: string;
  try {
    const u = new URL(`http://edge.invalid${text.startsWith('/') ? text : `/${text}`}`);
    urlPath = u.pathname + u.search;
  } catch {
    return undefined;
  }
  return { scheme: scheme === 'https' ? 'https' : 'http', host, urlPath };
}

/**
 * One node per path segment. A prefix is a plain string prefix (`/img/a` matches `/img/abc`), so a
 * lookup walks the prefix's whole segments and then takes every child whose segment starts with the
 * prefix's last, partial one: O(depth + children of one node + matches).
 */
class PathNode {
  /** Created on first use: most nodes are leaves holding one file (100,000 files ≈ 100,000 nodes). */
  children: Map<string, PathNode> | undefined;
  /** Files whose path ends here: usually one (more for other schemes, raw spellings, Vary variants). */
  files: IndexedFile[] = [];
  readonly segment: string;
  readonly parent: PathNode | undefined;
  constructor(segment: string, parent: PathNode | undefined) {
    this.segment = segment;
    this.parent = parent;
  }
}

export class CacheIndex {
  readonly #byPath = new Map<string, IndexedFile>();
  readonly #hosts = new Map<string, PathNode>();
  readonly #tags = new Map<string, Set<IndexedFile>>();

  get size(): number {
    return this.#byPath.size;
  }

  get(path: string): IndexedFile | undefined {
    return this.#byPath.get(path);
  }

  /** Every indexed file (iteration order: insertion). */
  files(): IterableIterator<IndexedFile> {
    return this.#byPath.values();
  }

  /** Adds or replaces the file at `file.path`. */
  add(file: IndexedFile): void {
    this.remove(file.path);
    this.#byPath.set(file.path, file);
    this.#node(file.host, file.urlPath, true).files.push(file);
    for (const t of file.tags) {
      const k = tagKey(file.host, t);
      let set = this.#tags.get(k);
      if (!set) this.#tags.set(k, (set = new Set()));
      set.add(file);
    }
  }

  remove(path: string): IndexedFile | undefined {
    const file = this.#byPath.get(path);
    if (!file) return undefined;
    this.#byPath.delete(path);
    const node = this.#node(file.host, file.urlPath, false);
    if (node) {
      node.files = node.files.filter((f) => f !== file);
      this.#prune(file.host, node);
    }
    for (const t of file.tags) {
      const k = tagKey(file.host, t);
      const set = this.#tags.get(k);
      set?.delete(file);
      if (set?.size === 0) this.#tags.delete(k);
    }
    return file;
  }

  /** Files of one URL (every scheme, every raw spelling of the path, every Vary variant). */
  byUrl(host: string, urlPath: string): IndexedFile[] {
    return [...(this.#node(host, urlPath, false)?.files ?? [])];
  }

  /** Files whose path (+ query) starts with `prefix` on `host`. */
  byPrefix(host: string, prefix: string): IndexedFile[] {
    const root = this.#hosts.get(host);
    if (!root) return [];
    const segs = prefix.split('/');
    const partial = segs.pop() ?? '';
    let node: PathNode | undefined = root;
    for (const s of segs) {
      node = node.children?.get(s);
      if (!node) return [];
    }
    const out: IndexedFile[] = [];
    for (const [seg, child] of node.children ?? []) if (seg.startsWith(partial)) collect(child, out);
    return out;
  }

  byHost(host: string): IndexedFile[] {
    const root = this.#hosts.get(host);
    const out: IndexedFile[] = [];
    if (root) collect(root, out);
    return out;
  }

  byTag(host: string, tag: string): IndexedFile[] {
    return [...(this.#tags.get(tagKey(host, tag)) ?? [])];
  }

  /** Hosts with at least one file. */
  hosts(): string[] {
    return [...this.#hosts.keys()];
  }

  clear(): void {
    this.#byPath.clear();
    this.#hosts.clear();
    this.#tags.clear();
  }

  #node(host: string, urlPath: string, create: true): PathNode;
  #node(host: string, urlPath: string, create: false): PathNode | undefined;
  #node(host: string, urlPath: string, create: boolean): PathNode | undefined {
    let node = this.#hosts.get(host);
    if (!node) {
      if (!create) return undefined;
      this.#hosts.set(host, (node = new PathNode('', undefined)));
    }
    for (const s of urlPath.split('/')) {
      let next: PathNode | undefined = node.children?.get(s);
      if (!next) {
        if (!create) return undefined;
        (node.children ??= new Map()).set(s, (next = new PathNode(s, node)));
      }
      node = next;
    }
    return node;
  }

  #prune(host: string, start: PathNode): void {
    let node: PathNode = start;
    while (node.parent && node.files.length === 0 && !node.children?.size) {
      node.parent.children?.delete(node.segment);
      node = node.parent;
    }
    if (!node.parent && !node.children?.size && node.files.length === 0) this.#hosts.delete(host);
  }
}

const tagKey = (host: string, tag: string): string => `${host}\n${tag}`;

function collect(node: PathNode, out: IndexedFile[]): void {
  const stack = [node];
  for (let n = stack.pop(); n; n = stack.pop()) {
    for (const f of n.files) out.push(f);
    if (n.children) for (const c of n.children.values()) stack.push(c);
  }
}
