/**
 * What a command of the CLI is: its help, its flags, and `run`, which parses what the dispatcher
 * (cli/main.ts) hands it, calls one admin operation (admin/index.ts) and formats the result.
 */
import type { ParseArgsConfig } from 'node:util';
import type { PolicyWarning, UpdateRecord, UpdateSelector } from '#admin/index.ts';
import type { CloudSources, CloudTarget } from './cloud.ts';
import { UsageError } from './errors.ts';

export type Values = Record<string, string | boolean | undefined>;
export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Context {
  readonly command: string;
  readonly values: Values;
  readonly positionals: readonly string[];
  readonly json: boolean;
  /** The cloud named by --cloud (default local), opened on first use and closed after the command. */
  cloud(): Promise<CloudTarget>;
  readonly sources: CloudSources;
  readonly cloudName: string;
  /** Writes a line to stdout. */
  print(text?: string): void;
  /** Writes a value as indented JSON to stdout. */
  printJson(value: unknown): void;
}

export interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options?: Options;
  /** Names of the positional arguments; more are refused. */
  readonly positionals?: readonly string[];
  /** Runs the command; resolves to its exit code. */
  run(ctx: Context): Promise<number>;
}

export const COMMON_OPTIONS: Options = {
  cloud: { type: 'string' },
  data: { type: 'string' },
  outputs: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export const COMMON_HELP = `Common options:
  --cloud NAME     device cloud: local (default; the cloud of npm start) or a name from cdk-outputs.json
  --data DIR       data dir of the local cloud (default $UPDRAFT_DATA or .data)
  --outputs FILE   outputs of npx cdk deploy (default $UPDRAFT_OUTPUTS or cdk-outputs.json)
  --json           machine-readable output
  -h, --help       this help`;

/** Flags of the commands that name one update. */
export const SELECTOR_OPTIONS: Options = { product: { type: 'string' }, version: { type: 'string' } };

export function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function required(ctx: Context, name: string, placeholder: string): string {
  const v = str(ctx.values, name);
  if (v === undefined || v === '') {
    throw new UsageError(`Missing --${name} ${placeholder}: see updraft ${ctx.command} --help`);
  }
  return v;
}

/** The update named by --product P --version V. */
export function updateSelector(ctx: Context): UpdateSelector {
  return { product: required(ctx, 'product', 'P'), version: required(ctx, 'version', 'V') };
}

/** Prints `value` as JSON with --json, else `text`; the command's exit code. */
export function answer(ctx: Context, value: unknown, text: string): number {
  if (ctx.json) ctx.printJson(value);
  else ctx.print(text);
  return 0;
}

/**
 * The admin module, loaded when a command runs: help and usage errors answer without it, and each
 * command loads only what it needs before that.
 */
export function loadAdmin(): Promise<typeof import('#admin/index.ts')> {
  return import('#admin/index.ts');
}

/** Warns on stderr (stdout may carry --json) about a policy that compiles but always fails somewhere. */
export function warnAboutPolicy(warnings: readonly PolicyWarning[]): void {
  for (const w of warnings)
    process.stderr.write(`updraft: warning: policy column ${w.column}: ${w.reason}\n`);
}

/** What an update command does to the update it names, and how it says it did. */
export interface UpdateAction {
  readonly summary: string;
  readonly usage: string;
  /** The admin operation it calls. */
  readonly operation: 'showUpdate' | 'enableUpdate' | 'disableUpdate' | 'deleteUpdate';
  done(update: UpdateRecord): string;
  json?(update: UpdateRecord): unknown;
}

/** A command acting on one update named by --product P --version V (show, enable, disable, delete). */
export function updateCommand(action: UpdateAction): Command {
  return {
    summary: action.summary,
    usage: action.usage,
    options: SELECTOR_OPTIONS,
    async run(ctx) {
      const selector = updateSelector(ctx);
      const admin = await loadAdmin();
      const update = await admin[action.operation](await ctx.cloud(), selector);
      return answer(ctx, action.json?.(update) ?? update, action.done(update));
    },
  };
}
