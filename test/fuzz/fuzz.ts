// Shared pieces of the property-based fuzz tests: a fixed, overridable seed and run count, an HTTP
// client that can send any header set over a kept-alive socket, and the hostile values every decoder
// gets. The seed is fixed so `npm test` is reproducible; for a longer local exploration:
//   FUZZ_SEED=n       another seed (a failure prints the seed and the replay path)
//   FUZZ_SCALE=10     ten times every property's default run count (FUZZ_RUNS=n: exactly n runs each)
//   FUZZ_SHRINK_MS=n  time allowed to shrink a counterexample (default 3000)
//   FUZZ_STATS=1      print the distribution of answers the decoders gave
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import net from 'node:net';
import fc from 'fast-check';

const envInt = (name: string): number | undefined => {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(v)}`);
  return n;
};

/** The seed every property starts from (FUZZ_SEED overrides it for a local exploration). */
export const FUZZ_SEED = envInt('FUZZ_SEED') ?? 424242;
/** FUZZ_RUNS sets every property's run count; FUZZ_SCALE multiplies the defaults (e.g. 10 for a long run). */
const FUZZ_RUNS = envInt('FUZZ_RUNS');
const FUZZ_SCALE = envInt('FUZZ_SCALE') ?? 1;

export const runs = (defaultRuns: number): number => FUZZ_RUNS ?? defaultRuns * FUZZ_SCALE;

/** How long a failing property may spend shrinking its counterexample (FUZZ_SHRINK_MS). */
const SHRINK_MS = envInt('FUZZ_SHRINK_MS') ?? 3000;

/**
 * fc.assert with the fixed seed and a bounded run count. The runs themselves never depend on time;
 * only shrinking a failure is cut off after SHRINK_MS (the smallest counterexample so far is reported),
 * so a property whose failing runs wait on timeouts cannot stall `npm test`. A failure's message names
 * the seed, the replay path and the counterexample; the line printed on stderr says how to rerun it.
 */
export async function fuzz<Ts extends [unknown, ...unknown[]]>(
  name: string,
  property: fc.IAsyncPropertyWithHooks<Ts>,
  defaultRuns: number,
  extra: Partial<fc.Parameters<Ts>> = {},
): Promise<void> {
  const numRuns = runs(defaultRuns);
  const found = await fc.check(property, { seed: FUZZ_SEED, numRuns, endOnFailure: true, ...extra });
  if (!found.failed) return;
  let error: unknown;
  try {
    await fc.assert(property, {
      seed: FUZZ_SEED, numRuns, path: found.counterexamplePath ?? undefined, interruptAfterTimeLimit: SHRINK_MS, markInterruptAsFailure: true, ...extra,
    });
    // The failing run passed when replayed (a flaky failure): report it unshrunk.
    error = new Error(fc.defaultReportMessage(found) ?? 'property failed');
  } catch (e) {
    error = e;
  }
  // Counterexamples with 70 000-character strings would bury the report: show long runs as counts.
  if (error instanceof Error) error.message = `first failing run: ${found.numRuns} of ${numRuns} (seed ${FUZZ_SEED}, path ${found.counterexamplePath ?? '?'}); replayed and shrunk:\n${error.message}`;
  if (error instanceof Error) error.message = error.message.replace(/(.)\1{39,}/gs, (run, c: string) => `${c.repeat(8)}…(${run.length}×)`);
  process.stderr.write(`\n[fuzz] "${name}" failed with FUZZ_SEED=${FUZZ_SEED}, ${numRuns} runs; rerun: FUZZ_SEED=${FUZZ_SEED} npm test\n`);
  throw error;
}

// ---------------------------------------------------------------------------------------------------
// HTTP

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly ms: number;
}

export interface HttpCall {
  readonly port: number;
  readonly method: string;
  readonly path: string;
  readonly headers: OutgoingHttpHeaders;
  readonly body?: string | Buffer;
  /** Fails the call (and so the property) when no full answer arrives within this many ms. */
  readonly timeoutMs?: number;
}

/** One keep-alive agent per test file: the fuzzers send thousands of requests. */
export const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

const hasHeader = (h: OutgoingHttpHeaders, name: string): boolean => Object.keys(h).some((k) => k.toLowerCase() === name);

/** Sends one request with exactly `headers` (Host included when given) and reads the whole answer. */
export function send(c: HttpCall): Promise<HttpAnswer> {
  const started = performance.now();
  const timeoutMs = c.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    // Node's client frames OPTIONS/DELETE bodies with nothing at all: always declare the length.
    const headers = c.body === undefined || hasHeader(c.headers, 'content-length') || hasHeader(c.headers, 'transfer-encoding') ? c.headers : { ...c.headers, 'content-length': Buffer.byteLength(c.body) };
    const req = http.request({ host: '127.0.0.1', port: c.port, method: c.method, path: c.path, headers, agent, setHost: !hasHeader(c.headers, 'host') });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ms: performance.now() - started });
      });
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(c.body);
  });
}

export interface RawAnswer {
  /** Everything the server wrote before it closed the connection (or the bound passed). */
  readonly bytes: Buffer;
  /** The status of the first response, or 0 when none arrived. */
  readonly status: number;
  /** True when the server closed the connection; false when the time bound passed first. */
  readonly closed: boolean;
}

/**
 * Writes `request` verbatim on a fresh connection and collects what comes back until the server closes
 * it or `waitMs` passes (for request lines and header sets no HTTP client would produce).
 */
export function sendRaw(port: number, request: Buffer | string, waitMs = 3000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const bytes = Buffer.concat(chunks);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(bytes.toString('latin1', 0, 64));
      resolve({ bytes, status: m ? Number(m[1]) : 0, closed });
    };
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.write(request);
  });
}

// ---------------------------------------------------------------------------------------------------
// Hostile values

/** Strings that have broken parsers before: empties, padding, controls, prototype names, odd Unicode. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '', ' ', '  x  ', '\t', '\r\n', '\u0000', 'a\u0000b', '\u007f', '\u0085', '\u2028', '\ufeff', '\ud800', '\udfff',
    '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf',
    'null', 'undefined', 'true', 'NaN', 'Infinity', '-0', '0x10', '1e3', '٣', '１２',
    '%', '%zz', '%00', '%C0%AF', '+', '&', '=', '.', '..', '/', '\\', '*', '?', '#', '"', "'", '`', '${x}',
    '<script>', '\u202e', 'é', 'é', '中文', '😀', 'ǅ', 'İ', 'ß',
    '9'.repeat(400), 'a'.repeat(4097), 'b'.repeat(65_537),
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('a', '.', '/', '%', '0', ' ', '\n', '*', ':', '@', '[', ']', '_'), maxLength: 20 }),
);

/** Numbers at the edges of every integer check. */
export const nastyNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 0.5, 1.5, 19, 20, 21, 100, 1000, 1001, 10_000, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e21, 1e308, -1e308, Number.MIN_VALUE),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** Any JSON value (what a JSON body can put in a field), biased towards the nasty ones. */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: nastyString },
  { weight: 2, arbitrary: nastyNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], [[]], [{}], { a: null }, [1, 'a', null]) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.array(nastyString, { maxLength: 4 }) },
);

/**
 * A JSON object as text, built by hand so keys may repeat and may be `__proto__` (JSON.stringify of an
 * object literal can produce neither).
 */
export function jsonObjectText(entries: readonly (readonly [string, unknown])[]): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v === undefined ? 'null' : JSON.stringify(v)}`).join(',')}}`;
}

/**
 * Flattens a value into form keys as the SDKs do (TENCENT-API §2.2): `A.0`, `A.B.1`; scalars as text.
 * `null` and empty containers become an empty value (the key is still sent).
 */
export function flatten(value: unknown, prefix: string, out: [string, string][] = []): [string, string][] {
  if (Array.isArray(value)) {
    if (value.length === 0) out.push([prefix, '']);
    value.forEach((v, i) => flatten(v, `${prefix}.${i}`, out));
  } else if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) out.push([prefix, '']);
    for (const [k, v] of entries) flatten(v, prefix === '' ? k : `${prefix}.${k}`, out);
  } else {
    out.push([prefix, value === null || value === undefined ? '' : String(value)]);
  }
  return out;
}

/** `application/x-www-form-urlencoded` text of pairs, in order, duplicates kept. */
export const formText = (pairs: readonly (readonly [string, string])[]): string =>
  pairs.map(([k, v]) => `${encodeComponent(k)}=${encodeComponent(v)}`).join('&');

/** encodeURIComponent that cannot throw on lone surrogates (they become U+FFFD, as browsers do). */
export const encodeComponent = (s: string): string => encodeURIComponent(s.toWellFormed());
