// The newest purge-log entries, read from the store once for every stream: with N nodes streaming, a
// new entry used to cost N lastSeq + readLog calls and N JSON encodings; now it costs one of each.
import type { PurgeLogEntry } from '../purge/types.ts';
import type { TaskStore } from '../store/task-store.ts';
import type { WireEntry } from './wire.ts';

/** One log entry and its stream line (`{"t":"entry","e":…}\n`), encoded once for every stream. */
export interface TailEntry {
  readonly entry: PurgeLogEntry;
  readonly line: string;
}

export function wireEntry(e: PurgeLogEntry): WireEntry {
  const w = { seq: e.seq, taskId: e.taskId, type: e.type, method: e.method, hosts: e.hosts, target: e.target };
  return e.headers ? { ...w, headers: e.headers } : w;
}

export function tailEntry(e: PurgeLogEntry): TailEntry {
  return { entry: e, line: `${JSON.stringify({ t: 'entry', e: wireEntry(e) })}\n` };
}

const PAGE = 1000;

export class LogTail {
  readonly #store: Pick<TaskStore, 'readLog' | 'lastSeq'>;
  readonly #capacity: number;
  /** Entries with #start < seq <= #end, ascending: every committed entry in that range (the log is gap-free). */
  #window: TailEntry[] = [];
  #start = -1;
  #end = -1;
  /** Bumped by notify(): entries committed before the bump are read by the next read that starts after it. */
  #generation = 0;
  /** Every entry committed before notify() number #readGeneration has been read into the window. */
  #readGeneration = -1;
  #reading: Promise<void> | undefined;
  /** The highest seq a notify() said is committed. */
  #known = -1;
  /** A notify() without a seq (or with one behind the window: the store may have gone back): the next read asks the store. */
  #askStore = false;
  /** Committed entries handed to notify(), by the seq of the first of each chunk: the next read takes them instead of reading them. */
  readonly #offers = new Map<number, readonly PurgeLogEntry[]>();
  /** Entries in #offers: at most the window's capacity (with no stream reading, nothing takes them). */
  #offered = 0;

  /** `capacity`: entries kept (default 10,000, about 300 B each); a stream further behind reads the store itself. */
  constructor(store: Pick<TaskStore, 'readLog' | 'lastSeq'>, capacity = 10_000) {
    this.#store = store;
    this.#capacity = capacity;
  }

  /** The count of notify() calls that told of new entries so far: pass it to after() to see every entry committed before it. */
  get generation(): number {
    return this.#generation;
  }

  /**
   * New entries are committed, up to `lastSeq` when given (every seq up to it is then readable): the next
   * after() reads them. `entries`, when given, are committed entries ending at `lastSeq`, ascending and
   * gap-free (one commit's, known to the process that committed it or carried by its notification): the
   * read takes them rather than asking the store. Returns false when the window already holds `lastSeq`
   * (nothing to wake anyone for).
   */
  notify(lastSeq?: number, entries?: readonly PurgeLogEntry[]): boolean {
    if (lastSeq !== undefined && entries?.length && entries.length <= this.#capacity && entries[entries.length - 1]!.seq === lastSeq && entries[0]!.seq > this.#end) {
      // Over the bound, the oldest chunks go: they are read from the store instead.
      for (const [first, chunk] of this.#offers) {
        if (this.#offered + entries.length <= this.#capacity) break;
        this.#dropOffer(first, chunk);
      }
      this.#offers.set(entries[0]!.seq, entries);
      this.#offered += entries.length;
    }
    if (lastSeq === undefined || lastSeq < this.#end) this.#askStore = true;
    else if (lastSeq === this.#end) return false;
    else this.#known = Math.max(this.#known, lastSeq);
    this.#generation++;
    return true;
  }

  /** How many entries the window holds, and those handed over and not yet taken into it (memory checks). */
  get size(): number {
    return this.#window.length + this.#offered;
  }

  /**
   * The entries after `cursor` and `end`, the seq up to which every committed entry has been read, once
   * every entry committed before notify() number `generation` is in; undefined when `cursor` is older
   * than the window (the caller reads the store: a node catching up). One store read serves every caller.
   */
  async after(cursor: number, generation: number): Promise<{ entries: readonly TailEntry[]; end: number } | undefined> {
    while (this.#readGeneration < generation) {
      if (!this.#reading) {
        const started = this.#generation;
        this.#reading = this.#read()
          .then(() => void (this.#readGeneration = Math.max(this.#readGeneration, started)))
          .finally(() => (this.#reading = undefined));
      }
      await this.#reading;
    }
    if (cursor < this.#start) return undefined;
    return { entries: this.#window.slice(this.#firstAfter(cursor)), end: this.#end };
  }

  /** The entry `seq` when the window holds it (no store read); undefined otherwise. */
  entry(seq: number): PurgeLogEntry | undefined {
    const e = this.#window[this.#firstAfter(seq - 1)]?.entry;
    return e?.seq === seq ? e : undefined;
  }

  /** Index of the first window entry after `cursor` (binary search). */
  #firstAfter(cursor: number): number {
    let lo = 0;
    let hi = this.#window.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#window[mid]!.entry.seq <= cursor) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  async #read(): Promise<void> {
    const askStore = this.#askStore || this.#end === -1;
    this.#askStore = false;
    let last = this.#known;
    if (askStore) {
      const stored = await this.#store.lastSeq();
      if (this.#end === -1 || stored < this.#end) {
        // First read, or the store went back (reset): start an empty window at the log's end.
        this.#window = [];
        this.#start = this.#end = stored;
        this.#dropOffers();
        return;
      }
      last = Math.max(last, stored);
    }
    while (this.#end < last) {
      const offer = this.#offers.get(this.#end + 1);
      if (offer) {
        this.#dropOffer(this.#end + 1, offer);
        for (const e of offer) this.#window.push(tailEntry(e));
        this.#end = offer[offer.length - 1]!.seq;
        continue;
      }
      const page = await this.#store.readLog(this.#end, PAGE);
      for (const e of page) this.#window.push(tailEntry(e));
      // Everything up to `last` was committed before readLog ran, so a short page read all of it (and
      // perhaps entries committed since: any read sees a prefix of the log, so the window holds up to its last).
      this.#end = page.length === PAGE ? page[page.length - 1]!.seq : Math.max(last, page[page.length - 1]?.seq ?? last);
    }
    this.#dropOffers();
    if (this.#window.length > this.#capacity) {
      const drop = this.#window.length - this.#capacity;
      this.#start = this.#window[drop - 1]!.entry.seq;
      this.#window = this.#window.slice(drop);
    }
  }

  /** Forgets offered chunks that start inside the window (read meanwhile, or the window was reset). */
  #dropOffers(): void {
    for (const [first, chunk] of this.#offers) if (first <= this.#end) this.#dropOffer(first, chunk);
  }

  #dropOffer(first: number, chunk: readonly PurgeLogEntry[]): void {
    this.#offers.delete(first);
    this.#offered -= chunk.length;
  }
}
