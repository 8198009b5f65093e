// The submit form: every purge type and method, and prefetch. The form's fields become the EdgeOne
// CreatePurgeTask / CreatePrefetchTask parameters, so the API's own action code validates them.
import type { AccountConfig } from '../config/schema.ts';
import { TASK_TYPES, type TaskType } from '../purge/types.ts';
import { html, type SafeHtml } from './html.ts';
import { csrfField, errorBox, page, type Viewer } from './layout.ts';

/** The form as typed, shown back unchanged when the API refuses it. */
export interface PurgeForm {
  readonly type: string;
  readonly zone: string;
  readonly method: string;
  readonly targets: string;
  readonly tagDomains: string;
  readonly headers: string;
  readonly encodeUrl: boolean;
}

const LABELS: Readonly<Record<TaskType, readonly [string, string]>> = {
  purge_url: ['URLs', 'one URL per line'],
  purge_prefix: ['Directories', 'every URL under each prefix'],
  purge_host: ['Hosts', 'everything cached for a domain'],
  purge_all: ['Whole zone', "every domain of the zone"],
  purge_cache_tag: ['Cache tags', 'objects whose Cache-Tag names a tag'],
  prefetch_url: ['Prefetch', 'warm the edges with URLs'],
};

export function readPurgeForm(body: URLSearchParams): PurgeForm {
  const get = (k: string) => body.get(k) ?? '';
  return {
    type: get('type'),
    zone: get('zone'),
    method: get('method'),
    targets: get('targets'),
    tagDomains: get('tagDomains'),
    headers: get('headers'),
    encodeUrl: body.get('encodeUrl') === 'on',
  };
}

const lines = (s: string): string[] => s.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);

/**
 * The API action and its parameters. Nothing is checked here: an unknown type, an empty list or a bad
 * header reach the action as they are, and its refusal is what the user sees.
 */
export function purgeParams(f: PurgeForm): { action: 'CreatePurgeTask' | 'CreatePrefetchTask'; params: Record<string, unknown> } {
  const common = { ZoneId: f.zone, Targets: lines(f.targets), ...(f.encodeUrl ? { EncodeUrl: true } : {}) };
  if (f.type === 'prefetch_url') {
    const headers = lines(f.headers).map((l) => {
      const colon = l.indexOf(':');
      return colon === -1 ? { Name: l, Value: '' } : { Name: l.slice(0, colon).trim(), Value: l.slice(colon + 1).trim() };
    });
    return { action: 'CreatePrefetchTask', params: { ...common, ...(headers.length ? { Headers: headers } : {}) } };
  }
  const domains = lines(f.tagDomains);
  return {
    action: 'CreatePurgeTask',
    params: {
      ...common,
      Type: f.type,
      ...(f.method ? { Method: f.method } : {}),
      ...(f.type === 'purge_cache_tag' && domains.length ? { CacheTag: { Domains: domains } } : {}),
    },
  };
}

export const emptyPurgeForm = (account: AccountConfig): PurgeForm => ({
  type: 'purge_url',
  zone: account.zones[0]?.zoneId ?? '',
  method: '',
  targets: '',
  tagDomains: '',
  headers: '',
  encodeUrl: false,
});

export function purgePage(viewer: Viewer, account: AccountConfig, f: PurgeForm, error?: { code: string; message: string }): SafeHtml {
  const checked = (on: boolean) => (on ? html` checked` : '');
  const selected = (on: boolean) => (on ? html` selected` : '');
  const hosts = account.zones.flatMap((z) => z.domains.map((d) => d.host));
  return page(viewer, 'purge', 'New purge', html`<h1>New purge or prefetch</h1>
${errorBox(error)}
<form class="purge-form" method="post" action="/console/purge">
${csrfField(viewer)}
<fieldset class="types">
  <legend>What to purge</legend>
  ${TASK_TYPES.map(
    (t) => html`<label class="type-card"><input type="radio" name="type" value="${t}"${checked(f.type === t)}><span class="type-name">${LABELS[t][0]}</span><span class="type-help">${LABELS[t][1]}</span></label>`,
  )}
</fieldset>
<div class="row">
  <div class="field"><label for="p-zone">Zone</label><select id="p-zone" name="zone">
    ${account.zones.map((z) => html`<option value="${z.zoneId}"${selected(f.zone === z.zoneId)}>${z.zoneId} (${z.name})</option>`)}
    <option value="*"${selected(f.zone === '*')}>* every zone</option>
  </select></div>
  <div class="field not-prefetch"><label for="p-method">Method</label><select id="p-method" name="method">
    <option value=""${selected(f.method === '')}>default for the type</option>
    <option value="invalidate"${selected(f.method === 'invalidate')}>invalidate (revalidate before serving)</option>
    <option value="delete"${selected(f.method === 'delete')}>delete</option>
  </select></div>
  <label class="check not-all"><input type="checkbox" name="encodeUrl"${checked(f.encodeUrl)}> percent-encode non-ASCII URLs</label>
</div>
<div class="field block not-all"><label for="p-targets">Targets</label><span class="hint">one per line</span>
<textarea id="p-targets" name="targets" rows="6" spellcheck="false" placeholder="${`https://${hosts[0] ?? 'www.example.com'}/path`}">${f.targets}</textarea></div>
<div class="field block only-tag"><label for="p-tag-domains">Tag domains</label><span class="hint">one per line; empty = every domain of the zone</span>
<textarea id="p-tag-domains" name="tagDomains" rows="2" spellcheck="false" placeholder="${hosts.slice(0, 2).join('\n')}">${f.tagDomains}</textarea></div>
<div class="field block only-prefetch"><label for="p-headers">Headers sent to the origin</label><span class="hint">Name: Value, one per line</span>
<textarea id="p-headers" name="headers" rows="2" spellcheck="false">${f.headers}</textarea></div>
<p class="actions"><button type="submit" class="primary">Submit</button> <span class="muted">Checked and counted against your quota exactly as the API does.</span></p>
</form>`);
}
