// The edge fleet as the signed-in account sees it: the nodes that serve any of its domains, kept
// current over SSE while the page is open (live-events.ts).
import type { FleetEntry } from '../fanout/fanout-hub.ts';
import { html, type SafeHtml } from './html.ts';
import { number, page, time, type Viewer } from './layout.ts';

export interface FleetRow {
  readonly status: FleetEntry;
  /** Log entries after the node's applied sequence. */
  readonly lagEntries: number;
  /** Age of the oldest entry it has not applied; 0 when caught up. */
  readonly lagMs: number;
}

const kind = (s: FleetEntry): string => (s.node.driver ? `${s.node.driver.type} (agent)` : 'built-in edge');

function lease(s: FleetEntry): SafeHtml {
  switch (s.lease) {
    case 'fresh':
      return html`<span class="badge s-success">fresh</span> <span class="muted">${(s.leaseLeftMs / 1000).toFixed(1)} s left</span>`;
    case 'expired':
      return html`<span class="badge s-timeout">expired</span> <span class="muted">fenced: serves no hits</span>`;
    case 'none':
      return html`<span class="badge s-canceled">none</span> <span class="muted">never acked</span>`;
    case 'unfenced':
      return html`<span class="badge s-canceled">not fenced</span> <span class="muted">nginx keeps serving without its agent</span>`;
  }
}

const seconds = (ms: number): string => (ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${number(Math.round(ms / 1000))} s`);

/** The page's live part: the same fragment is the page's body and each update its event stream sends. */
export function fleetFragment(viewer: Viewer, lastSeq: number, rows: readonly FleetRow[]): SafeHtml {
  return html`<p class="muted">Nodes serving your domains. The purge log is at sequence ${number(lastSeq)}.</p>
${rows.length === 0 ? html`<p class="empty">No edge node serves your domains: purges succeed at once, with nothing to apply.</p>` : html`<table class="fleet">
<thead><tr><th scope="col">Node</th><th scope="col">Connected</th><th scope="col" class="num">Applied seq</th><th scope="col">Lag</th><th scope="col">Lease</th><th scope="col">Last ack</th><th scope="col">Last error</th></tr></thead>
<tbody>
${rows.map(
  ({ status: s, lagEntries, lagMs }) => html`<tr>
<th scope="row"><span class="mono">${s.nodeId}</span><div class="muted">${kind(s)}</div></th>
<td>${s.streams > 0 ? html`<span class="badge s-success">connected</span>` : html`<span class="badge s-failed">disconnected</span>`}</td>
<td class="num">${number(s.ackedSeq)}</td>
<td>${lagEntries === 0 ? html`<span class="muted">caught up</span>` : html`${number(lagEntries)} entries, ${seconds(lagMs)}`}</td>
<td>${lease(s)}</td>
<td class="nowrap">${s.seenAt === null ? '—' : time(s.seenAt, viewer.timezone)}</td>
<td>${s.lastError ? html`<span class="fail">${s.lastError.message}</span><div class="muted">${time(s.lastError.at, viewer.timezone)}</div>` : html`<span class="muted">none</span>`}</td>
</tr>
`,
)}</tbody>
</table>`}`;
}

export function fleetPage(viewer: Viewer, lastSeq: number, rows: readonly FleetRow[]): SafeHtml {
  return page(viewer, 'fleet', 'Fleet', html`<h1>Edge fleet</h1>
<section id="fleet" data-live="/console/fleet/events" data-live-event="fleet" aria-live="off">
${fleetFragment(viewer, lastSeq, rows)}
</section>`);
}
