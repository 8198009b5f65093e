// A cache head reader thread (head-readers.ts): summarizes each path of a batch, in order.
import { parentPort } from 'node:worker_threads';
import { summarizeHead } from './cache-scanner.ts';
import type { ReaderAnswer } from './head-readers.ts';

parentPort!.on('message', (paths: string[]) => {
  let answer: ReaderAnswer;
  try {
    answer = { ok: true, out: paths.map(summarizeHead) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    answer = { ok: false, message: (err as Error).message, ...(code === undefined ? {} : { code }) };
  }
  parentPort!.postMessage(answer);
});
