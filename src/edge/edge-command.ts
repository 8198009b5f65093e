// What the edge is told to do: one purge-log entry as the edge sees it, and what applying it answers.
// Structurally compatible with src/purge PurgeLogEntry (the edge may import only src/shared, so the
// shape is restated here; test/edge/edge-command.test.ts keeps the two in step).

/** The five purges and prefetch (EdgeOne `Type`). */
export type EdgeCommandType =
  | 'purge_url'
  | 'purge_prefix'
  | 'purge_host'
  | 'purge_all'
  | 'purge_cache_tag'
  | 'prefetch_url';

/** `invalidate`: keep the object but revalidate it before serving; `delete`: drop it (DESIGN invariant 6). */
export type EdgeMethod = 'invalidate' | 'delete';

export interface EdgeCommand {
  /** The global purge-log sequence number; applied in strictly increasing order (DESIGN invariant 2). */
  readonly seq: number;
  readonly type: EdgeCommandType;
  readonly method: EdgeMethod;
  /**
   * The domains the command touches: purge_all purges each; purge_cache_tag purges the tag on each
   * (so an empty list purges nothing); purge_url/purge_prefix purge these whole hosts if their target
   * does not parse as a URL (conservative); purge_host uses them when its target is empty.
   */
  readonly hosts: readonly string[];
  /**
   * purge_url / prefetch_url: absolute URL; purge_prefix: absolute URL prefix; purge_host: the host;
   * purge_cache_tag: the tag; purge_all: unused ('').
   */
  readonly target: string;
  /** prefetch_url only: extra request headers for the origin fetch. */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ApplyResult {
  /** The built-in cache executes every method as asked (DESIGN invariant 6): the command's method. */
  readonly executedAs: EdgeMethod;
  /**
   * Objects affected right away. Set for purge_url (all Vary variants of the key, counted at apply time);
   * rule-based purges (prefix, host, all, tag) are applied lazily at lookup, so they leave it unset.
   */
  readonly matched?: number;
  /** The seq was not above the applied high-water mark: the entry had been applied already (replay). */
  readonly alreadyApplied?: true;
}

export type PrefetchResult =
  | { readonly ok: true; readonly stored: boolean }
  | { readonly ok: false; readonly failType: 'originPullFailed'; readonly failMessage: string };
