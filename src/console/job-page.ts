// One job: every task with its per-node progress. The same fragment is the page's body and each live
// update the job's event stream sends (live-events.ts), so the page and its updates cannot disagree.
import type { NodeView } from '../fanout/fanout-hub.ts';
import type { JobRecord, TaskRecord, TaskStatus } from '../purge/types.ts';
import type { WebhookDelivery } from '../store/task-store.ts';
import { html, type SafeHtml } from './html.ts';
import { number, page, shortId, statusBadge, time, type Viewer } from './layout.ts';

export interface JobSnapshot {
  readonly job: JobRecord;
  readonly tasks: ReadonlyArray<{ readonly task: TaskRecord; readonly nodes: readonly NodeView[] }>;
}

/** Every task has a final status: nothing about the job will change any more. */
export const jobSettled = (s: JobSnapshot): boolean => s.tasks.every((t) => t.task.status !== 'processing');

const SOURCES: Readonly<Record<string, string>> = { teo: 'EdgeOne API 3.0', cdn: 'CDN API 3.0', v2: 'CDN legacy v2' };

function nodeChip(n: NodeView, tz: string): SafeHtml {
  const seen = n.seenAt === null ? 'never acked' : `last ack ${time(n.seenAt, tz)}`;
  // What the node's cache executed (issue 8): a Varnish ban is a delete even for an invalidate, and says so.
  const r = n.report;
  const executed = r ? ` ${r.executedAs}${r.matched === null ? '' : `, ${r.matched} matched`}` : '';
  const note = r?.note ? `; ${r.note}` : '';
  return html`<li class="node n-${n.state}" title="${`${n.driver}; applied up to seq ${n.ackedSeq}; ${seen}${note}${n.failMessage ? `; ${n.failMessage}` : ''}`}"><span class="dot" aria-hidden="true"></span>${n.nodeId} <span class="state">${n.state}</span><span class="executed">${executed}</span></li>`;
}

/** The live part of the job page. */
export function jobFragment(s: JobSnapshot, tz: string): SafeHtml {
  const { job } = s;
  const counts = new Map<TaskStatus, number>();
  for (const { task } of s.tasks) counts.set(task.status, (counts.get(task.status) ?? 0) + 1);
  const settledCount = s.tasks.length - (counts.get('processing') ?? 0);
  const settled = jobSettled(s);
  return html`<div class="job-head">
  <p class="state ${settled ? 'settled' : 'live'}" role="status">${settled ? 'Settled' : html`<span class="pulse" aria-hidden="true"></span>Live: updating as nodes apply it`}</p>
  <progress max="${s.tasks.length}" value="${settledCount}" aria-label="tasks settled">${settledCount} of ${s.tasks.length}</progress>
  <p class="counts">${[...counts].map(([status, n]) => html`${statusBadge(status)} ${number(n)} `)}</p>
</div>
<dl class="facts">
  <div><dt>Type</dt><dd>${job.type}</dd></div>
  <div><dt>Method</dt><dd>${job.method}</dd></div>
  <div><dt>Zone</dt><dd>${job.zoneId === '*' ? 'every zone' : job.zoneId}</dd></div>
  <div><dt>Created</dt><dd>${time(job.createdAt, tz)}</dd></div>
  <div><dt>Submitted by</dt><dd><span title="${job.secretId}">${shortId(job.secretId)}</span> from ${job.clientIp || '—'} via ${SOURCES[job.source] ?? job.source}</dd></div>
</dl>
<table class="tasks job-tasks">
<thead><tr><th scope="col">Target</th><th scope="col">Status</th><th scope="col">Edge nodes</th><th scope="col">Updated</th></tr></thead>
<tbody>
${s.tasks.map(
  ({ task, nodes }) => html`<tr data-status="${task.status}">
<td class="target"><code>${task.target}</code>${task.failMessage ? html`<div class="fail">${task.failType ? `${task.failType}: ` : ''}${task.failMessage}</div>` : ''}</td>
<td>${statusBadge(task.status)}</td>
<td>${nodes.length ? html`<ul class="nodes">${nodes.map((n) => nodeChip(n, tz))}</ul>` : html`<span class="muted">no edge node serves ${task.hosts.join(', ')}</span>`}</td>
<td class="nowrap">${time(task.updatedAt, tz)}</td>
</tr>
`,
)}</tbody>
</table>`;
}

/** The job's webhook deliveries (docs/webhooks.md): one row per endpoint, with its last attempt. */
function deliveriesSection(deliveries: readonly WebhookDelivery[], tz: string): SafeHtml | '' {
  if (deliveries.length === 0) return '';
  return html`<section class="webhooks" aria-labelledby="webhooks-h">
<h2 id="webhooks-h">Webhook deliveries</h2>
<table class="tasks webhook-deliveries">
<thead><tr><th scope="col">Endpoint</th><th scope="col">Event</th><th scope="col">Delivery</th><th scope="col">Attempts</th><th scope="col">Last attempt</th></tr></thead>
<tbody>
${deliveries.map(
  (d) => html`<tr data-delivery="${d.status}">
<td class="target"><code>${d.url}</code><div class="muted mono" title="EdgePurge-Event-Id">${d.eventId}</div></td>
<td>${d.event}</td>
<td>${d.status}${d.status === 'pending' && d.attempts > 0 ? html` <span class="muted">next ${time(d.nextAt, tz)}</span>` : ''}</td>
<td>${number(d.attempts)}</td>
<td class="nowrap">${d.lastAttemptAt === null ? '—' : time(d.lastAttemptAt, tz)}${d.lastError ? html`<div class="fail">${d.lastError}</div>` : d.lastStatus !== null ? html` <span class="muted">HTTP ${d.lastStatus}</span>` : ''}</td>
</tr>
`,
)}</tbody>
</table>
</section>`;
}

export function jobPage(viewer: Viewer, s: JobSnapshot, flash: string | undefined, deliveries: readonly WebhookDelivery[] = []): SafeHtml {
  const live = jobSettled(s) ? '' : `/console/jobs/${s.job.jobId}/events`;
  return page(viewer, 'job', `Job ${s.job.jobId}`, html`<p class="crumbs"><a href="/console/history">History</a> / job</p>
<h1>Job <span class="mono">${s.job.jobId}</span></h1>
${flash ? html`<div class="alert warn" role="alert">${flash}</div>` : ''}
<section id="job"${live ? html` data-live="${live}"` : ''} aria-live="polite">
${jobFragment(s, viewer.timezone)}
</section>
${deliveriesSection(deliveries, viewer.timezone)}`);
}

export function jobNotFound(viewer: Viewer, jobId: string): SafeHtml {
  return page(viewer, 'job', 'No such job', html`<h1>No such job</h1>
<p>There is no job <span class="mono">${jobId}</span> in this account. <a href="/console/history">Back to the history</a>.</p>`);
}
