/** Agent logging: library users pass any Logger; the CLI writes lines to stderr, or a progress bar on a TTY. */

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

export interface StreamLoggerOptions {
  readonly verbose: boolean;
  /** A terminal gets short lines and a live progress bar; anything else gets timestamped lines. */
  readonly tty: boolean;
  readonly write: (text: string) => void;
  readonly now?: () => Date;
}

/** Logger for the CLI; `progress` redraws one line on a TTY and logs every 10% otherwise. */
export class StreamLogger implements Logger {
  private barShown = false;
  private lastDecile = -1;

  constructor(private readonly options: StreamLoggerOptions) {}

  debug(message: string): void {
    if (this.options.verbose) this.line('debug', message);
  }
  info(message: string): void {
    this.line('info', message);
  }
  warn(message: string): void {
    this.line('warn', message);
  }
  error(message: string): void {
    this.line('error', message);
  }

  progress(received: number, size: number): void {
    const fraction = size > 0 ? received / size : 1;
    if (this.options.tty) {
      const width = 30;
      const filled = Math.round(fraction * width);
      const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
      this.options.write(
        `\r[${bar}] ${(fraction * 100).toFixed(0).padStart(3)}% ${mib(received)}/${mib(size)} MiB`,
      );
      this.barShown = true;
      return;
    }
    const decile = Math.floor(fraction * 10);
    if (decile !== this.lastDecile) {
      this.lastDecile = decile;
      this.line('info', `Downloaded ${mib(received)} of ${mib(size)} MiB (${decile * 10}%)`);
    }
  }

  private line(level: string, message: string): void {
    const { tty, write } = this.options;
    if (this.barShown) {
      write('\n');
      this.barShown = false;
    }
    if (tty) {
      write(`${level === 'info' ? '' : `${level}: `}${message}\n`);
    } else {
      const at = (this.options.now?.() ?? new Date()).toISOString();
      write(`${at} ${level} ${message}\n`);
    }
  }
}

function mib(bytes: number): string {
  return (bytes / (1 << 20)).toFixed(1);
}
