// A small structured logger: one JSON line per event on stderr, quiet below the configured level.
import { systemClock, type Clock } from './clock.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * A writer that hands what was written in one turn of the event loop to `sink` in one piece: the access
 * log writes a line per request, and stderr to a file or a pipe is a synchronous write(2) each. The
 * turn's lines go out at its end (setImmediate), at once past 64 KiB, and at process exit.
 */
export function linesPerTurn(sink: (chunk: string) => void): (line: string) => void {
  let pending = '';
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending === '') return;
    const chunk = pending;
    pending = '';
    sink(chunk);
  };
  process.once('exit', flush);
  return (line) => {
    pending += line;
    if (pending.length >= 65_536) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}

export function createLogger(level: LogLevel, write: (line: string) => void = linesPerTurn((l) => process.stderr.write(l)), clock: Clock = systemClock): Logger {
  const at = (lvl: Exclude<LogLevel, 'silent'>) => (msg: string, fields?: Record<string, unknown>) => {
    if (RANK[lvl] < RANK[level]) return;
    // One object built in place (the access log writes a line per request).
    const line: Record<string, unknown> = { t: new Date(clock.now()).toISOString(), level: lvl, msg };
    if (fields) {
      for (const k of Object.keys(fields)) {
        const v = fields[k];
        line[k] = v instanceof Error ? { message: v.message, stack: v.stack, cause: String(v.cause ?? '') } : v;
      }
    }
    write(`${JSON.stringify(line)}\n`);
  };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export const silentLogger: Logger = createLogger('silent');
