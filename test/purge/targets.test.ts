// Target normalisation: what each purge/prefetch target means and which inputs are refused.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MAX_TARGET_LENGTH, parseHostTarget, parseTagTarget, parseUrlTarget, type TargetErrors } from '../../src/purge/targets.ts';
import { ApiError } from '../../src/shared/errors.ts';

const ERRS: TargetErrors = { invalid: 'InvalidParameter.Target', wildcard: 'InvalidParameter.CdnPurgeWildcardNotAllowed', tooLong: 'InvalidParameter.CdnUrlExceedLength' };

const refused = (f: () => unknown, code: string) =>
  assert.throws(f, (e: unknown) => e instanceof ApiError && e.code === code, `expected ${code}`);

describe('parseUrlTarget', () => {
  test('keeps the input for display and derives the canonical URL and host', () => {
    assert.deepEqual(parseUrlTarget('http://www.example.com/a.txt', false, ERRS), {
      display: 'http://www.example.com/a.txt',
      canonical: 'http://www.example.com/a.txt',
      host: 'www.example.com',
    });
    const u = parseUrlTarget('  HTTPS://WWW.Example.COM:8443/A/b c?x=1#frag ', false, ERRS);
    assert.equal(u.display, 'HTTPS://WWW.Example.COM:8443/A/b c?x=1#frag');
    assert.equal(u.canonical, 'https://www.example.com:8443/A/b%20c?x=1');
    assert.equal(u.host, 'www.example.com');
    // A bare host gets the root path.
    assert.equal(parseUrlTarget('http://example.com', false, ERRS).canonical, 'http://example.com/');
  });

  test('EncodeUrl shows the RFC 3986 form; non-ASCII is percent-encoded in the canonical form either way', () => {
    const raw = 'http://www.example.com/中文/a.jpg?q=值';
    const plain = parseUrlTarget(raw, false, ERRS);
    const enc = parseUrlTarget(raw, true, ERRS);
    assert.equal(plain.display, raw);
    assert.equal(enc.display, 'http://www.example.com/%E4%B8%AD%E6%96%87/a.jpg?q=%E5%80%BC');
    assert.equal(plain.canonical, enc.canonical);
    // Already-encoded input is not encoded twice.
    assert.equal(parseUrlTarget('http://www.example.com/%E4%B8%AD', true, ERRS).display, 'http://www.example.com/%E4%B8%AD');
  });

  test('IDN hosts are compared in their ASCII form', () => {
    assert.equal(parseUrlTarget('http://bücher.example/', false, ERRS).host, 'xn--bcher-kva.example');
  });

  test('refuses what is not an absolute http(s) URL of a plain host', () => {
    for (const bad of [
      'www.example.com/a', '//www.example.com/a', 'ftp://www.example.com/a', 'javascript:alert(1)', 'http://',
      'http:///a', 'http://user:pw@www.example.com/a', 'http://user@www.example.com/', 'http://exa mple.com/',
      'http://www.example.com:99999/', 'http://-bad-.example.com/', 'http://a_b.example.com/', '',
      '   ', 'http://[::1]/a',
    ]) {
      refused(() => parseUrlTarget(bad, false, ERRS), 'InvalidParameter.Target');
    }
    for (const bad of [42, null, undefined, ['http://www.example.com/'], { url: 'x' }]) refused(() => parseUrlTarget(bad, false, ERRS), 'InvalidParameter.Target');
    // Regression: WHATWG reads `http:///a` as host `a` and `http://\\a` likewise; no host was written.
    refused(() => parseUrlTarget('http:///www.example.com/a', false, ERRS), 'InvalidParameter.Target');
    refused(() => parseUrlTarget('http://\\www.example.com/a', false, ERRS), 'InvalidParameter.Target');
  });

  test('wildcard hosts get the wildcard code', () => {
    for (const bad of ['http://*.example.com/a', 'https://*/', 'http://www.*.com/']) refused(() => parseUrlTarget(bad, false, ERRS), ERRS.wildcard);
    // A `*` in the path is just a character.
    assert.equal(parseUrlTarget('http://www.example.com/*.jpg', false, ERRS).host, 'www.example.com');
  });

  test('control characters are refused anywhere, also where trimming would have hidden them', () => {
    for (const c of ['\u0000', '\u0001', '\t', '\n', '\r', '\u001f', '\u007f']) {
      refused(() => parseUrlTarget(`http://www.example.com/a${c}b`, false, ERRS), 'InvalidParameter.Target');
      // Regression: a trailing CR/LF/TAB used to be trimmed away and the target accepted.
      refused(() => parseUrlTarget(`http://www.example.com/a${c}`, false, ERRS), 'InvalidParameter.Target');
      refused(() => parseUrlTarget(`${c}http://www.example.com/a`, false, ERRS), 'InvalidParameter.Target');
    }
  });

  test(`length: up to ${MAX_TARGET_LENGTH} characters; longer gets the too-long code`, () => {
    const base = 'http://www.example.com/';
    assert.ok(parseUrlTarget(base + 'a'.repeat(MAX_TARGET_LENGTH - base.length), false, ERRS));
    refused(() => parseUrlTarget(base + 'a'.repeat(MAX_TARGET_LENGTH - base.length + 1), false, ERRS), ERRS.tooLong);
  });
});

describe('parseHostTarget', () => {
  test('lower-cases and trims a plain host name', () => {
    assert.equal(parseHostTarget(' WWW.Example.COM ', ERRS), 'www.example.com');
    assert.equal(parseHostTarget('a.b-c.d1.example', ERRS), 'a.b-c.d1.example');
    assert.equal(parseHostTarget('localhost', ERRS), 'localhost');
  });

  test('refuses schemes, ports, paths, wildcards and junk', () => {
    for (const bad of ['http://www.example.com', 'www.example.com:80', 'www.example.com/', 'www example.com', 'a..b', '-a.com', 'a.com.', '', 'x'.repeat(254)]) {
      refused(() => parseHostTarget(bad, ERRS), 'InvalidParameter.Target');
    }
    for (const bad of ['*.example.com', '*', 'www.*.com']) refused(() => parseHostTarget(bad, ERRS), ERRS.wildcard);
    refused(() => parseHostTarget('www.example.com\n', ERRS), 'InvalidParameter.Target');
    refused(() => parseHostTarget(7, ERRS), 'InvalidParameter.Target');
  });
});

describe('parseTagTarget', () => {
  test('accepts tag values as sent (case kept), trimmed', () => {
    assert.equal(parseTagTarget(' Product-42 ', ERRS), 'Product-42');
    assert.equal(parseTagTarget('标签', ERRS), '标签');
  });

  test('refuses separators, control characters, empties and over-long tags', () => {
    for (const bad of ['a b', 'a,b', 'a\tb', '', '  ', 'tag\u0000']) refused(() => parseTagTarget(bad, ERRS), 'InvalidParameter.Target');
    assert.equal(parseTagTarget('t'.repeat(1024), ERRS).length, 1024);
    refused(() => parseTagTarget('t'.repeat(1025), ERRS), ERRS.tooLong);
  });
});
