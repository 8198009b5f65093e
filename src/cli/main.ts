// The `edgepurge` command: noun-first subcommands (STYLE 18), each with its own --help from one table
// (src/cli/args.ts). Exit codes: 0 ok, 1 refused by the API (or, with --wait, a task failed), 2 usage
// error, 3 system failure (unreachable server, bad config, a port in use), 4 --wait gave up.
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config/load.ts';
import { commandHelp, findCommand, parseCommand, UsageError, type CommandSpec } from './args.ts';
import { RemoteError } from './client.ts';
import { CLIENT_COMMANDS } from './client-commands.ts';
import { reexecWithNodeFlags } from './node-flags.ts';
import { SERVER_COMMANDS } from './server-commands.ts';
import { STORE_COMMANDS } from './store-commands.ts';

/** Every command, in the order the overview lists them. */
export const COMMANDS: readonly CommandSpec[] = [...SERVER_COMMANDS, ...STORE_COMMANDS, ...CLIENT_COMMANDS];
const SERVER_NAMES = new Set(SERVER_COMMANDS.map((c) => c.name));

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function overview(): string {
  const line = (c: CommandSpec) => `edgepurge ${c.name}${c.args ? ` ${c.args}` : ''}`;
  const width = Math.max(...COMMANDS.map((c) => line(c).length));
  const list = (cs: readonly CommandSpec[]) => cs.map((c) => `  ${line(c).padEnd(width)}  ${c.summary}`);
  return [
    "edgepurge — self-hosted CDN cache purge, speaking Tencent Cloud's CDN and EdgeOne APIs",
    '',
    'Server:',
    ...list(SERVER_COMMANDS),
    '',
    'Store (stop the control plane first):',
    ...list(STORE_COMMANDS),
    '',
    'Client (signed API 3.0 calls to --endpoint, default http://127.0.0.1:8080):',
    ...list(CLIENT_COMMANDS),
    '',
    'Run "edgepurge COMMAND --help" for its options; "edgepurge --version" for the version.',
    'Exit codes: 0 ok, 1 refused by the API or a task failed, 2 usage error, 3 system error, 4 --wait gave up.',
  ].join('\n');
}

/** Commands under a group word ("purge" → url, prefix, …). */
const groupOf = (word: string | undefined) => COMMANDS.filter((c) => word !== undefined && c.name.startsWith(`${word} `)).map((c) => c.name.slice(word!.length + 1));

const isParseError = (e: unknown): e is TypeError => e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS');

async function dispatch(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    process.stdout.write(`${overview()}\n`);
    return 2;
  }
  if (first === 'help' || first === '--help' || first === '-h') {
    const found = findCommand(COMMANDS, rest);
    process.stdout.write(found && found.rest.length === 0 ? commandHelp(found.spec) : `${overview()}\n`);
    return 0;
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    process.stdout.write(`edgepurge ${version()} (Node ${process.version})\n`);
    return 0;
  }
  const found = findCommand(COMMANDS, argv);
  if (!found) {
    const subs = groupOf(first);
    if (subs.length === 0) throw new UsageError(`unknown command "${first}"`);
    if (rest[0] === '--help' || rest[0] === '-h') {
      process.stdout.write(`${COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map(commandHelp).join('\n')}`);
      return 0;
    }
    throw new UsageError(`${first} takes ${subs.length === 2 ? subs.join(' or ') : `one of: ${subs.join(', ')}`}`);
  }
  let parsed;
  try {
    parsed = parseCommand(found.spec, found.rest);
  } catch (e) {
    if (isParseError(e)) throw new UsageError(`${e.message}\nrun "edgepurge ${found.spec.name} --help" for its options`);
    throw e;
  }
  if (!parsed) {
    process.stdout.write(commandHelp(found.spec));
    return 0;
  }
  return found.spec.run(parsed.values, parsed.positionals);
}

/** Why a network call failed, from fetch's TypeError("fetch failed", { cause }). */
const causeOf = (e: Error) => (e.cause instanceof Error ? `: ${(e.cause as NodeJS.ErrnoException).code ?? e.cause.message}` : '');

export async function main(argv: string[]): Promise<number> {
  // `edgepurge tasks list | head` closes the pipe early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const starting = SERVER_NAMES.has(argv[0] ?? '');
  try {
    return await dispatch(argv);
  } catch (e) {
    if (e instanceof RemoteError) {
      process.stderr.write(`error ${e.code}: ${e.message}\n  (RequestId ${e.requestId})\n`);
      return 1;
    }
    if (e instanceof UsageError || isParseError(e)) {
      process.stderr.write(`usage error: ${e.message}\nrun "edgepurge help" for the commands\n`);
      return 2;
    }
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\nfix the file and start again\n`);
      return 3;
    }
    const message = e instanceof Error ? e.message : String(e);
    if (starting) {
      // A process that could not start: the cause and what to change, not a hint about reaching a server.
      const code = (e as NodeJS.ErrnoException).code;
      const fix =
        code === 'EADDRINUSE' ? 'another process listens on that address: stop it, or change server.listen (or the node\'s listen) in the config'
        : code === 'EACCES' ? 'this user may not listen there (ports below 1024 need privileges): pick another address in the config'
        : 'fix the configuration or the environment and start again';
      process.stderr.write(`error: could not start: ${message}\n  ${fix}\n`);
      return 3;
    }
    if (e instanceof TypeError && message === 'fetch failed') {
      process.stderr.write(`error: cannot reach the control plane${causeOf(e)}\n  is the control plane running and reachable? (--endpoint or EDGEPURGE_ENDPOINT)\n`);
      return 3;
    }
    process.stderr.write(`error: ${message}${e instanceof Error ? causeOf(e) : ''}\n`);
    return 3;
  }
}

if (import.meta.main) {
  reexecWithNodeFlags(import.meta.filename, process.argv.slice(2));
  const code = await main(process.argv.slice(2));
  if (code >= 0) process.exitCode = code;
}
