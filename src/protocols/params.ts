// Form, query-string and multipart field decoding, the flattened-key model (`Targets.0`,
// `Filters.0.Values.1`) of TENCENT-API §1.1 / §2.2 / §7.5, and the scalar coercions form input needs.
import { ApiError } from '../shared/errors.ts';

/** Decoded parameters exactly as they arrived: one string per (unique) key. */
export type FlatParams = Record<string, string>;

/** A key may not nest deeper than this (`a.b.c…`); Tencent's deepest purge field has 4 levels. */
const MAX_DEPTH = 16;

/** Shown in error messages: long or odd input is cut and quoted. */
export const quote = (s: string, max = 80): string => JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);

/** Defines an own property even for `__proto__`, so no key can touch a prototype. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Rejects what no client sends and what would confuse logs or lookups (brief: control characters, duplicates). */
function addParam(out: FlatParams, key: string, value: string): void {
  if (key === '') throw new ApiError('InvalidParameter', `A parameter has an empty name (value ${quote(value)}).`);
  if (/[\u0000-\u001f\u007f]/.test(key)) {
    throw new ApiError('InvalidParameter', `Parameter name ${quote(key)} contains a control character.`);
  }
  if (Object.hasOwn(out, key)) throw new ApiError('InvalidParameter', `Parameter ${quote(key)} is given more than once.`);
  setOwn(out, key, value);
}

function decodeComponent(raw: string, what: string): string {
  try {
    // WHATWG urlencoded: `+` is a space (TENCENT-API §2.2; PHP and Python's urlencode both send it).
    return decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    throw new ApiError('InvalidParameter', `Malformed percent-encoding in ${what} ${quote(raw)}.`);
  }
}

/**
 * Parses `application/x-www-form-urlencoded` text or a raw URL query string (TENCENT-API §1.1, §2.2):
 * `&`-separated `key=value` pairs, percent-decoded as UTF-8, `+` as space; a pair without `=` has an
 * empty value (and still counts for signing, §1.3 step 1). Empty pairs (`a=1&&b=2`) are skipped.
 */
export function parseFormEncoded(input: string): FlatParams {
  const out: FlatParams = {};
  if (input === '') return out;
  for (const pair of input.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawKey = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    addParam(out, decodeComponent(rawKey, 'parameter name'), decodeComponent(rawValue, 'the value of'));
  }
  return out;
}

/** Lower-cased media type of a Content-Type header (`application/json; charset=utf-8` → `application/json`). */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

/** One parameter (`boundary`, `charset`…) of a Content-Type header; quotes removed. */
export function contentTypeParam(contentType: string, name: string): string | undefined {
  for (const part of contentType.split(';').slice(1)) {
    const eq = part.indexOf('=');
    if (eq === -1 || part.slice(0, eq).trim().toLowerCase() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return value.startsWith('"') && value.endsWith('"') && value.length >= 2 ? value.slice(1, -1) : value;
  }
  return undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** For multipart fields: a value may itself start with U+FEFF, which a BOM-stripping decoder would drop. */
const utf8KeepBom = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes bytes as strict UTF-8; invalid sequences are a client error, not replacement characters.
 * A leading byte-order mark is dropped from a whole body, but kept (`keepBom`) in a multipart field,
 * where it is part of the value the client signed.
 */
export function decodeUtf8(bytes: Uint8Array, what: string, keepBom = false): string {
  try {
    return (keepBom ? utf8KeepBom : utf8).decode(bytes);
  } catch {
    throw new ApiError('InvalidParameter', `${what} is not valid UTF-8.`);
  }
}

const malformed = (why: string): ApiError => new ApiError('InvalidRequest', `Malformed multipart/form-data body: ${why}.`);

/**
 * Fields of a `multipart/form-data` body (RFC 7578; TENCENT-API §1.1 allows it for legacy v2). Only
 * plain fields: a part with a `filename` is refused, since no purge action takes a file.
 */
export function parseMultipartForm(body: Buffer, contentType: string): FlatParams {
  const boundary = contentTypeParam(contentType, 'boundary');
  if (boundary === undefined || boundary === '' || boundary.length > 70) throw malformed('missing or invalid boundary');
  const dash = Buffer.from(`--${boundary}`);
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  const out: FlatParams = {};

  // The first delimiter may open the body or follow a preamble (RFC 2046 §5.1.1).
  let pos: number;
  if (body.subarray(0, dash.length).equals(dash)) pos = dash.length;
  else {
    const at = body.indexOf(delimiter);
    if (at === -1) throw malformed('no opening boundary');
    pos = at + delimiter.length;
  }
  for (;;) {
    // After a delimiter: `--` closes the body; otherwise optional whitespace then CRLF opens a part.
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return out;
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++;
    if (body[pos] !== 0x0d || body[pos + 1] !== 0x0a) throw malformed('boundary not followed by CRLF');
    pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd === -1) throw malformed('part headers never end');
    const next = body.indexOf(delimiter, headerEnd + 4);
    if (next === -1) throw malformed('no closing boundary');
    const name = partName(body.toString('latin1', pos, headerEnd));
    addParam(out, name, decodeUtf8(body.subarray(headerEnd + 4, next), `Field ${quote(name)}`, true));
    pos = next + delimiter.length;
  }
}

/** The `name` of a part from its `Content-Disposition: form-data; name="…"` header. */
function partName(headerBlock: string): string {
  for (const line of headerBlock.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon === -1 || line.slice(0, colon).trim().toLowerCase() !== 'content-disposition') continue;
    const value = line.slice(colon + 1);
    if (mediaType(value) !== 'form-data') throw malformed('a part is not form-data');
    const params = dispositionParams(value);
    if (params.has('filename')) throw malformed('file parts are not accepted');
    const name = params.get('name');
    if (name === undefined) throw malformed('a part has no name');
    // Names are sent as UTF-8 bytes; the header block was read as latin1 to keep them intact.
    return decodeUtf8(Buffer.from(name, 'latin1'), 'A part name', true);
  }
  throw malformed('a part has no Content-Disposition');
}

/** `; name="a\"b"; filename=x` → Map; quoted strings may contain `;` and backslash escapes. */
function dispositionParams(value: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/gy;
  re.lastIndex = value.indexOf(';') === -1 ? value.length : value.indexOf(';');
  for (let m = re.exec(value); m !== null; m = re.exec(value)) {
    out.set(m[1]!.toLowerCase(), m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? ''));
  }
  return out;
}

type Tree = { leaf: string } | { branch: Map<string, Tree> };

const INDEX = /^(?:0|[1-9]\d*)$/;

/**
 * Rebuilds flattened keys into arrays and objects (TENCENT-API §2.2 form 2-3, §7.5):
 * `Targets.0`, `Targets.1` → `Targets: [..]`; `Filters.0.Values.1` → `Filters[0].Values[1]`;
 * `CacheTag.Domains.0` → `CacheTag: { Domains: [..] }`. A level whose segments are all decimal
 * indices is an array and must be dense from 0; names make an object. Mixing the two, giving a key
 * both a value and children (`A=1&A.0=2`), empty segments, or sparse indices are `InvalidParameter`.
 */
export function unflatten(flat: FlatParams): Record<string, unknown> {
  const root = new Map<string, Tree>();
  for (const [key, value] of Object.entries(flat)) {
    const segments = key.split('.');
    if (segments.some((s) => s === '')) {
      throw new ApiError('InvalidParameter', `Parameter name ${quote(key)} has an empty segment.`);
    }
    if (segments.length > MAX_DEPTH) {
      throw new ApiError('InvalidParameter', `Parameter name ${quote(key)} nests deeper than ${MAX_DEPTH} levels.`);
    }
    let level = root;
    segments.forEach((segment, i) => {
      const path = segments.slice(0, i + 1).join('.');
      const existing = level.get(segment);
      if (i === segments.length - 1) {
        if (existing !== undefined) throw conflict(path);
        level.set(segment, { leaf: value });
        return;
      }
      if (existing === undefined) {
        const branch = new Map<string, Tree>();
        level.set(segment, { branch });
        level = branch;
      } else if ('leaf' in existing) {
        throw conflict(path);
      } else {
        level = existing.branch;
      }
    });
  }
  return materialiseObject(root, '');
}

const conflict = (path: string): ApiError =>
  new ApiError('InvalidParameter', `Parameter ${quote(path)} is given both as a value and with sub-keys.`);

function materialise(node: Tree, path: string): unknown {
  if ('leaf' in node) return node.leaf;
  const keys = [...node.branch.keys()];
  const indices = keys.filter((k) => INDEX.test(k));
  if (indices.length === 0) return materialiseObject(node.branch, path);
  if (indices.length !== keys.length) {
    throw new ApiError('InvalidParameter', `Parameter ${quote(path)} mixes array indices and field names.`);
  }
  const out: unknown[] = [];
  for (let i = 0; i < keys.length; i++) {
    const child = node.branch.get(String(i));
    if (child === undefined) {
      throw new ApiError('InvalidParameter', `Parameter ${quote(path)} is a sparse array: index ${i} is missing.`);
    }
    out.push(materialise(child, `${path}.${i}`));
  }
  return out;
}

function materialiseObject(level: Map<string, Tree>, path: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [segment, child] of level) setOwn(out, segment, materialise(child, path === '' ? segment : `${path}.${segment}`));
  return out;
}

const show = (value: unknown): string => (typeof value === 'string' ? quote(value, 40) : String(value));

/**
 * An integer field that may arrive as a JSON number or as a form string (`Limit=20`, TENCENT-API §2.2).
 * Only plain decimal integers within ±2^53 are accepted.
 */
export function coerceInteger(value: unknown, name: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  if (typeof value === 'string' && /^[+-]?\d{1,16}$/.test(value)) {
    const n = Number(value);
    if (Number.isSafeInteger(n)) return n;
  }
  throw new ApiError('InvalidParameter', `${name} must be an integer; got ${show(value)}.`);
}

/**
 * A boolean field: JSON `true`/`false`, or form strings `true`/`false` (Node), `True`/`False`
 * (Python's urlencode) and `1`/`0`, case-insensitively (TENCENT-API §2.2, §7.5).
 */
export function coerceBoolean(value: unknown, name: string): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value === 'string') {
    const v = value.toLowerCase();
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
  }
  throw new ApiError('InvalidParameter', `${name} must be a boolean (true/false); got ${show(value)}.`);
}
