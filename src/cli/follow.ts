// `--wait`: follows a job over its event stream until every task settles, showing per-node progress
// (a redrawn bar per node on a terminal, one plain line per change otherwise), and turns the outcome
// into the exit code.
import type { AdminJob } from './client.ts';
import { followJob, type Endpoint } from './client.ts';

/** Exit code when --wait's own --timeout ran out while tasks were still processing. */
export const EXIT_WAIT_TIMEOUT = 4;

/** How far one node is through a job's tasks. */
interface NodeTally {
  readonly nodeId: string;
  readonly total: number;
  readonly applied: number;
  readonly fenced: number;
  readonly failed: number;
}

function tallyNodes(job: AdminJob): NodeTally[] {
  const byNode = new Map<string, { total: number; applied: number; fenced: number; failed: number }>();
  for (const t of job.Tasks) {
    for (const n of t.Nodes) {
      let c = byNode.get(n.NodeId);
      if (!c) byNode.set(n.NodeId, (c = { total: 0, applied: 0, fenced: 0, failed: 0 }));
      c.total++;
      if (n.State === 'applied' || n.State === 'fenced' || n.State === 'failed') c[n.State]++;
    }
  }
  return [...byNode].map(([nodeId, c]) => ({ nodeId, ...c }));
}

/** "2 success, 1 processing" */
function statusLine(job: AdminJob): string {
  const counts = new Map<string, number>();
  for (const t of job.Tasks) counts.set(t.Status, (counts.get(t.Status) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
}

const nodeNumbers = (n: NodeTally) => `${n.applied + n.fenced + n.failed}/${n.total}  (applied ${n.applied}, fenced ${n.fenced}, failed ${n.failed})`;

export interface ProgressView {
  update(job: AdminJob): void;
  note(message: string): void;
}

/** One line per change, for logs and pipes. */
export function plainProgress(out: NodeJS.WritableStream): ProgressView {
  const shown = new Map<string, string>();
  return {
    update(job) {
      const changed: string[] = [];
      const say = (key: string, line: string) => {
        if (shown.get(key) !== line) changed.push(line);
        shown.set(key, line);
      };
      for (const n of tallyNodes(job)) say(`node ${n.nodeId}`, `${n.nodeId}: ${nodeNumbers(n)}`);
      say('tasks', `tasks: ${statusLine(job)}`);
      // One write per update: a reader of the pipe never sees half of one.
      if (changed.length) out.write(`${changed.join('\n')}\n`);
    },
    note: (message) => void out.write(`${message}\n`),
  };
}

/** A block redrawn in place: one bar per node and the task statuses. */
export function terminalProgress(out: NodeJS.WritableStream & { columns?: number }): ProgressView {
  let drawn = 0;
  let last: AdminJob | undefined;
  let noteLine = '';
  const draw = () => {
    if (!last) return;
    const nodes = tallyNodes(last);
    const idWidth = Math.max(4, ...nodes.map((n) => n.nodeId.length));
    const barWidth = Math.max(10, Math.min(30, (out.columns ?? 80) - idWidth - 50));
    const lines = nodes.map((n) => {
      const filled = n.total ? Math.round((barWidth * (n.applied + n.fenced + n.failed)) / n.total) : barWidth;
      return `  ${n.nodeId.padEnd(idWidth)} [${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}] ${nodeNumbers(n)}`;
    });
    if (nodes.length === 0) lines.push('  (no edge node serves these hosts)');
    lines.push(`  tasks: ${statusLine(last)}`);
    if (noteLine) lines.push(`  ${noteLine}`);
    // Up to the block's first line, then each line rewritten and cleared to its end.
    const up = drawn ? `\x1b[${drawn}F` : '';
    out.write(`${up}${lines.map((l) => `${l}\x1b[K`).join('\n')}\x1b[J\n`);
    drawn = lines.length;
  };
  return {
    update(job) {
      last = job;
      noteLine = '';
      draw();
    },
    note(message) {
      noteLine = message;
      if (last) draw();
      else out.write(`${message}\n`);
    },
  };
}

/**
 * Waits for job `jobId` to settle, at most `timeoutMs`. 0 when every task succeeded, 1 when one failed
 * or timed out (each listed on `err`), EXIT_WAIT_TIMEOUT when this wait ran out first. With `json`,
 * prints nothing but returns the last view for the caller to print.
 */
export async function waitForJob(
  ep: Endpoint,
  jobId: string,
  opts: { timeoutMs: number; json: boolean; out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }; err: NodeJS.WritableStream },
): Promise<{ code: number; job: AdminJob | undefined }> {
  const view = opts.json ? undefined : opts.out.isTTY ? terminalProgress(opts.out) : plainProgress(opts.out);
  let last: AdminJob | undefined;
  const signal = AbortSignal.timeout(opts.timeoutMs);
  let settled: AdminJob | undefined;
  try {
    settled = await followJob(ep, jobId, {
      signal,
      onView: (job) => {
        last = job;
        view?.update(job);
      },
      onRetry: (e, inMs) => view?.note(`connection lost (${e instanceof Error ? e.message : String(e)}); retrying in ${(inMs / 1000).toFixed(2)} s`),
    });
  } catch (e) {
    if (!signal.aborted) throw e;
    const open = last?.Tasks.filter((t) => t.Status === 'processing').length;
    const left = open === undefined ? 'its tasks were not seen yet' : `${open} of ${last!.Tasks.length} tasks still processing`;
    opts.err.write(`gave up waiting after ${formatMs(opts.timeoutMs)}: ${left}. The job goes on; follow it with: edgepurge tasks show ${jobId}\n`);
    return { code: EXIT_WAIT_TIMEOUT, job: last };
  }
  if (!settled) throw new Error(`the control plane does not know job ${jobId}`);
  const bad = settled.Tasks.filter((t) => t.Status !== 'success');
  for (const t of bad) opts.err.write(`${t.Status}: ${t.Target}${t.FailMessage ? ` — ${t.FailMessage}` : ''}\n`);
  return { code: bad.length ? 1 : 0, job: settled };
}

const formatMs = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000} min` : `${ms / 1000} s`);
