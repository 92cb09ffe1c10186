/**
 * `updraft-agent [--config F] [--device F] [--state DIR] [--once] [--verbose]`
 *
 * Exit codes: 0 updated or nothing to do (and a clean stop of the daemon), 1 the cycle failed
 * (checkin, download, verification, apply or report) or a --once run was stopped by SIGINT/SIGTERM,
 * 2 bad usage, invalid configuration or an unusable --state directory,
 * 3 the update script printed `exit`: restart the agent (systemd `Restart=always`) to confirm the update.
 */
import { parseArgs } from 'node:util';
import { Agent, type CycleResult } from './agent.ts';
import { DEFAULT_CONFIG_FILES, loadAgentConfig } from './config.ts';
import { ConfigError, errorLine, StateDirError } from './errors.ts';
import { type Logger, StreamLogger } from './log.ts';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_RESTART_REQUESTED = 3;

const USAGE = `Usage: updraft-agent [--config FILE] [--device FILE] [--state DIR] [--once] [--verbose]

  --config FILE   agent configuration (default ${DEFAULT_CONFIG_FILES.ioto})
  --device FILE   device properties sent with each checkin (default ${DEFAULT_CONFIG_FILES.device})
  --state DIR     state and downloads (default state)
  --once          run one checkin cycle and exit: 0 updated or nothing to do, 1 failed,
                  3 the update needs the agent restarted to be confirmed
  --verbose       debug logging
`;

/** Exit code of a --once run. */
export function exitCodeOf(result: CycleResult): number {
  if (result.outcome === 'exit') return EXIT_RESTART_REQUESTED;
  if (result.outcome === 'failed' || result.outcome === 'rejected' || result.outcome === 'error')
    return EXIT_FAILED;
  if (result.error || result.reports.some((r) => !r.success)) return EXIT_FAILED;
  return EXIT_OK;
}

interface CliOptions {
  config?: string;
  device?: string;
  state?: string;
  once?: boolean;
  verbose?: boolean;
  help?: boolean;
}

export async function main(argv: readonly string[]): Promise<number> {
  const values = parseOptions(argv);
  if (typeof values === 'number') return values;
  if (values.help) {
    process.stdout.write(USAGE);
    return EXIT_OK;
  }
  const tty = process.stderr.isTTY === true;
  const log = new StreamLogger({
    verbose: values.verbose === true,
    tty,
    write: (text) => process.stderr.write(text),
  });
  const stateDir = values.state ?? 'state';
  const agent = openAgent(values, stateDir, log);
  if (typeof agent === 'number') return agent;
  agent.on('progress', (p) => log.progress(p.received, p.size));
  return values.once ? runOnce(agent, stateDir, log) : runDaemon(agent, stateDir, log);
}

/** The parsed flags, or the exit code of bad usage (the one line already printed). */
function parseOptions(argv: readonly string[]): CliOptions | number {
  try {
    return parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string' },
        device: { type: 'string' },
        state: { type: 'string' },
        once: { type: 'boolean' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    process.stderr.write(`updraft-agent: ${errorLine(err)} (see --help)\n`);
    return EXIT_USAGE;
  }
}

/** A state directory that cannot be used is a usage error: one line naming --state, exit 2. */
function stateProblem(err: unknown, stateDir: string): number | undefined {
  if (!(err instanceof StateDirError)) return undefined;
  process.stderr.write(`updraft-agent: --state ${stateDir}: ${err.problem}\n`);
  return EXIT_USAGE;
}

/** The agent of the configuration files, or the exit code when there is nothing to run. */
function openAgent(values: CliOptions, stateDir: string, log: Logger): Agent | number {
  try {
    const config = loadAgentConfig({
      ioto: values.config ?? DEFAULT_CONFIG_FILES.ioto,
      device: values.device ?? DEFAULT_CONFIG_FILES.device,
    });
    if (!config.enabled) {
      log.info('Updates are disabled (services.update or update.enable is false)');
      return EXIT_OK;
    }
    return new Agent({ config, stateDir, log });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`updraft-agent: ${err.message}\n`);
      return EXIT_USAGE;
    }
    const code = stateProblem(err, stateDir);
    if (code !== undefined) return code;
    throw err;
  }
}

/**
 * `--once`. As in daemon mode, a stop ends the update script's process group and leaves the state on
 * disk saying what was interrupted, rather than orphaning the script.
 */
async function runOnce(agent: Agent, stateDir: string, log: Logger): Promise<number> {
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    log.info('Stopping');
    agent.stop().catch((err: unknown) => log.error(errorLine(err)));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return exitCodeOf(await agent.checkin());
  } catch (err) {
    const code = stateProblem(err, stateDir);
    if (code !== undefined) return code;
    log.error(errorLine(err));
    return EXIT_FAILED;
  } finally {
    await agent.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The daemon: checks in on the schedule until SIGINT/SIGTERM, or until the update script asks to exit. */
function runDaemon(agent: Agent, stateDir: string, log: Logger): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (code: number) => {
      if (stopping) return;
      stopping = true;
      log.info('Stopping');
      agent.stop().then(
        () => resolve(code),
        (err: unknown) => {
          log.error(errorLine(err));
          resolve(EXIT_FAILED);
        },
      );
    };
    process.once('SIGINT', () => shutdown(EXIT_OK));
    process.once('SIGTERM', () => shutdown(EXIT_OK));
    agent.once('exit', () => shutdown(EXIT_RESTART_REQUESTED));
    try {
      agent.start();
      log.info(
        `Agent started for device ${agent.deviceId}; next checkin ${new Date(agent.nextCheckinAt).toISOString()}`,
      );
    } catch (err) {
      stopping = true;
      const code = stateProblem(err, stateDir);
      if (code === undefined) log.error(errorLine(err));
      resolve(code ?? EXIT_FAILED);
    }
  });
}
