// The purge history page: DescribePurgeTasks' filters as a form, one page of tasks, and paging.
import type { AccountConfig } from '../config/schema.ts';
import { TASK_STATUSES, TASK_TYPES } from '../purge/types.ts';
import { html, type SafeHtml } from './html.ts';
import { errorBox, href, number, page, statusBadge, time, type Viewer } from './layout.ts';

export const HISTORY_PAGE_SIZE = 50;

const RANGES = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 } as const;
type Range = keyof typeof RANGES;

/** The form as submitted (GET), every field a string as typed, so the form shows it back unchanged. */
export interface HistoryFilters {
  readonly from: string;
  readonly to: string;
  /** A preset (last hour/day/week) used when from/to are empty. */
  readonly range: Range;
  readonly zone: string;
  readonly status: string;
  /** A purge type, or prefetch_url for the prefetch history. */
  readonly type: string;
  readonly domain: string;
  readonly target: string;
  readonly fuzzy: boolean;
  readonly page: number;
}

/** `YYYY-MM-DDTHH:mm` in `tz`: the value a datetime-local input shows. */
const localInput = (ms: number, tz: string): string => time(ms, tz).slice(0, 16).replace(' ', 'T');

export function readHistoryFilters(q: URLSearchParams, now: number, tz: string): HistoryFilters {
  const get = (k: string) => (q.get(k) ?? '').trim();
  const range: Range = Object.hasOwn(RANGES, get('range')) ? (get('range') as Range) : '24h';
  let from = get('from');
  let to = get('to');
  if (!from && !to) {
    // Whole minutes: `to` covers the current one to its end, so `from` starts a minute later than
    // now − range, keeping "last 7d" inside DescribePurgeTasks' 7-day limit.
    from = localInput(now - RANGES[range] + 60_000, tz);
    to = localInput(now, tz);
  }
  const page = Number(get('page'));
  return {
    from,
    to,
    range,
    zone: get('zone'),
    status: get('status'),
    type: get('type'),
    domain: get('domain'),
    target: get('target'),
    fuzzy: q.get('fuzzy') === 'on',
    page: Number.isSafeInteger(page) && page >= 1 ? page : 1,
  };
}

/** datetime-local gives minutes: `from` starts at :00, `to` covers its whole minute. */
const isoFrom = (v: string, tz: string, endOfMinute: boolean): string => (/T\d{2}:\d{2}$/.test(v) ? `${v}:${endOfMinute ? '59' : '00'}${tz}` : /T\d{2}:\d{2}:\d{2}$/.test(v) ? `${v}${tz}` : v);

/** The EdgeOne DescribePurgeTasks (or DescribePrefetchTasks) parameters the form stands for. */
export function historyParams(f: HistoryFilters, tz: string): { prefetch: boolean; params: Record<string, unknown> } {
  const prefetch = f.type === 'prefetch_url';
  const filters: Array<{ Name: string; Values: string[]; Fuzzy?: boolean }> = [];
  if (f.status) filters.push({ Name: 'statuses', Values: [f.status] });
  if (f.type && !prefetch) filters.push({ Name: 'type', Values: [f.type] });
  if (f.domain) filters.push({ Name: 'domains', Values: [f.domain] });
  if (f.target) filters.push({ Name: 'target', Values: [f.target], ...(f.fuzzy ? { Fuzzy: true } : {}) });
  const params: Record<string, unknown> = {
    StartTime: isoFrom(f.from, tz, false),
    EndTime: isoFrom(f.to, tz, true),
    Offset: (f.page - 1) * HISTORY_PAGE_SIZE,
    Limit: HISTORY_PAGE_SIZE,
    Filters: filters,
  };
  if (f.zone) params.ZoneId = f.zone;
  return { prefetch, params };
}

/** One task as DescribePurgeTasks renders it. */
export interface ApiTask {
  readonly JobId: string;
  readonly Target: string;
  readonly Type: string;
  readonly Method: string;
  readonly Status: string;
  readonly CreateTime: string;
  readonly FailMessage?: string;
}

export type HistoryResult = { readonly total: number; readonly tasks: readonly ApiTask[] } | { readonly error: { code: string; message: string } };

function filterParams(f: HistoryFilters): Record<string, string | undefined> {
  return { from: f.from, to: f.to, zone: f.zone, status: f.status, type: f.type, domain: f.domain, target: f.target, fuzzy: f.fuzzy ? 'on' : undefined };
}

const options = (values: readonly string[], selected: string, any: string): SafeHtml =>
  html`<option value="">${any}</option>${values.map((v) => html`<option value="${v}"${v === selected ? html` selected` : ''}>${v}</option>`)}`;

export function historyPage(viewer: Viewer, account: AccountConfig, f: HistoryFilters, result: HistoryResult): SafeHtml {
  const hosts = account.zones.flatMap((z) => z.domains.map((d) => d.host));
  const presets = (Object.keys(RANGES) as Range[]).map(
    (r) => html`<a class="chip" href="${href('/console/history', { ...filterParams(f), from: undefined, to: undefined, range: r })}">last ${r}</a>`,
  );
  const form = html`<form class="filters" method="get" action="/console/history" role="search" aria-label="Filter the history">
  <div class="field"><label for="h-from">From</label><input id="h-from" type="datetime-local" name="from" value="${f.from}"></div>
  <div class="field"><label for="h-to">To</label><input id="h-to" type="datetime-local" name="to" value="${f.to}"></div>
  <div class="field"><label for="h-zone">Zone</label><select id="h-zone" name="zone">${options(account.zones.map((z) => z.zoneId), f.zone, 'every zone')}</select></div>
  <div class="field"><label for="h-status">Status</label><select id="h-status" name="status">${options(TASK_STATUSES, f.status, 'any')}</select></div>
  <div class="field"><label for="h-type">Type</label><select id="h-type" name="type">${options(TASK_TYPES, f.type, 'any purge')}</select></div>
  <div class="field"><label for="h-domain">Domain</label><select id="h-domain" name="domain">${options(hosts, f.domain, 'any')}</select></div>
  <div class="field grow"><label for="h-target">Target</label><input id="h-target" type="search" name="target" value="${f.target}" placeholder="URL, prefix, host or tag" autocomplete="off"></div>
  <label class="check"><input type="checkbox" name="fuzzy"${f.fuzzy ? html` checked` : ''}> contains</label>
  <button type="submit" class="primary">Filter</button>
  <span class="presets">${presets}</span>
</form>`;
  return page(viewer, 'history', 'History', html`<h1>Purge history</h1>
${form}
${'error' in result ? errorBox(result.error) : resultsTable(f, result, viewer.timezone)}`);
}

function resultsTable(f: HistoryFilters, r: { total: number; tasks: readonly ApiTask[] }, tz: string): SafeHtml {
  if (r.total === 0) return html`<p class="empty">No ${f.type === 'prefetch_url' ? 'prefetch' : 'purge'} tasks match. <a href="/console/purge">Submit one</a>.</p>`;
  const first = (f.page - 1) * HISTORY_PAGE_SIZE;
  const last = first + r.tasks.length;
  const pages = Math.max(1, Math.ceil(r.total / HISTORY_PAGE_SIZE));
  const to = (p: number) => href('/console/history', { ...filterParams(f), page: p });
  return html`<p class="count" aria-live="polite">${r.tasks.length ? `${number(first + 1)}–${number(last)} of ${number(r.total)} tasks` : `${number(r.total)} tasks; this page is past the end`}</p>
<table class="tasks">
<thead><tr><th scope="col">Created</th><th scope="col">Status</th><th scope="col">Type</th><th scope="col">Method</th><th scope="col">Target</th><th scope="col">Job</th></tr></thead>
<tbody>
${r.tasks.map(
  (t) => html`<tr>
<td class="nowrap">${time(Date.parse(t.CreateTime), tz)}</td>
<td>${statusBadge(t.Status)}</td>
<td class="nowrap">${t.Type}</td>
<td>${t.Method}</td>
<td class="target"><code>${t.Target}</code>${t.FailMessage ? html`<div class="fail">${t.FailMessage}</div>` : ''}</td>
<td><a class="mono" href="/console/jobs/${t.JobId}">${t.JobId}</a></td>
</tr>
`,
)}</tbody>
</table>
<nav class="pager" aria-label="Pages">
${f.page > 1 ? html`<a rel="prev" href="${to(f.page - 1)}">← Newer</a>` : html`<span></span>`}
<span>page ${number(f.page)} of ${number(pages)}</span>
${last < r.total ? html`<a rel="next" href="${to(f.page + 1)}">Older →</a>` : html`<span></span>`}
</nav>`;
}
