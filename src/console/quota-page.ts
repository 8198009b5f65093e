// Today's quota usage per type, from DescribeContentQuota (the counters every API shares).
import { html, type SafeHtml } from './html.ts';
import { number, page, type Viewer } from './layout.ts';

/** One entry of DescribeContentQuota's PurgeQuota / PrefetchQuota. */
export interface ApiQuota {
  readonly Type: string;
  readonly Batch: number;
  readonly Daily: number;
  readonly DailyAvailable: number;
}

export function quotaPage(viewer: Viewer, day: string, quotas: readonly ApiQuota[]): SafeHtml {
  return page(viewer, 'quota', 'Quota', html`<h1>Quota for ${day}</h1>
<p class="muted">Shared by every API and the console; counted per distinct target; resets at 00:00 UTC${viewer.timezone}.</p>
<table class="quota">
<thead><tr><th scope="col">Type</th><th scope="col">Used today</th><th scope="col" class="num">Used</th><th scope="col" class="num">Daily limit</th><th scope="col" class="num">Left</th><th scope="col" class="num">Per request</th></tr></thead>
<tbody>
${quotas.map((q) => {
  const used = q.Daily - q.DailyAvailable;
  return html`<tr>
<th scope="row">${q.Type}</th>
<td><meter min="0" max="${q.Daily}" low="${Math.floor(q.Daily * 0.7)}" high="${Math.floor(q.Daily * 0.9)}" optimum="0" value="${used}">${used} of ${q.Daily}</meter></td>
<td class="num">${number(used)}</td>
<td class="num">${number(q.Daily)}</td>
<td class="num">${number(q.DailyAvailable)}</td>
<td class="num">${number(q.Batch)}</td>
</tr>
`;
})}</tbody>
</table>`);
}
