// Which trigrams of a fuzzy needle the trigram index is asked for (issue 9), chosen from a sample of the
// stored targets.
//
// pg_trgm asks the GIN index for every trigram of a LIKE pattern, and GIN decodes each one's whole posting
// list: a day of 333,000 tasks holds 10,000–35,000 entries under a common trigram (`ban` of every `banner`,
// `erq` of every `-er-`), so `banner-logo` decoded its 9 trigrams' entries of a day (33 ms on the loaded
// bench machine) to find 268 candidates, where two of them find 554 (`%ban%qlo%`: 1.8 ms). Which ones, only
// the data can say: a sample of the folded targets gives each trigram's share of the rows and which rows
// hold several together, so the pattern asked of the index is the one whose entries to decode plus
// candidate rows to check (each a heap visit) cost least. The row check stays the exact one; the pattern
// only has to be implied by the needle: its pieces are pieces of the needle, disjoint and in its order.

/** How many sampled targets the choice is made from. */
export const SAMPLE_ROWS = 10_000;
/** With fewer sampled targets (a young store) the index gets every trigram of the needle, as without a sample. */
const MIN_SAMPLE_ROWS = 1_000;
/**
 * A candidate row (a heap visit and the exact check) against one index entry decoded: measured on the
 * bench's 10M-task history (one day partition, load 4–8): 0.12–0.14 µs an entry, 2.4–6.6 µs a row.
 */
const ROW_COST = 40;
/** Descending the entry tree for one more trigram, in decoded entries. */
const ENTRY_COST = 1;
/** At most this many trigrams chosen (more when pieces merge): past a few rare ones, candidates are the matches. */
const MAX_TRIGRAMS = 5;

const TRIGRAM = /^[a-z0-9]{3}$/;
const EMPTY = new Int32Array(0);
/** a–z, 0–9 (a folded target has no ASCII upper case). */
const isAlnum = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 48 && c <= 57);

/** `%a%b%` with LIKE's wildcards and escape character taken literally in each piece. */
const likeOf = (pieces: readonly string[]): string => `%${pieces.map((p) => p.replace(/[\\%_]/g, '\\$&')).join('%')}%`;

/** A turn of the event loop (between chunks of work: no stall). */
const pause = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class TargetSample {
  /** Sampled rows holding each trigram (ASCII letters and digits only), row numbers ascending. */
  readonly #rows: ReadonlyMap<string, Int32Array>;
  /** The sampled targets, folded. */
  readonly #folded: readonly string[];
  readonly size: number;
  /** Scratch marks of the rows of the candidates so far (one per sampled row). */
  readonly #marks: Uint8Array;

  private constructor(rows: ReadonlyMap<string, Int32Array>, folded: readonly string[]) {
    this.#rows = rows;
    this.#folded = folded;
    this.size = folded.length;
    this.#marks = new Uint8Array(folded.length);
  }

  /**
   * From folded targets (TARGET_FOLD_SQL's fold), in chunks with a turn of the event loop between them
   * (10,000 targets are ~600,000 trigrams: tens of ms).
   */
  static async build(folded: readonly string[], chunk = 500): Promise<TargetSample> {
    const lists = new Map<number, number[]>();
    for (let i = 0; i < folded.length; i++) {
      if (i > 0 && i % chunk === 0) await pause();
      const f = folded[i]!;
      let key = 0;
      let run = 0;
      for (let k = 0; k < f.length; k++) {
        const c = f.charCodeAt(k);
        if (!isAlnum(c)) {
          run = 0;
          continue;
        }
        key = ((key << 8) | c) & 0xffffff;
        if (++run < 3) continue;
        const l = lists.get(key);
        if (l === undefined) lists.set(key, [i]);
        else if (l[l.length - 1] !== i) l.push(i);
      }
    }
    const rows = new Map<string, Int32Array>();
    for (const [key, l] of lists) rows.set(String.fromCharCode(key >>> 16, (key >>> 8) & 0xff, key & 0xff), Int32Array.from(l));
    return new TargetSample(rows, folded);
  }

  /**
   * The LIKE pattern to ask the index for a folded needle: some of its trigrams, as pieces of the needle in
   * its order (overlapping trigrams make one piece, which also holds the trigrams between them), chosen
   * greedily: the trigram that lowers the cost most, while one does. The whole needle when the sample is
   * too small or the needle has no ASCII letter-or-digit trigram.
   */
  indexPattern(foldedNeedle: string): string {
    return this.choose(foldedNeedle).pattern;
  }

  /**
   * indexPattern's pattern, and the share of the sampled targets holding the needle (null: not estimated,
   * the sample is too small or the needle has no trigram to find them by): an upper bound of one account's
   * share in a store of several, which sizes the first window of a fuzzy query.
   */
  choose(foldedNeedle: string): { pattern: string; share: number | null } {
    const whole = { pattern: likeOf([foldedNeedle]), share: null };
    if (this.size < MIN_SAMPLE_ROWS) return whole;
    // The sampled rows of the trigram at each position of the needle (null: not one pg_trgm indexes whole).
    const at: Array<Int32Array | null> = [];
    for (let k = 0; k + 3 <= foldedNeedle.length; k++) {
      const t = foldedNeedle.slice(k, k + 3);
      at.push(TRIGRAM.test(t) ? (this.#rows.get(t) ?? EMPTY) : null);
    }
    if (at.every((r) => r === null)) return whole;
    let chosen: number[] = [];
    let covered = new Set<Int32Array>();
    let entries = 0;
    let candidates: Int32Array | null = null;
    let cost = Number.POSITIVE_INFINITY;
    while (chosen.length < MAX_TRIGRAMS) {
      let best: { chosen: number[]; covered: Set<Int32Array>; entries: number; candidates: Int32Array; cost: number } | null = null;
      for (let k = 0; k < at.length; k++) {
        if (at[k] === null || chosen.includes(k)) continue;
        const next = [...chosen, k].sort((a, b) => a - b);
        // The trigrams the pattern's pieces hold: a trigram twice in the needle is asked for once (as pg_trgm does).
        const cover = new Set<Int32Array>();
        for (let i = 0; i < next.length; i++) {
          cover.add(at[next[i]!]!);
          if (i > 0 && next[i]! - next[i - 1]! < 3) for (let m = next[i - 1]! + 1; m < next[i]!; m++) cover.add(at[m]!);
        }
        let e = entries;
        const added: Int32Array[] = [];
        for (const rows of cover) if (!covered.has(rows)) added.push(rows);
        for (const rows of added) e += rows.length + ENTRY_COST;
        if (e >= (best?.cost ?? cost)) continue;
        let c: Int32Array | null = candidates;
        for (const rows of added) c = this.#intersect(c, rows);
        // A trigram absent from the sample is still in some rows: halve the estimate per trigram instead of 0.
        const total = e + ROW_COST * Math.max(c!.length, 0.5 ** cover.size);
        if (total < (best?.cost ?? cost)) best = { chosen: next, covered: cover, entries: e, candidates: c!, cost: total };
      }
      if (best === null) break;
      ({ chosen, covered, entries, candidates, cost } = best);
    }
    const pieces: string[] = [];
    for (let i = 0; i < chosen.length; ) {
      let j = i;
      while (j + 1 < chosen.length && chosen[j + 1]! - chosen[j]! < 3) j++;
      pieces.push(foldedNeedle.slice(chosen[i]!, chosen[j]! + 3));
      i = j + 1;
    }
    let holding = 0;
    for (const r of candidates!) if (this.#folded[r]!.includes(foldedNeedle)) holding++;
    return { pattern: likeOf(pieces), share: holding / this.size };
  }

  /** Rows in both (sorted) lists; null is every row. */
  #intersect(a: Int32Array | null, b: Int32Array): Int32Array {
    if (a === null) return b;
    const marks = this.#marks;
    for (let i = 0; i < b.length; i++) marks[b[i]!] = 1;
    const out = a.filter((r) => marks[r] === 1);
    for (let i = 0; i < b.length; i++) marks[b[i]!] = 0;
    return out;
  }
}
