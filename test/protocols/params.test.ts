import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiError, type ErrorCode } from '../../src/shared/errors.ts';
import {
  coerceBoolean,
  coerceInteger,
  contentTypeParam,
  mediaType,
  parseFormEncoded,
  parseMultipartForm,
  unflatten,
} from '../../src/protocols/params.ts';

const apiError = (code: ErrorCode, message?: RegExp) => (e: unknown): boolean =>
  e instanceof ApiError && e.code === code && (message === undefined || message.test(e.message));

describe('parseFormEncoded', () => {
  test('decodes percent-escapes as UTF-8 and + as space; keeps empty values', () => {
    assert.deepEqual(parseFormEncoded('Region=&urls.0=https%3A%2F%2Fa.com%2Fa%20b%E4%B8%AD.jpg&q=a+b&flag'), {
      Region: '',
      'urls.0': 'https://a.com/a b中.jpg',
      q: 'a b',
      flag: '',
    });
  });
  test('skips empty pairs and accepts an empty string', () => {
    assert.deepEqual(parseFormEncoded('a=1&&b=2&'), { a: '1', b: '2' });
    assert.deepEqual(parseFormEncoded(''), {});
  });
  test('a value may contain "="', () => assert.deepEqual(parseFormEncoded('a=b=c'), { a: 'b=c' }));
  test('rejects duplicate keys', () => assert.throws(() => parseFormEncoded('a=1&a=2'), apiError('InvalidParameter', /"a".*more than once/)));
  test('rejects malformed escapes and invalid UTF-8', () => {
    assert.throws(() => parseFormEncoded('a=%zz'), apiError('InvalidParameter', /percent-encoding/));
    assert.throws(() => parseFormEncoded('a=%E4%B8'), apiError('InvalidParameter'));
  });
  test('rejects control characters in keys and empty keys', () => {
    assert.throws(() => parseFormEncoded('a%00b=1'), apiError('InvalidParameter', /control character/));
    assert.throws(() => parseFormEncoded('a%0Ab=1'), apiError('InvalidParameter', /control character/));
    assert.throws(() => parseFormEncoded('=1'), apiError('InvalidParameter', /empty name/));
  });
  test('__proto__ is an ordinary own key (no prototype pollution)', () => {
    const p = parseFormEncoded('__proto__=x&b=1');
    assert.equal(Object.getPrototypeOf(p), Object.prototype);
    assert.equal(Object.hasOwn(p, '__proto__'), true);
    assert.equal(({} as Record<string, unknown>)['x'], undefined);
  });
});

describe('content type helpers', () => {
  test('mediaType', () => {
    assert.equal(mediaType('Application/JSON; charset=utf-8'), 'application/json');
    assert.equal(mediaType(undefined), '');
  });
  test('contentTypeParam unquotes', () => {
    assert.equal(contentTypeParam('multipart/form-data; boundary="a b"', 'boundary'), 'a b');
    assert.equal(contentTypeParam('multipart/form-data;Boundary=xyz', 'boundary'), 'xyz');
    assert.equal(contentTypeParam('text/plain', 'boundary'), undefined);
  });
});

describe('parseMultipartForm', () => {
  test('reads what a real FormData encoder produces (UTF-8 values, CRLF inside a value)', async () => {
    const form = new FormData();
    form.append('Action', 'RefreshCdnUrl');
    form.append('urls.0', 'https://www.example.com/中文.jpg');
    form.append('note', 'line1\r\nline2');
    form.append('empty', '');
    const res = new Response(form);
    const body = Buffer.from(await res.arrayBuffer());
    assert.deepEqual(parseMultipartForm(body, res.headers.get('content-type')!), {
      Action: 'RefreshCdnUrl',
      'urls.0': 'https://www.example.com/中文.jpg',
      note: 'line1\r\nline2',
      empty: '',
    });
  });
  test('handles a preamble and a quoted name with an escaped quote', () => {
    const body = Buffer.from('preamble\r\n--XX\r\nContent-Disposition: form-data; name="a\\"b"\r\n\r\n1\r\n--XX--\r\n');
    assert.deepEqual(parseMultipartForm(body, 'multipart/form-data; boundary=XX'), { 'a"b': '1' });
  });
  const ct = 'multipart/form-data; boundary=XX';
  for (const [why, text] of [
    ['no closing boundary', '--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\n1'],
    ['no opening boundary', 'garbage'],
    ['headers never end', '--XX\r\nContent-Disposition: form-data; name="a"'],
    ['a part without a name', '--XX\r\nContent-Disposition: form-data\r\n\r\n1\r\n--XX--'],
    ['a part without Content-Disposition', '--XX\r\nContent-Type: text/plain\r\n\r\n1\r\n--XX--'],
    ['a file part', '--XX\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\n1\r\n--XX--'],
  ] as const) {
    test(`rejects ${why} with InvalidRequest`, () => {
      assert.throws(() => parseMultipartForm(Buffer.from(text), ct), apiError('InvalidRequest'));
    });
  }
  test('rejects a missing boundary and duplicate fields', () => {
    assert.throws(() => parseMultipartForm(Buffer.from(''), 'multipart/form-data'), apiError('InvalidRequest', /boundary/));
    const dup = '--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--XX\r\nContent-Disposition: form-data; name="a"\r\n\r\n2\r\n--XX--';
    assert.throws(() => parseMultipartForm(Buffer.from(dup), ct), apiError('InvalidParameter', /more than once/));
  });
});

describe('unflatten', () => {
  test('rebuilds Targets.N, Filters.N.Values.N and CacheTag.Domains.N', () => {
    assert.deepEqual(
      unflatten({
        ZoneId: 'z',
        'Targets.0': 'a',
        'Targets.1': 'b',
        'Filters.0.Name': 'job-id',
        'Filters.0.Values.0': 'x',
        'Filters.0.Values.1': 'y',
        'Filters.1.Name': 'type',
        'Filters.1.Values.0': 'purge_url',
        'CacheTag.Domains.0': 'www.example.com',
      }),
      {
        ZoneId: 'z',
        Targets: ['a', 'b'],
        Filters: [
          { Name: 'job-id', Values: ['x', 'y'] },
          { Name: 'type', Values: ['purge_url'] },
        ],
        CacheTag: { Domains: ['www.example.com'] },
      },
    );
  });
  test('indices sort numerically, not as text (10 after 9)', () => {
    const flat = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`urls.${i}`, `u${i}`]));
    assert.deepEqual(unflatten(flat), { urls: Array.from({ length: 12 }, (_, i) => `u${i}`) });
  });
  for (const [why, flat, message] of [
    ['sparse arrays', { 'Targets.0': 'a', 'Targets.2': 'c' }, /sparse.*index 1/],
    ['arrays not starting at 0', { 'Targets.1': 'a' }, /sparse.*index 0/],
    ['a value and sub-keys for one name', { A: '1', 'A.0': '2' }, /both as a value and with sub-keys/],
    ['sub-keys then a value', { 'A.b': '1', A: '2' }, /both as a value/],
    ['indices mixed with names', { 'A.0': '1', 'A.x': '2' }, /mixes array indices and field names/],
    ['empty segments', { 'A..b': '1' }, /empty segment/],
    ['a trailing dot', { 'A.': '1' }, /empty segment/],
    ['absurd depth', { [Array.from({ length: 40 }, () => 'a').join('.')]: '1' }, /deeper/],
  ] as const) {
    test(`rejects ${why} with InvalidParameter`, () => {
      assert.throws(() => unflatten(flat), apiError('InvalidParameter', message));
    });
  }
  test('non-canonical index "00" is treated as a name, so alone it makes an object', () => {
    assert.deepEqual(unflatten({ 'A.00': '1' }), { A: { '00': '1' } });
  });
});

describe('coercion of form-encoded scalars', () => {
  test('coerceInteger', () => {
    assert.equal(coerceInteger('20', 'Limit'), 20);
    assert.equal(coerceInteger('-3', 'Offset'), -3);
    assert.equal(coerceInteger(7, 'Limit'), 7);
    for (const bad of ['', '1.5', '1e3', ' 1', '0x10', '99999999999999999', 1.5, true, null, undefined, ['1']]) {
      assert.throws(() => coerceInteger(bad, 'Limit'), apiError('InvalidParameter', /Limit must be an integer/));
    }
  });
  test('coerceBoolean accepts true/True/1 and false/False/0', () => {
    for (const t of ['true', 'True', 'TRUE', '1', true, 1]) assert.equal(coerceBoolean(t, 'UrlEncode'), true);
    for (const f of ['false', 'False', '0', false, 0]) assert.equal(coerceBoolean(f, 'UrlEncode'), false);
    for (const bad of ['yes', '', 'on', 2, null]) {
      assert.throws(() => coerceBoolean(bad, 'UrlEncode'), apiError('InvalidParameter', /UrlEncode must be a boolean/));
    }
  });
});
