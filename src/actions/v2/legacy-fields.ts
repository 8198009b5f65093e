// Parameter reading for the legacy v2 actions (TENCENT-API §1.5-§1.8): form strings, `name.N` lists,
// blank values as absent, and the CDN module code 9003 for malformed values.
import { ApiError } from '../../shared/errors.ts';
import { CDN_FIELDS, type FieldErrors, type Reader } from '../fields.ts';

/** Malformed legacy values render as `code 4000`, `(9003)` — the CDN "parameter error" (§1.4). */
export const V2_FIELDS: FieldErrors = CDN_FIELDS;

/**
 * Drops parameters whose value is the empty string. Legacy clients send blanks for "not given":
 * the v2 docs allow `url` "may be empty" (§1.7), Tencent's own QcloudCdnTools sends `url=` by default,
 * and qcloudapi-sdk users pass `host: ''`. A required parameter sent blank is therefore "missing".
 */
export function withoutBlanks(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    if (v === '' || (Array.isArray(v) && v.every((x) => x === ''))) continue;
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * A `name.N` list (`urls.0`, `urls.1`, §1.1). A lone `urls=…` (hand-written scripts) is a list of one.
 * Entries are handed on raw: the purge domain checks each target with its own rules.
 */
export const list = (): Reader<unknown[]> => (v, name, e) => {
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) throw new ApiError(e.invalid, `${name} must be a list sent as ${name}.0, ${name}.1, …`);
  return v;
};

/** A list of strings (`hosts.n`, `status.n`); a lone value is a list of one. */
export const stringList =
  (opts: { max: number; itemMax: number }): Reader<string[]> =>
  (v, name, e) => {
    const items = list()(v, name, e);
    if (items.length > opts.max) throw new ApiError(e.invalid, `${name} has more than ${opts.max} entries`);
    return items.map((x, i) => {
      if (typeof x !== 'string' || /[\u0000-\u001f\u007f]/.test(x) || x.length > opts.itemMax) {
        throw new ApiError(e.invalid, `${name}.${i} must be a string of at most ${opts.itemMax} characters`);
      }
      return x;
    });
  };
