/**
 * Process identity on Linux, for the lock file and the update script's process group: a PID alone
 * is reused after a reboot (and, rarely, within one boot), so it is stored with the boot id and the
 * process start time. Both are read from /proc when present; elsewhere they are undefined and the
 * checks fall back to "is a process with this PID alive".
 */
import { readdirSync, readFileSync, writeSync } from 'node:fs';

/** Identifies one process across reboots and PID reuse. */
export interface ProcessIdentity {
  readonly pid: number;
  /** /proc/sys/kernel/random/boot_id of the boot the process ran in. */
  readonly boot?: string;
  /** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. */
  readonly start?: string;
}

/** The current boot's id, or undefined without /proc. */
export function bootId(): string | undefined {
  try {
    const id = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    return id === '' ? undefined : id;
  } catch {
    return undefined;
  }
}

/** Start time of `pid` (clock ticks since boot), or undefined when unknown or the process is gone. */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field 22 is fields[19].
  const start = fields[19];
  return start && /^\d+$/.test(start) ? start : undefined;
}

/** Whether `pid` is running (zombies, which only wait to be reaped, are not). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch (err) {
    // No /proc: kill(0) answered already. With /proc, a missing entry means it just ended.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT' || !hasProc();
  }
}

/**
 * Whether any running process of group `pgid` is left. Zombies do not count: killed members linger as
 * zombies until their new parent reaps them, which some init processes do only every second or so.
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return true;
  }
  const group = String(pgid);
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    // After the command name: field 3 (state), 4 (ppid), 5 (process group).
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 3);
    if (pgrp === group && state !== 'Z') return true;
  }
  return false;
}

export function identify(pid: number): ProcessIdentity {
  const boot = bootId();
  const start = processStartTime(pid);
  return { pid, ...(boot ? { boot } : {}), ...(start ? { start } : {}) };
}

/**
 * Whether `who` is still the process it was when identified: same boot, and the same start time
 * when the process is alive. A different boot or start time means the PID now names another process.
 */
export function isSameProcess(who: ProcessIdentity): boolean {
  const boot = bootId();
  if (who.boot && boot && who.boot !== boot) return false;
  if (!isAlive(who.pid)) return false;
  if (who.start) {
    const start = processStartTime(who.pid);
    if (start && start !== who.start) return false;
  }
  return true;
}

/** `writeSync` may write fewer bytes than asked (a full disk, a signal): loop until all are out. */
export function writeAllSync(fd: number, data: string | Buffer): void {
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  for (let done = 0; done < buf.length; ) {
    const n = writeSync(fd, buf, done, buf.length - done);
    if (n <= 0) throw new Error(`write returned ${n}`);
    done += n;
  }
}

let procChecked: boolean | undefined;
function hasProc(): boolean {
  if (procChecked === undefined) {
    try {
      readFileSync('/proc/self/stat');
      procChecked = true;
    } catch {
      procChecked = false;
    }
  }
  return procChecked;
}
