// Near-valid values of the purge domain for the fuzzers: targets, hosts, zones, times, filters — each
// close enough to pass a first check and odd enough to probe the next one. Mixed with hostile JSON.
import fc from 'fast-check';
import { PURGE_TYPES, TASK_STATUSES } from '../../src/purge/types.ts';
import { ACME, GLOBEX } from '../helpers/control-plane.ts';
import { hostileJson, nastyNumber, nastyString } from './fuzz.ts';

/** The fixed instant the fuzzed control planes run at (a ManualClock): times and quota days are stable. */
export const FUZZ_NOW = Date.UTC(2026, 2, 1, 4, 0, 0);

/** Host spellings: the account's own, the other tenant's, and every way of writing one wrongly. */
export const hostish: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(ACME.host, ACME.host2, ACME.host3) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      GLOBEX.host, 'WWW.ACME.COM', 'www.acme.com.', 'www.acme.com:8080', 'www.acme.com:', '*.acme.com', 'acme.com', 'ww.acme.com',
      'user:pw@www.acme.com', 'www.acme.com@evil.com', 'evil.com#@www.acme.com', 'www.acme.com\\@evil.com', '[::1]', '127.0.0.1',
      '0x7f.1', 'www.аcme.com', 'xn--www-acme.com', 'www.acme.com%2f', 'www.acme.com%00', 'www.acme.com ', ' www.acme.com',
      'www..acme.com', '-www.acme.com', `${'a'.repeat(64)}.acme.com`, `${'a.'.repeat(127)}com`, '', '.', '%', 'www.acme.com/x',
    ),
  },
  { weight: 1, arbitrary: nastyString },
);

const pathish: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('/', '/a.txt', '/img/', '/a?b=1', '/a#frag', '/%', '/%zz', '/%2e%2e/x', '/../../etc/passwd', '/./a', '//a', '/a b', '/中文.jpg', '/\u0000', '/a\r\nX: y', `/${'p'.repeat(4100)}`, ''),
  fc.string({ maxLength: 30 }).map((s) => `/${s}`),
  fc.webPath(),
);

const scheme = fc.constantFrom('http://', 'https://', 'HTTP://', 'Https://', 'ftp://', '//', 'http:/', 'http:\\\\', '', 'javascript:', 'http://http://');

/** A purge or prefetch target URL. */
export const urlish: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(scheme, hostish, pathish).map(([s, h, p]) => s + h + p) },
  { weight: 1, arbitrary: fc.webUrl({ withQueryParameters: true, withFragments: true }) },
  { weight: 1, arbitrary: nastyString },
);

/** A list field (Targets, Urls, Paths): mostly near-valid entries, sometimes a hostile one. */
export const targetList = (item: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.array(fc.oneof({ weight: 5, arbitrary: item }, { weight: 1, arbitrary: hostileJson }), { maxLength: 6 }) },
    { weight: 1, arbitrary: fc.constantFrom([], Array.from({ length: 21 }, (_, i) => `http://${ACME.host}/${i}`), Array.from({ length: 1001 }, (_, i) => `http://${ACME.host}/${i}`)) },
    { weight: 1, arbitrary: hostileJson },
  );

export const zoneish: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(ACME.zoneId, ACME.zoneId2, '*') },
  { weight: 2, arbitrary: fc.constantFrom(GLOBEX.zoneId, 'zone-nope', ACME.zoneId.toUpperCase(), ` ${ACME.zoneId}`, `${ACME.zoneId}\u0000`, '**', '') },
  { weight: 1, arbitrary: hostileJson },
);

/** Boolean fields as every SDK and script writes them, and as none does. */
export const boolish: fc.Arbitrary<unknown> = fc.constantFrom(true, false, 'true', 'false', 'True', 'FALSE', '1', '0', 1, 0, 2, -1, 'yes', '', null, [true], {});

/** Integer fields (Offset, Limit): edges of every range check, and strings the form path would send. */
export const intish: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: nastyNumber },
  { weight: 2, arbitrary: fc.constantFrom('0', '1', '20', '1000', '1001', '-1', '020', '+5', ' 5', '5 ', '1e3', '0x10', '1.0', '9007199254740993', '99999999999999999999', '') },
  { weight: 1, arbitrary: hostileJson },
);

const iso = (ms: number) => new Date(ms).toISOString();
/** EdgeOne ISO 8601 times around FUZZ_NOW, valid and not. */
export const isoish: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -10 * 86_400_000, max: 10 * 86_400_000 }).map((d) => iso(FUZZ_NOW + d)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '2026-03-01T00:00:00+08:00', '2026-03-01T00:00:00+0800', '2026-02-30T00:00:00Z', '2026-03-01T24:00:00Z', '2026-03-01T23:59:60Z',
      '2026-03-01 00:00:00', '2026-03-01', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59.999999999Z', '+275760-09-13T00:00:00Z',
      '1970-01-01T00:00:00Z', '2026-03-01T00:00:00.0000000001Z', '2026-03-01T00:00:00+99:99', '2026-03-01T00:00:00-00:00',
    ),
  },
  { weight: 1, arbitrary: hostileJson },
);

/** CDN `YYYY-MM-DD HH:mm:ss` (and legacy day-only) times around FUZZ_NOW, valid and not. */
export const cdnTimeish: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: -40 * 86_400_000, max: 2 * 86_400_000 }).map((d) => iso(FUZZ_NOW + 8 * 3_600_000 + d).slice(0, 19).replace('T', ' ')) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      '2026-03-01', '20260301', '2026-02-30 00:00:00', '2026-03-01 24:00:00', '2026-03-01 23:60:00', ' 2026-03-01 00:00:00 ',
      '0000-00-00 00:00:00', '9999-12-31 23:59:59', '2026-3-1 0:0:0', '2026-03-01T00:00:00', '2026-03-01 00:00:00.5', '1970-01-01 00:00:00',
    ),
  },
  { weight: 1, arbitrary: hostileJson },
);

const jobIdish: fc.Arbitrary<string> = fc.oneof(fc.stringMatching(/^[0-9a-z]{12,24}$/), fc.constantFrom('', '%', "' OR 1=1 --", '*', '_', '0'.repeat(64)), nastyString);

/** EdgeOne DescribePurgeTasks / DescribePrefetchTasks filters. */
export const filtersish: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.array(
      fc.record(
        {
          Name: fc.oneof(fc.constantFrom('job-id', 'target', 'domains', 'statuses', 'type', 'Target', 'zone-id', ''), nastyString),
          Values: fc.oneof(
            { weight: 4, arbitrary: fc.array(fc.oneof(jobIdish, urlish, hostish, fc.constantFrom(...TASK_STATUSES, ...PURGE_TYPES, 'SUCCESS', '%', '_')), { maxLength: 3 }) },
            { weight: 1, arbitrary: hostileJson },
          ),
          Fuzzy: boolish,
        },
        { requiredKeys: ['Name', 'Values'] },
      ),
      { maxLength: 4 },
    ),
  },
  { weight: 1, arbitrary: hostileJson },
);

/** Prefetch Headers: `[{Name, Value}]`. */
export const headersish: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.array(
      fc.record({
        Name: fc.oneof(fc.constantFrom('X-Test', 'User-Agent', 'Host', 'content-length', 'Transfer-Encoding', 'X Bad', 'X:Y', '', 'a'.repeat(129)), nastyString),
        Value: fc.oneof(fc.constantFrom('v', '', 'a\r\nX-Injected: 1', '\u0000', 'a'.repeat(1025)), nastyString),
      }),
      { maxLength: 3 },
    ),
  },
  { weight: 1, arbitrary: hostileJson },
);

export const oneOfish = (...values: string[]): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...values) },
    { weight: 1, arbitrary: fc.constantFrom(...values.map((v) => v.toUpperCase()), ...values.map((v) => `${v} `), '') },
    { weight: 1, arbitrary: hostileJson },
  );

export const strish: fc.Arbitrary<unknown> = fc.oneof({ weight: 3, arbitrary: nastyString }, { weight: 1, arbitrary: hostileJson });

export { jobIdish };
