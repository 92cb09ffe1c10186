/**
 * Parsing a command's arguments with node:util parseArgs, plus one rule parseArgs lacks: an
 * argument that starts with `-` but is no option (`'-1 == -1'`, `-x > 2`) is a value. It is the
 * command's positional (a policy EXPR) or, after an option that takes a value, that value.
 * Only words shaped like options (`--name`, `--name=v`, `-h`) are taken for options.
 */
import { parseArgs } from 'node:util';
import type { Options, Values } from './command.ts';
import { UsageError } from './errors.ts';

export interface ParsedArgs {
  readonly values: Values;
  readonly positionals: string[];
}

const OPTION_SHAPE = /^(--[A-Za-z][A-Za-z0-9-]*(=[\s\S]*)?|-[A-Za-z]+|--)$/;

/** A word that starts with `-` yet is no option: a value such as `-1` or `-x > 2`. */
function isDashValue(arg: string): boolean {
  return arg.startsWith('-') && !OPTION_SHAPE.test(arg);
}

/** The option `arg` names, if any, and whether the next word is its value. */
function optionOf(arg: string, options: Options): { takesValue: boolean } | undefined {
  const entry = arg.startsWith('--')
    ? Object.entries(options).find(([name]) => name === arg.slice(2).split('=')[0])
    : Object.entries(options).find(([, o]) => o.short !== undefined && arg === `-${o.short}`);
  if (!entry) return undefined;
  return { takesValue: entry[1].type === 'string' && !arg.includes('=') };
}

/**
 * Rewrites `args` so that parseArgs takes dash-led values as values: `--opt -1` becomes `--opt=-1`,
 * and with positionals allowed, every positional moves behind a `--`, in its order. Arguments
 * without such a value are returned as they are.
 */
export function markDashValues(
  args: readonly string[],
  options: Options,
  allowPositionals: boolean,
): string[] {
  const flags: string[] = [];
  const positionals: string[] = [];
  let rewritten = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    const option = optionOf(arg, options);
    const value = args[i + 1];
    if (option?.takesValue && value !== undefined) {
      i++;
      rewritten ||= isDashValue(value);
      flags.push(...(isDashValue(value) ? [`${arg}=${value}`] : [arg, value]));
    } else if (option || !allowPositionals || (arg.startsWith('-') && !isDashValue(arg))) {
      flags.push(arg);
    } else {
      rewritten ||= isDashValue(arg);
      positionals.push(arg);
    }
  }
  return rewritten ? [...flags, '--', ...positionals] : [...args];
}

function firstSentence(message: string): string {
  const at = message.indexOf('. ');
  return at < 0 ? message : message.slice(0, at);
}

/** Parses `args` strictly; a failure is a UsageError pointing at the command's help. */
export function parseCommandArgs(
  command: string,
  args: readonly string[],
  options: Options,
  allowPositionals: boolean,
): ParsedArgs {
  try {
    return parseArgs({
      args: markDashValues(args, options, allowPositionals),
      options,
      allowPositionals,
      strict: true,
    }) as ParsedArgs;
  } catch (err) {
    throw new UsageError(`${firstSentence((err as Error).message)}: see updraft ${command} --help`);
  }
}
