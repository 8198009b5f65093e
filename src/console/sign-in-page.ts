// The sign-in page (and the small pages shown to someone not signed in).
import { html, type SafeHtml } from './html.ts';
import { document } from './layout.ts';

export function signInPage(o: { next?: string; secretId?: string; error?: string; notice?: string } = {}): SafeHtml {
  return document('Sign in', html`<main class="sign-in">
<h1><span class="logo" aria-hidden="true"></span>EdgePurge console</h1>
<p class="muted">Sign in with one of your account's API keys (the SecretId/SecretKey you give the SDKs).</p>
${o.error ? html`<div class="alert error" role="alert">${o.error}</div>` : ''}
${o.notice ? html`<div class="alert" role="status">${o.notice}</div>` : ''}
<form method="post" action="/console/sign-in">
${o.next ? html`<input type="hidden" name="next" value="${o.next}">` : ''}
<div class="field block"><label for="s-id">SecretId</label><input id="s-id" name="secretId" value="${o.secretId ?? ''}" autocomplete="username" spellcheck="false" required autofocus></div>
<div class="field block"><label for="s-key">SecretKey</label><input id="s-key" name="secretKey" type="password" autocomplete="current-password" required></div>
<p class="actions"><button type="submit" class="primary">Sign in</button></p>
</form>
</main>`);
}

/** A page for refused or broken requests, with a way back. */
export function messagePage(title: string, message: string): SafeHtml {
  return document(title, html`<main class="sign-in">
<h1>${title}</h1>
<p>${message}</p>
<p><a href="/console/history">Back to the console</a></p>
</main>`);
}
