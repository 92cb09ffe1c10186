/** Every command of `updraft`, by the words that name it, in the order the help lists them. */
import type { Command } from '../command.ts';
import { consoleCommand } from './console.ts';
import { remove } from './delete.ts';
import { deviceShow } from './device.ts';
import { devices } from './devices.ts';
import { disable } from './disable.ts';
import { edit } from './edit.ts';
import { enable } from './enable.ts';
import { keysGenerate } from './keys.ts';
import { list } from './list.ts';
import { policyCheck } from './policy.ts';
import { publish } from './publish.ts';
import { rolloutAdvance, rolloutPause, rolloutResume, rolloutRetryFailed } from './rollout.ts';
import { show } from './show.ts';
import { stats } from './stats.ts';
import { tokenCreate, tokenList, tokenRevoke } from './token.ts';

export const commands: Readonly<Record<string, Command>> = {
  publish,
  list,
  show,
  enable,
  disable,
  delete: remove,
  edit,
  'policy check': policyCheck,
  'token create': tokenCreate,
  'token list': tokenList,
  'token revoke': tokenRevoke,
  'rollout pause': rolloutPause,
  'rollout resume': rolloutResume,
  'rollout advance': rolloutAdvance,
  'rollout retry-failed': rolloutRetryFailed,
  stats,
  devices,
  'device show': deviceShow,
  'keys generate': keysGenerate,
  console: consoleCommand,
};

/** First words that take a subcommand. */
export const GROUPS: ReadonlySet<string> = new Set(['policy', 'token', 'keys', 'device', 'rollout']);
