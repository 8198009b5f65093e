// A node's side of the ack channel (wire.ts, GET /edge/v1/acks upgraded): one connection, one token check,
// then one line per ack and one line per answer, in order. Used by EdgeAgent and the bench's simulated nodes.
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { ACK_CHANNEL_PROTOCOL, type AckRequest, type AckResponse } from './wire.ts';

/** A control plane that does not know the channel (an older one): the node posts its acks instead. */
export class AckChannelUnsupported extends Error {}

export class AckChannel {
  readonly #socket: Socket;
  readonly #waiting: Array<{ resolve: (r: AckResponse) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }> = [];
  #buf = '';
  #error: Error | undefined;

  private constructor(socket: Socket, head: Buffer) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => this.#data(c));
    socket.on('error', (e) => this.#fail(e));
    socket.on('end', () => this.#fail(new Error('ack channel closed by the control plane')));
    socket.on('close', () => this.#fail(new Error('ack channel closed')));
    if (head.length) this.#data(head.toString('utf8'));
  }

  /**
   * Opens a channel to `base` (a control-plane URL); rejects with AckChannelUnsupported when it answers the
   * upgrade with 404 or 405, with another Error when it cannot be reached or refuses the node.
   */
  static open(base: string, headers: Readonly<Record<string, string>>, signal?: AbortSignal, timeoutMs = 10_000): Promise<AckChannel> {
    return new Promise((resolve, reject) => {
      const req = request(new URL('/edge/v1/acks', base), {
        method: 'GET',
        signal,
        headers: { ...headers, Connection: 'Upgrade', Upgrade: ACK_CHANNEL_PROTOCOL },
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error('ack channel: no answer to the upgrade')));
      req.on('upgrade', (res, socket: Socket, head: Buffer) => {
        req.setTimeout(0);
        if (String(res.headers.upgrade).toLowerCase() !== ACK_CHANNEL_PROTOCOL) {
          socket.destroy();
          return reject(new Error(`ack channel: upgraded to ${res.headers.upgrade}`));
        }
        resolve(new AckChannel(socket, head));
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          // 404/405: no such endpoint here (an older control plane answers every unknown edge path so); 400: a
          // server or proxy that does not take upgrades on GET.
          reject(status === 404 || status === 405 || status === 400 ? new AckChannelUnsupported(`ack channel: HTTP ${status}: ${text}`) : new Error(`ack channel: HTTP ${status}: ${text}`));
        });
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** Whether the channel can still carry acks. */
  get open(): boolean {
    return this.#error === undefined;
  }

  /** Sends one ack; resolves with its answer, rejects on a refusal (`{"error"}`), a timeout or a lost channel. */
  send(body: AckRequest, timeoutMs = 10_000): Promise<AckResponse> {
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      // Answers come in order, so a late one cannot be matched to another ack: a timeout ends the channel.
      const timer = setTimeout(() => this.#fail(new Error('ack timed out')), timeoutMs);
      this.#waiting.push({ resolve, reject, timer });
      this.#socket.write(`${JSON.stringify(body)}\n`);
    });
  }

  close(): void {
    this.#fail(new Error('ack channel closed'));
  }

  #data(chunk: string): void {
    this.#buf += chunk;
    for (let nl = this.#buf.indexOf('\n'); nl !== -1; nl = this.#buf.indexOf('\n')) {
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + 1);
      const w = this.#waiting.shift();
      if (!w) return this.#fail(new Error('ack channel: an answer nothing was waiting for'));
      clearTimeout(w.timer);
      let answer: AckResponse | { error: string };
      try {
        answer = JSON.parse(line) as AckResponse | { error: string };
      } catch {
        w.reject(new Error(`ack channel: answer is not JSON: ${line.slice(0, 200)}`));
        return this.#fail(new Error('ack channel: garbled answer'));
      }
      if ('error' in answer) w.reject(new Error(`ack refused: ${answer.error}`));
      else w.resolve(answer);
    }
  }

  #fail(e: Error): void {
    this.#error ??= e;
    for (const w of this.#waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(this.#error);
    }
    this.#socket.destroy();
  }
}
