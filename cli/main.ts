/**
 * The builder CLI `updraft` (DESIGN §6): finds the command (cli/commands/, one file each), parses
 * its flags (cli/args.ts) and runs it; the commands call the admin module (admin/index.ts) and
 * format what it answers. The AWS SDK loads only for commands that talk to a cloud (cli/cloud.ts),
 * so `policy check` and `keys generate` start fast.
 * Every failure ends as one line `updraft: …` on stderr (plus detail lines such as a policy excerpt)
 * and exit code 1.
 */
// First: silences the SDK's Node 20 warning before any SDK client exists (see the module).
import '#scripts/sdk-env.ts';
import { pathToFileURL } from 'node:url';
import { parseCommandArgs } from './args.ts';
import type { CloudSources, CloudTarget } from './cloud.ts';
import { COMMON_HELP, COMMON_OPTIONS, type Command, type Context, str, type Values } from './command.ts';
import { commands, GROUPS } from './commands/index.ts';
import { errorLine, UsageError } from './errors.ts';

/** Where output goes; tests pass their own. */
export type Output = (text: string) => void;

const stdout: Output = (text) => {
  process.stdout.write(text);
};

function mainUsage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const list = Object.entries(commands)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
    .join('\n');
  return `Usage: updraft COMMAND [options]   (updraft COMMAND --help for its options)
Publish and manage updates of the Updraft device cloud.

Commands:
${list}

${COMMON_HELP}`;
}

function subcommandsOf(group: string): [string, Command][] {
  return Object.entries(commands).filter(([name]) => name.startsWith(`${group} `));
}

/** The help `argv` asks for, or undefined when it names a command to run. */
function helpFor(argv: readonly string[]): { text: string; code: number } | undefined {
  const [first, second] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const topic = first === 'help' ? argv.slice(1).join(' ') : '';
    const cmd = topic ? commands[topic] : undefined;
    if (topic && !cmd) throw new UsageError(`Unknown command "${topic}": see updraft --help`);
    return { text: cmd ? `${cmd.usage}\n\n${COMMON_HELP}` : mainUsage(), code: first === undefined ? 1 : 0 };
  }
  if (GROUPS.has(first) && (second === '--help' || second === '-h')) {
    return {
      text: subcommandsOf(first)
        .map(([, c]) => c.usage.split('\n')[0])
        .join('\n'),
      code: 0,
    };
  }
  return undefined;
}

/** The command `argv` names and the arguments that follow its name. */
function commandOf(argv: readonly string[]): { name: string; command: Command; rest: readonly string[] } {
  const [first = '', second] = argv;
  let name = first;
  if (GROUPS.has(first)) {
    if (second === undefined || second.startsWith('-')) {
      const subs = subcommandsOf(first).map(([n]) => n.slice(first.length + 1));
      throw new UsageError(`Missing subcommand: updraft ${first} ${subs.join('|')}`);
    }
    name = `${first} ${second}`;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) throw new UsageError(`Unknown command "${name}": see updraft --help`);
  return { name, command, rest: argv.slice(name.split(' ').length) };
}

function contextFor(name: string, values: Values, positionals: string[], print: (text?: string) => void) {
  const cloudName = str(values, 'cloud') ?? 'local';
  if (cloudName === 'all' && name !== 'publish' && name !== 'console') {
    throw new UsageError('--cloud all works with publish and console only: name one cloud');
  }
  const sources: CloudSources = {
    dataDir: str(values, 'data') ?? process.env.UPDRAFT_DATA ?? '.data',
    outputsFile: str(values, 'outputs') ?? process.env.UPDRAFT_OUTPUTS ?? 'cdk-outputs.json',
  };
  let target: CloudTarget | undefined;
  const ctx: Context = {
    command: name,
    values,
    positionals,
    json: values.json === true,
    sources,
    cloudName,
    print,
    printJson: (value) => print(JSON.stringify(value, null, 2)),
    async cloud() {
      if (!target) {
        const { openCloud } = await import('./cloud.ts');
        target = openCloud(cloudName, sources);
      }
      return target;
    },
  };
  return { ctx, close: () => target?.close() };
}

/** Runs the CLI on `argv` (without node and script); returns the exit code. */
export async function main(argv: readonly string[], out: Output = stdout): Promise<number> {
  const print = (text = '') => out(`${text}\n`);
  const help = helpFor(argv);
  if (help) {
    print(help.text);
    return help.code;
  }
  const { name, command, rest } = commandOf(argv);
  const allowed = command.positionals?.length ?? 0;
  const { values, positionals } = parseCommandArgs(
    name,
    rest,
    { ...COMMON_OPTIONS, ...command.options },
    allowed > 0,
  );
  if (values.help) {
    print(`${command.usage}\n\n${COMMON_HELP}`);
    return 0;
  }
  if (positionals.length > allowed) {
    throw new UsageError(
      `Unexpected argument "${positionals[allowed]}": see updraft ${name} --help (quote values with spaces)`,
    );
  }
  const { ctx, close } = contextFor(name, values, positionals, print);
  try {
    return await command.run(ctx);
  } finally {
    close();
  }
}

/** Prints an error as `updraft: <one line>` (plus detail lines) on stderr. */
export function reportError(err: unknown): void {
  const { message, detail } = errorLine(err);
  process.stderr.write(`updraft: ${message}\n${detail ? `${detail}\n` : ''}`);
  if (process.env.UPDRAFT_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
}

/** The `updraft` process: runs `main`, prints any error, exits with its code. */
export async function runCli(argv: readonly string[]): Promise<never> {
  let code: number;
  try {
    code = await main(argv);
  } catch (err) {
    reportError(err);
    code = 1;
  }
  // Flush stdout, then exit: an idle keep-alive socket of the SDK must not hold the process.
  return new Promise<never>(() => process.stdout.write('', () => process.exit(code)));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runCli(process.argv.slice(2));
}
