// HTML escaped by construction (STYLE 16a): markup is only ever built with the `html` tagged template,
// which escapes every interpolated value unless it is itself markup made by `html`.

const brand = Symbol('SafeHtml');

/** Markup produced by `html`: interpolating it into another template keeps it as is. */
export interface SafeHtml {
  readonly [brand]: true;
  readonly text: string;
}

/** What a template accepts between `${}`: text is escaped, markup kept, lists joined, nothing shown for null/undefined/false. */
export type HtmlValue = SafeHtml | string | number | bigint | boolean | null | undefined | readonly HtmlValue[];

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Escapes the five characters that matter in text and in quoted attribute values (OWASP XSS rule #1/#2);
 * every attribute in our templates is quoted.
 */
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

const safe = (text: string): SafeHtml => ({ [brand]: true, text });

const isSafe = (v: unknown): v is SafeHtml => typeof v === 'object' && v !== null && brand in v;

function render(v: HtmlValue): string {
  if (v === null || v === undefined || v === false) return '';
  if (isSafe(v)) return v.text;
  if (Array.isArray(v)) return (v as readonly HtmlValue[]).map(render).join('');
  return escapeHtml(String(v));
}

/** `html\`<p>${userText}</p>\`` — the one way pages build markup. */
export function html(strings: TemplateStringsArray, ...values: readonly HtmlValue[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return safe(out);
}
