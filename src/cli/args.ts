// Command specs for the `edgepurge` command: one table gives both the parser (node:util parseArgs) and
// every --help text, so an option cannot be accepted without being listed.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake in the command line: exit 2, nothing was sent. */
export class UsageError extends Error {}

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  /** The value's placeholder in help, e.g. FILE (string options). */
  readonly arg?: string;
  readonly help: string;
}

export type Values = Readonly<Record<string, string | boolean | undefined>>;

export interface CommandSpec {
  /** The words that select it, e.g. "purge url". */
  readonly name: string;
  /** What follows the name and options in the usage line, e.g. "URL..." (empty: no positionals). */
  readonly args: string;
  readonly summary: string;
  /** More lines for its --help (defaults, exit codes). */
  readonly details?: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** The exit code (-1: a server that keeps running). */
  readonly run: (values: Values, positionals: string[]) => Promise<number>;
}

const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

/** Parses `args` for `spec`; undefined when --help was asked for (the caller prints commandHelp). */
export function parseCommand(spec: CommandSpec, args: readonly string[]): { values: Values; positionals: string[] } | undefined {
  const options: NonNullable<ParseArgsConfig['options']> = { ...HELP_OPTION };
  for (const [name, o] of Object.entries(spec.options)) options[name] = { type: o.type };
  const { values, positionals } = parseArgs({ args: [...args], options, allowPositionals: spec.args !== '', strict: true });
  if (values.help) return undefined;
  return { values: values as Values, positionals };
}

/** `edgepurge NAME --help`: usage, what it does, and every option. */
export function commandHelp(spec: CommandSpec): string {
  const flags = Object.entries(spec.options).map(([name, o]) => [`--${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`, o.help] as [string, string]);
  flags.push(['-h, --help', 'show this help']);
  const width = Math.max(...flags.map(([f]) => f.length));
  const lines = [`usage: edgepurge ${spec.name}${Object.keys(spec.options).length ? ' [options]' : ''}${spec.args ? ` ${spec.args}` : ''}`, '', spec.summary];
  if (spec.details) lines.push('', spec.details);
  lines.push('', 'options:', ...flags.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`));
  return `${lines.join('\n')}\n`;
}

/** Finds the command `argv` names: the longest matching name wins ("agent vcl" over "agent"). */
export function findCommand(table: readonly CommandSpec[], argv: readonly string[]): { spec: CommandSpec; rest: string[] } | undefined {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(' ');
    const spec = table.find((c) => c.name === name);
    if (spec && argv.length >= words) return { spec, rest: argv.slice(words) };
  }
  return undefined;
}

/** "30s", "5m", "24h", "7d" → milliseconds. */
export function parseDuration(s: string, option: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(s);
  if (!m) throw new UsageError(`${option} takes a duration like 30s, 10m, 24h or 7d (got "${s}")`);
  return Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
}
