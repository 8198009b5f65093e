// Reads a request body into memory under a hard size cap (TENCENT-API §1.1 size limits, DESIGN invariant 8).
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../shared/errors.ts';

const tooLarge = (maxBytes: number, seen: string): ApiError =>
  new ApiError('RequestSizeLimitExceeded', `The request body (${seen}) exceeds the limit of ${maxBytes} bytes.`);

/**
 * Buffers `req`'s body, at most `maxBytes` bytes.
 *
 * - A `Content-Length` above the limit is refused at once, before any byte is read.
 * - A body that grows past the limit while streaming (chunked, or a lying Content-Length) is refused
 *   as soon as the count passes it; what was buffered is dropped and the rest is discarded unread,
 *   so a client that only reads the answer after sending everything does not deadlock. The caller
 *   answers with `Connection: close` (and may destroy the socket once the answer is flushed).
 * - An aborted request rejects with `InvalidRequest`; nobody is left waiting.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  // A body that came in the headers' packet (every small request) is buffered by the time a microtask
  // queued now runs: the parser pushes it before microtasks run. All Content-Length bytes are then taken
  // with one read() instead of flowing mode ('data', 'end': several nextTicks and emits a request).
  if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) <= maxBytes && !req.readableEnded) {
    return Promise.resolve().then(() => readBuffered(req, Number(declared)) ?? streamBody(req, maxBytes));
  }
  return streamBody(req, maxBytes);
}

/** The body, when all `length` bytes Content-Length declared are buffered (the parser reads no more); else undefined. */
function readBuffered(req: IncomingMessage, length: number): Buffer | undefined {
  if (req.destroyed || req.readableFlowing || req.readableLength !== length) return undefined;
  if (length === 0) return Buffer.alloc(0);
  const body = req.read() as Buffer | null;
  if (body?.length !== length) throw new Error('readBody: the buffered body is not what Content-Length declared');
  return body;
}

function streamBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > maxBytes) {
      reject(tooLarge(maxBytes, `Content-Length ${declared}`));
      return;
    }
    if (req.destroyed || (req.readableEnded && !req.complete)) {
      reject(aborted());
      return;
    }
    if (req.readableEnded) {
      reject(new Error('readBody: the request body was already consumed'));
      return;
    }

    let chunks: Buffer[] = [];
    let received = 0;
    let settled = false;

    const finish = (outcome: { body: Buffer } | { error: Error }): void => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      // Keep one error listener so a late abort after we settled can never become an uncaught error.
      req.off('error', onError);
      req.on('error', ignore);
      chunks = [];
      if ('body' in outcome) resolve(outcome.body);
      else reject(outcome.error);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > maxBytes) {
        // Stop buffering; with no 'data' listener left the flowing stream discards the remainder.
        finish({ error: tooLarge(maxBytes, `at least ${received} bytes`) });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => finish({ body: Buffer.concat(chunks, received) });
    const onError = (err: Error): void => finish({ error: aborted(err) });
    const onClose = (): void => {
      if (!req.complete) finish({ error: aborted() });
    };

    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}

const aborted = (cause?: unknown): ApiError =>
  new ApiError('InvalidRequest', 'The client aborted the request before the body was complete.', { cause });

const ignore = (): void => {};
