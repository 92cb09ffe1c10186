/**
 * The app's logging interface, and the local cloud's logger: one JSON line per event to the terminal.
 * The Lambda functions log through Powertools Logger instead (functions/lambda.ts), which adds the
 * request id and the cold-start flag to every line.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

function describe(value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack, cause: describe(value.cause) };
  }
  return value;
}

export function jsonLogger(service: string, quiet = false): Logger {
  const write = (level: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (quiet && level !== 'error') return;
    const entry: Record<string, unknown> = { level, time: new Date().toISOString(), service, message };
    for (const [k, v] of Object.entries(fields ?? {})) entry[k] = describe(v);
    (level === 'error' ? process.stderr : process.stdout).write(`${JSON.stringify(entry)}\n`);
  };
  return {
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}
