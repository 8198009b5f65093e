// A client for Varnish's admin CLI (varnishd -T, the protocol varnishadm speaks): challenge-response
// authentication with the -S secret, one command at a time, each bounded by a timeout.
//
// Wire format (varnish-cache doc/sphinx/reference/varnish-cli.rst): every answer is a 13-byte header
// "SSS LLLLLLLL\n" (status, body length), the body, and "\n". On connect a server with -S answers
// 107 with a 32-character challenge; the client sends `auth <hex sha256(challenge \n secret challenge \n)>`.
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { DriverError } from '../edge-driver.ts';

export interface VarnishAdminOptions {
  readonly host: string;
  readonly port: number;
  /** The -S secret file's whole contents (trailing newline included: Varnish hashes the file as is), or how to read them. */
  readonly secret: Buffer | (() => Promise<Buffer>);
  /** Where the secret came from, named in errors. */
  readonly secretFile?: string;
  /** Per command, connecting and authenticating included (default 10 s). */
  readonly timeoutMs?: number;
}

export interface CliAnswer {
  readonly status: number;
  readonly body: string;
}

const CLIS_AUTH = 107;
const CLIS_OK = 200;
const HEADER_BYTES = 13;

/** A CLI argument as one token: double-quoted with the CLI's backslash escapes (VAV_Parse). */
export function cliQuote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`;
}

/** The answer to a 107 challenge (VCLI_AuthResponse in varnish-cache lib/libvarnish/vcli_proto.c). */
export function authResponse(challenge: string, secret: Buffer): string {
  return createHash('sha256').update(`${challenge}\n`).update(secret).update(`${challenge}\n`).digest('hex');
}

/** Reads CLI answers off one socket. */
class AnswerReader {
  #buf: Buffer = Buffer.alloc(0);
  #waiting: { resolve: (a: CliAnswer) => void; reject: (e: Error) => void } | undefined;
  #failed: Error | undefined;

  constructor(socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      this.#drain();
    });
    const fail = (e: Error) => {
      this.#failed ??= e;
      const w = this.#waiting;
      this.#waiting = undefined;
      w?.reject(this.#failed);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed by varnishd')));
  }

  /** The connection failed or closed (e.g. varnishd restarted): a command must not be written to it. */
  get failed(): boolean {
    return this.#failed !== undefined;
  }

  next(): Promise<CliAnswer> {
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#drain();
    });
  }

  #drain(): void {
    if (this.#waiting === undefined || this.#buf.length < HEADER_BYTES) return;
    const head = this.#buf.subarray(0, HEADER_BYTES).toString('latin1');
    const m = /^(\d{3}) +(\d+) *\n$/.exec(head);
    if (m === null) {
      const w = this.#waiting;
      this.#waiting = undefined;
      this.#failed = new Error(`not a Varnish CLI answer: ${JSON.stringify(head)}`);
      w.reject(this.#failed);
      return;
    }
    const len = Number(m[2]);
    if (this.#buf.length < HEADER_BYTES + len + 1) return;
    const body = this.#buf.subarray(HEADER_BYTES, HEADER_BYTES + len).toString('utf8');
    this.#buf = this.#buf.subarray(HEADER_BYTES + len + 1);
    const w = this.#waiting;
    this.#waiting = undefined;
    w.resolve({ status: Number(m[1]), body });
  }
}

/**
 * One authenticated admin connection, opened on first use and again after any failure. Commands run one
 * at a time in call order. Connection failures and timeouts throw a retryable DriverError; a rejected
 * secret throws a non-retryable one; a command Varnish refuses is returned (status ≠ 200), not thrown.
 */
export class VarnishAdmin {
  readonly #o: VarnishAdminOptions;
  #conn: Promise<{ socket: Socket; reader: AnswerReader }> | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: VarnishAdminOptions) {
    this.#o = options;
  }

  get address(): string {
    return `${this.#o.host}:${this.#o.port}`;
  }

  /** Runs one command line (no newline); `timeoutMs` overrides the default for slow commands (vcl.inline). */
  command(line: string, timeoutMs?: number): Promise<CliAnswer> {
    const run = this.#queue.then(() => this.#run(line, timeoutMs ?? this.#o.timeoutMs ?? 10_000));
    this.#queue = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    this.#closed = true;
    const conn = this.#conn;
    this.#conn = undefined;
    if (conn) {
      const c = await conn.catch(() => undefined);
      c?.socket.destroy();
    }
  }

  async #run(line: string, timeoutMs: number): Promise<CliAnswer> {
    if (this.#closed) throw new DriverError('the Varnish admin connection is closed', { retryable: false });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DriverError(`varnishd admin ${this.address} did not answer \`${line.split(' ')[0]}\` within ${timeoutMs} ms`, { retryable: true })), timeoutMs);
    });
    try {
      return await Promise.race([this.#exchange(line), timeout]);
    } catch (e) {
      // After a timeout or an I/O error the answer stream can no longer be trusted: start over.
      this.#drop();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async #exchange(line: string): Promise<CliAnswer> {
    let conn = await (this.#conn ??= this.#connect());
    if (conn.reader.failed) {
      // Closed while idle (varnishd restarted): the command was never sent, so connect again.
      conn = await (this.#conn = this.#connect());
    }
    const { socket, reader } = conn;
    socket.write(`${line}\n`);
    try {
      return await reader.next();
    } catch (e) {
      throw new DriverError(`varnishd admin ${this.address}: ${e instanceof Error ? e.message : String(e)}`, { retryable: true, cause: e });
    }
  }

  #drop(): void {
    const conn = this.#conn;
    this.#conn = undefined;
    void conn?.then((c) => c.socket.destroy(), () => {});
  }

  async #connect(): Promise<{ socket: Socket; reader: AnswerReader }> {
    const socket = connect({ host: this.#o.host, port: this.#o.port });
    socket.setNoDelay(true);
    const reader = new AnswerReader(socket);
    try {
      let hello = await reader.next();
      if (hello.status === CLIS_AUTH) {
        const challenge = hello.body.slice(0, 32);
        const secret = typeof this.#o.secret === 'function' ? await this.#o.secret() : this.#o.secret;
        socket.write(`auth ${authResponse(challenge, secret)}\n`);
        hello = await reader.next();
        if (hello.status !== CLIS_OK) {
          throw new DriverError(
            `varnishd admin ${this.address} rejected the secret${this.#o.secretFile ? ` from ${this.#o.secretFile}` : ''}: ` +
              'point the agent at the same file as varnishd -S (e.g. /etc/varnish/secret)',
            { retryable: false },
          );
        }
      } else if (hello.status !== CLIS_OK) {
        throw new DriverError(`varnishd admin ${this.address} answered ${hello.status} on connect: ${hello.body.trim()}`, { retryable: true });
      }
      return { socket, reader };
    } catch (e) {
      socket.destroy();
      if (e instanceof DriverError) throw e;
      throw new DriverError(
        `cannot reach varnishd admin at ${this.address} (${e instanceof Error ? e.message : String(e)}): is varnishd running with -T ${this.address}?`,
        { retryable: true, cause: e },
      );
    }
  }
}
