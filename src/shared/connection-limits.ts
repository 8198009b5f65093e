// Connection admission for the HTTP servers (control plane and edge): caps per client address and in
// total, a deadline for a first byte, shedding of idle keep-alive sockets under pressure, and lingering
// close. One client's slow or half-open sockets must not take the descriptors other clients need (issue 7).
import type { Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { isIPv6, type Socket } from 'node:net';

export interface ConnectionLimits {
  /** Open connections one client address may hold (IPv6: one /64); past it new ones are closed at once. */
  readonly perAddress: number;
  /** Open connections in all (at most the open-file limit less a reserve); past it new ones are closed at once. */
  readonly total: number;
  /** A connection that sends no byte within this is closed (node's headersTimeout starts at the first byte). */
  readonly firstByteTimeoutMs: number;
}

/** Suits one busy host; both servers' configurations default to it. */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = Object.freeze({ perAddress: 1024, total: 16_384, firstByteTimeoutMs: 10_000 });

/** Descriptors kept back from the process's open-file limit for the store, origins, logs and streams. */
const FD_RESERVE = 256;

/**
 * The soft RLIMIT_NOFILE (Linux: /proc/self/limits); Infinity where it cannot be read. A total above it
 * would fail with EMFILE before the cap ever refused anyone.
 */
export function openFileLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m && m[1] !== 'unlimited' ? Number(m[1]) : Number.POSITIVE_INFINITY;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** Share of `total` from which idle keep-alive sockets are closed to make room. */
const SHED_AT = 0.75;
/** Shedding walks every connection: at most once per this many ms. */
const SHED_EVERY_MS = 100;

export interface ConnectionGuard {
  /** Connections open now. */
  readonly open: number;
  /** Connections closed on arrival since start, by reason. */
  readonly refused: { readonly perAddress: number; readonly total: number; readonly silent: number };
  /** Open connections of one client address. */
  openFrom(address: string): number;
}

/**
 * The accounting key of a client address: IPv4 (also IPv4-mapped IPv6) as is, other IPv6 by its /64,
 * since one host is routinely given a whole /64 to pick addresses from.
 */
export function addressKey(address: string | undefined): string {
  if (address === undefined || address === '') return '?';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * Admits `server`'s connections under `limits` (read on every connection, so a reload applies to the
 * next one). A refused connection is reset at once: it gets no bytes and costs no TIME_WAIT.
 */
export function guardConnections(server: Server, limits: () => ConnectionLimits): ConnectionGuard {
  const byAddress = new Map<string, number>();
  const fdCap = Math.max(64, openFileLimit() - FD_RESERVE);
  const refused = { perAddress: 0, total: 0, silent: 0 };
  let open = 0;
  let lastShed = 0;

  const shed = (): void => {
    const now = performance.now();
    if (now - lastShed < SHED_EVERY_MS) return;
    lastShed = now;
    server.closeIdleConnections();
  };

  server.on('connection', (socket: Socket) => {
    const l = limits();
    const total = Math.min(l.total, fdCap);
    const key = addressKey(socket.remoteAddress);
    const mine = byAddress.get(key) ?? 0;
    // Idle sockets are shed for the total only: one address at its cap is simply refused.
    if (open >= total * SHED_AT) shed();
    if (mine >= l.perAddress || open >= total) {
      if (mine >= l.perAddress) refused.perAddress++;
      else refused.total++;
      socket.resetAndDestroy();
      return;
    }
    open++;
    byAddress.set(key, mine + 1);
    const silent = setTimeout(() => {
      if (socket.bytesRead === 0) {
        refused.silent++;
        socket.destroy();
      }
    }, l.firstByteTimeoutMs);
    silent.unref();
    socket.once('close', () => {
      clearTimeout(silent);
      open--;
      const n = (byAddress.get(key) ?? 1) - 1;
      if (n === 0) byAddress.delete(key);
      else byAddress.set(key, n);
    });
  });

  return {
    get open() {
      return open;
    },
    refused,
    openFrom: (address) => byAddress.get(addressKey(address)) ?? 0,
  };
}

/**
 * Closes `socket` after an answer that did not read the whole request (a refused oversized body):
 * sends FIN, then keeps reading and discarding for up to `maxMs` or `maxBytes`, and for no longer than
 * `quietMs` without data, before the socket is destroyed. Destroying it while the client is still
 * sending makes the kernel answer with a reset that can wipe the answer before the client reads it
 * (as nginx's lingering_close avoids). Call it instead of letting the server destroy the socket.
 */
export function lingeringClose(socket: Socket, bounds: { maxMs: number; maxBytes: number; quietMs: number } = LINGER): void {
  if (socket.destroyed) return;
  const start = socket.bytesRead;
  let last = start;
  const done = (): void => {
    clearInterval(poll);
    clearTimeout(cap);
    socket.destroy();
  };
  const cap = setTimeout(done, bounds.maxMs);
  const poll = setInterval(() => {
    const read = socket.bytesRead;
    if (read - start > bounds.maxBytes || read === last) done();
    last = read;
  }, bounds.quietMs);
  cap.unref();
  poll.unref();
  socket.once('close', done);
  socket.on('error', () => {});
  socket.end();
  // Whatever still arrives is read and dropped (the HTTP parser may already have let go of the socket).
  socket.on('data', () => {});
  socket.resume();
}

const LINGER = { maxMs: 30_000, maxBytes: 64 * 1024 * 1024, quietMs: 2_000 };
