// The console's escaping template: every interpolated value is text unless it is markup made by `html`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { escapeHtml, html } from '../../src/console/html.ts';

test('text is escaped in element content and in quoted attributes', () => {
  const evil = `<script>alert("x")</script>' onmouseover='x' & "`;
  assert.equal(
    html`<p title="${evil}">${evil}</p>`.text,
    '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;x&#39; &amp; &quot;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;x&#39; &amp; &quot;</p>',
  );
});

test('markup made by html nests unescaped; lists are joined; null, undefined and false render nothing', () => {
  const item = (s: string) => html`<li>${s}</li>`;
  assert.equal(html`<ul>${['a', '<b>'].map(item)}</ul>`.text, '<ul><li>a</li><li>&lt;b&gt;</li></ul>');
  assert.equal(html`${null}${undefined}${false}|${0}|${true}|${12n}`.text, '|0|true|12');
  assert.equal(html`${[['<', html`<i>`], []]}`.text, '&lt;<i>');
});

test('an object that merely looks like markup is not trusted', () => {
  const forged = { text: '<script>x</script>' } as unknown as string;
  assert.equal(html`${forged}`.text, '[object Object]');
  const json = JSON.parse('{"text":"<img src=x onerror=alert(1)>"}') as string;
  assert.doesNotMatch(html`${json}`.text, /<img/);
});

test('no string interpolated as text can open a tag, end an attribute or start an entity (property)', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (s) => {
      const out = html`<a title="${s}">${s}</a>`.text;
      const inner = out.slice('<a title="'.length, out.length - '</a>'.length);
      assert.doesNotMatch(inner.replace('">', ''), /[<>"']/);
      assert.doesNotMatch(escapeHtml(s), /&(?!amp;|lt;|gt;|quot;|#39;)/);
    }),
  );
});
