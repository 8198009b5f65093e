// Console sessions: a server-side store of signed-in accounts behind an opaque cookie, with idle and
// absolute expiry, a per-session CSRF token, and bounded memory.
import { createHash, randomBytes } from 'node:crypto';
import type { Clock } from '../shared/clock.ts';
import { constantTimeEqual } from '../protocols/hmac-signature.ts';

export interface Session {
  /** The account, by AppId and the SecretId that signed in (re-checked against the config on every request). */
  readonly appId: number;
  readonly secretId: string;
  /** SHA-256 of the SecretKey used to sign in: a rotated key ends the session. */
  readonly keyDigest: string;
  /** Sent back with every POST (hidden form field); compared in constant time. */
  readonly csrfToken: string;
  readonly createdAt: number;
  lastSeenAt: number;
  /** One-shot message for the next page (e.g. a purge's FailedList after the redirect). */
  flash?: string;
}

export interface SessionLimits {
  /** A session unused this long ends (default 30 min). */
  readonly idleMs: number;
  /** A session ends this long after sign-in whatever its use (default 12 h). */
  readonly maxAgeMs: number;
  /** Sessions kept in all; past it the least recently created goes (default 10,000). */
  readonly maxSessions: number;
  /** Sessions per account; past it that account's oldest goes (default 50). */
  readonly maxPerAccount: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { idleMs: 30 * 60_000, maxAgeMs: 12 * 3_600_000, maxSessions: 10_000, maxPerAccount: 50 };

export const digestSecret = (s: string): string => createHash('sha256').update(s, 'utf8').digest('base64url');

/** 256 random bits, URL-safe. */
const token = (): string => randomBytes(32).toString('base64url');

/**
 * Sessions are kept under the SHA-256 of their cookie value, so a memory dump or a timing side channel
 * on the Map lookup shows no usable cookie. Expired sessions are dropped when read and on each sign-in.
 */
export class SessionStore {
  readonly #clock: Clock;
  readonly #limits: SessionLimits;
  readonly #byKey = new Map<string, Session>();

  constructor(clock: Clock, limits: Partial<SessionLimits> = {}) {
    this.#clock = clock;
    this.#limits = { ...DEFAULT_SESSION_LIMITS, ...limits };
  }

  get size(): number {
    return this.#byKey.size;
  }

  /** Starts a session; returns the cookie value (shown once, never stored) and the session. */
  create(account: { appId: number; secretId: string; secretKey: string }): { cookie: string; session: Session } {
    const now = this.#clock.now();
    this.#sweep(now);
    const mine = [...this.#byKey].filter(([, s]) => s.appId === account.appId);
    for (const [key] of mine.slice(0, Math.max(0, mine.length - this.#limits.maxPerAccount + 1))) this.#byKey.delete(key);
    while (this.#byKey.size >= this.#limits.maxSessions) this.#byKey.delete(this.#byKey.keys().next().value!);
    const cookie = token();
    const session: Session = { appId: account.appId, secretId: account.secretId, keyDigest: digestSecret(account.secretKey), csrfToken: token(), createdAt: now, lastSeenAt: now };
    this.#byKey.set(digestSecret(cookie), session);
    return { cookie, session };
  }

  /** The live session of a cookie value, its idle timer restarted; undefined when unknown or expired. */
  get(cookie: string | undefined): Session | undefined {
    if (!cookie) return undefined;
    const key = digestSecret(cookie);
    const s = this.#byKey.get(key);
    if (!s) return undefined;
    const now = this.#clock.now();
    if (this.#expired(s, now)) {
      this.#byKey.delete(key);
      return undefined;
    }
    s.lastSeenAt = now;
    return s;
  }

  /** Ends a session (sign-out); unknown values are ignored. */
  destroy(cookie: string | undefined): void {
    if (cookie) this.#byKey.delete(digestSecret(cookie));
  }

  #expired(s: Session, now: number): boolean {
    return now - s.lastSeenAt > this.#limits.idleMs || now - s.createdAt > this.#limits.maxAgeMs;
  }

  #sweep(now: number): void {
    for (const [key, s] of this.#byKey) if (this.#expired(s, now)) this.#byKey.delete(key);
  }
}

/** The POSTed token matches the session's (constant time; a missing token never matches). */
export const csrfTokenValid = (session: Session, posted: string | null | undefined): boolean =>
  typeof posted === 'string' && posted.length > 0 && constantTimeEqual(session.csrfToken, posted);

/**
 * A state-changing request came from one of our own pages: its Origin (which browsers send with every
 * POST, and which a page cannot forge) names this very host. Requests without Origin are refused:
 * the console is for browsers, the API is for scripts.
 */
export function sameOrigin(headers: { origin?: string | undefined; host?: string | undefined }, tls: boolean): boolean {
  const { origin, host } = headers;
  if (!origin || !host) return false;
  return origin === `${tls ? 'https' : 'http'}://${host}`;
}

/** Cookie header → value of `name` (RFC 6265 §5.4; the first one wins). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Set-Cookie for the session: HttpOnly, SameSite=Strict, Path=/console, Secure over TLS; `value` undefined clears it. */
export function sessionCookie(name: string, value: string | undefined, tls: boolean, maxAgeMs: number): string {
  const attrs = [`${name}=${value ?? ''}`, 'Path=/console', 'HttpOnly', 'SameSite=Strict', value === undefined ? 'Max-Age=0' : `Max-Age=${Math.floor(maxAgeMs / 1000)}`];
  if (tls) attrs.push('Secure');
  return attrs.join('; ');
}
