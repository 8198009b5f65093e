// Property-based tests of the pure form decoders both protocols share (src/protocols/params.ts): what a
// client encodes — urlencoded, multipart/form-data, flattened `A.0.B` keys — decodes to exactly what it
// meant. A decoder that alters a value breaks every signature over it (HmacSHA1/256 sign decoded values).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeUtf8, parseFormEncoded, parseMultipartForm, unflatten } from '../../src/protocols/params.ts';
import { flatten, formText, fuzz } from './fuzz.ts';

/** Any well-formed text: full Unicode, BOMs, combining marks and the characters forms escape. */
const text = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: fc.constantFrom('a', '+', '%', '&', '=', ' ', '"', '\\', ';', '\ufeff', '\u00e9', '\u{1f600}', '.', '\r', '\n', '\t'), maxLength: 12 }),
).map((s) => s.toWellFormed());

/** Parameter names the decoders accept: non-empty, no control characters. */
const name = text.filter((s) => s !== '' && !/[\u0000-\u001f\u007f]/.test(s));

/** Distinct names with values, in order. */
const params = fc.uniqueArray(fc.tuple(name, text), { selector: ([k]) => k, maxLength: 6 });

test('urlencoded: parseFormEncoded(decodeUtf8(encode(params))) gives back every name and value exactly', async () => {
  await fuzz(
    'form urlencoded round trip',
    fc.asyncProperty(params, async (p) => {
      const decoded = parseFormEncoded(decodeUtf8(Buffer.from(formText(p)), 'The form body'));
      assert.deepEqual(Object.entries(decoded), p);
    }),
    500,
  );
});

test('multipart/form-data: parseMultipartForm(encode(params)) gives back every name and value exactly (RFC 7578)', async () => {
  const boundary = '----fuzzBoundary0f9d8c7b6a';
  await fuzz(
    'form multipart round trip',
    fc.asyncProperty(params.filter((p) => p.every(([k]) => !/[\r\n]/.test(k))), async (p) => {
      // Names are quoted strings: `"` and `\` escaped with a backslash; values are raw UTF-8 bytes.
      const parts = p.map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k.replace(/["\\]/g, '\\$&')}"\r\n\r\n${v}\r\n`);
      const body = Buffer.from(`${parts.join('')}--${boundary}--\r\n`);
      const decoded = parseMultipartForm(body, `multipart/form-data; boundary=${boundary}`);
      assert.deepEqual(Object.entries(decoded), p);
    }),
    500,
  );
});

/** Nested input as SDKs flatten it: objects with plain names, non-empty arrays, non-empty string leaves. */
const fieldName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,8}$/);
const nested: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, tie('leaf'), tie('array'), tie('object')),
  leaf: text.filter((s) => s !== ''),
  array: fc.array(tie('value'), { minLength: 1, maxLength: 3 }),
  object: fc.dictionary(fieldName, tie('value'), { minKeys: 1, maxKeys: 3, noNullPrototype: true }),
})).value;

test('unflatten(flatten(input)) rebuilds the arrays and objects the SDKs flattened (TENCENT-API §2.2)', async () => {
  await fuzz(
    'form unflatten round trip',
    fc.asyncProperty(fc.dictionary(fieldName, nested, { minKeys: 1, maxKeys: 4, noNullPrototype: true }), async (input) => {
      const flat = Object.fromEntries(Object.entries(input).flatMap(([k, v]) => flatten(v, k)));
      assert.deepEqual(unflatten(flat), input);
    }),
    500,
  );
});
