// A console client over plain HTTP (no browser): signs in, keeps the cookie, reads the CSRF token, posts forms.
import type { TestServer } from '../helpers/control-plane.ts';

export class ConsoleClient {
  readonly #s: TestServer;
  cookie = '';
  csrf = '';

  constructor(s: TestServer) {
    this.#s = s;
  }

  get origin(): string {
    return this.#s.url;
  }

  /** A GET with the session cookie; redirects are not followed. */
  get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${this.#s.url}${path}`, { redirect: 'manual', headers: { ...(this.cookie ? { cookie: this.cookie } : {}), ...headers } });
  }

  /** A form POST with the session cookie and, unless overridden, our Origin. */
  post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${this.#s.url}${path}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: this.#s.url, ...(this.cookie ? { cookie: this.cookie } : {}), ...headers },
      body: new URLSearchParams(form),
    });
  }

  /** Signs in; keeps the session cookie and the page's CSRF token. Returns the sign-in answer. */
  async signIn(who: { secretId: string; secretKey: string }): Promise<Response> {
    const res = await this.post('/console/sign-in', { secretId: who.secretId, secretKey: who.secretKey });
    const set = res.headers.get('set-cookie');
    if (res.status === 303 && set) {
      this.cookie = set.split(';', 1)[0]!;
      const page = await (await this.get('/console/purge')).text();
      this.csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? '';
    }
    return res;
  }

  /** Submits the purge form (CSRF token included unless `form.csrf` says otherwise). */
  submit(form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    return this.post('/console/purge', { csrf: this.csrf, ...form }, headers);
  }
}

/** The code and message of the page's error box, unescaped. */
export function pageError(page: string): { code: string; message: string } | undefined {
  const m = /<div class="alert error" role="alert"><strong>([^<]*)<\/strong> ([^<]*)<\/div>/.exec(page);
  return m ? { code: unescape(m[1]!), message: unescape(m[2]!) } : undefined;
}

const unescape = (s: string): string =>
  s.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e]!);
