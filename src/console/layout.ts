// The console's page shell (head, top bar, navigation, sign-out) and the small pieces every page shares.
import { formatCdnTime } from '../actions/times.ts';
import type { TaskStatus } from '../purge/types.ts';
import { assetUrl } from './assets.ts';
import { html, type HtmlValue, type SafeHtml } from './html.ts';

/** What every signed-in page knows about its viewer. */
export interface Viewer {
  readonly accountName: string;
  readonly appId: number;
  readonly secretId: string;
  readonly csrfToken: string;
  /** server.timezone: the console shows times in the zone quotas reset in. */
  readonly timezone: string;
}

export type Section = 'history' | 'purge' | 'quota' | 'fleet' | 'job';

const NAV: ReadonlyArray<readonly [Exclude<Section, 'job'>, string, string]> = [
  ['history', '/console/history', 'History'],
  ['purge', '/console/purge', 'New purge'],
  ['quota', '/console/quota', 'Quota'],
  ['fleet', '/console/fleet', 'Fleet'],
];

/** A SecretId shortened for display: enough to tell keys apart, not the whole identifier. */
export const shortId = (id: string): string => (id.length > 12 ? `${id.slice(0, 6)}…${id.slice(-4)}` : id);

export function document(title: string, body: HtmlValue): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · EdgePurge</title>
<link rel="stylesheet" href="${assetUrl('console.css')}">
<link rel="icon" href="${assetUrl('favicon.svg')}" type="image/svg+xml">
<script src="${assetUrl('console.js')}" defer></script>
</head>
<body>
${body}
</body>
</html>
`;
}

/** A signed-in page: top bar with the sections, the account, sign-out, and `main`. */
export function page(viewer: Viewer, section: Section, title: string, main: HtmlValue): SafeHtml {
  return document(
    title,
    html`<header class="top">
  <a class="brand" href="/console/history"><span class="logo" aria-hidden="true"></span>EdgePurge</a>
  <nav aria-label="Sections">${NAV.map(([id, href, label]) => html`<a href="${href}"${id === section ? html` aria-current="page"` : ''}>${label}</a>`)}</nav>
  <div class="who">
    <span title="AppId ${viewer.appId}, SecretId ${viewer.secretId}">${viewer.accountName} <span class="muted">${shortId(viewer.secretId)}</span></span>
    <form method="post" action="/console/sign-out">${csrfField(viewer)}<button type="submit" class="link">Sign out</button></form>
  </div>
</header>
<main>
${main}
</main>
<footer class="foot">Times are shown in UTC${viewer.timezone}, the zone in which daily quotas reset.</footer>`,
  );
}

export const csrfField = (viewer: Pick<Viewer, 'csrfToken'>): SafeHtml => html`<input type="hidden" name="csrf" value="${viewer.csrfToken}">`;

/** `YYYY-MM-DD HH:mm:ss` in the viewer's zone. */
export const time = (ms: number, tz: string): string => formatCdnTime(ms, tz);

export const statusBadge = (status: TaskStatus | string): SafeHtml => html`<span class="badge s-${status}">${status}</span>`;

/** An error as the API would report it: its code and message. */
export const errorBox = (e: { code: string; message: string } | undefined): SafeHtml =>
  e ? html`<div class="alert error" role="alert"><strong>${e.code}</strong> ${e.message}</div>` : html``;

export const number = (n: number): string => n.toLocaleString('en');

/** A console URL with query parameters (empty values left out). */
export function href(path: string, params: Readonly<Record<string, string | number | undefined>> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
