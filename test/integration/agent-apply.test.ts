/**
 * The update script as real processes: its process group is killed whole on timeout and on stop,
 * and a group left by an earlier agent process is recognised, or not, by PID, boot and start time.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runUpdateScript, runVersionCommand, scriptStillRunning } from '#agent/apply.ts';
import { ApplyError } from '#agent/errors.ts';
import { identify } from '#agent/proc.ts';
import { processAlive, until, writeScript } from './agent-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'agent-apply-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A script that starts a child ignoring SIGTERM, records its PID, then waits on a sleep of its own. */
function stubbornScript(name: string): { script: string; childPid: () => number } {
  const pidFile = join(dir, `${name}.child`);
  const script = writeScript(
    dir,
    `${name}.sh`,
    // `trap '' TERM` is inherited through exec: the sleep ignores SIGTERM and only SIGKILL ends it.
    `(trap '' TERM; exec sleep 47.5) &
echo $! > ${pidFile}
sleep 30`,
  );
  return { script, childPid: () => Number(readFileSync(pidFile, 'utf8')) };
}

describe('runUpdateScript', () => {
  it('on timeout, SIGKILLs the group before settling, even when the script itself exits on SIGTERM', async () => {
    const { script, childPid } = stubbornScript('timeout');
    const started = Date.now();
    const run = runUpdateScript({ script, args: [], env: {}, timeoutMs: 300 });
    await expect(run).rejects.toThrow('Update script timed out after 0.3 s and was killed');
    // The script died at SIGTERM; its child did not, and settling waited for the grace period and SIGKILL.
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
    await until(() => !processAlive(childPid()), 2000, 'the SIGTERM-proof child to be killed');
  });

  it('settles at once when SIGTERM ends the whole group', async () => {
    const script = writeScript(dir, 'polite.sh', 'sleep 30');
    const started = Date.now();
    await expect(runUpdateScript({ script, args: [], env: {}, timeoutMs: 300 })).rejects.toThrow(/timed out/);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('an abort (the agent stopping) ends the group the same way and says so', async () => {
    const { script, childPid } = stubbornScript('abort');
    const abort = new AbortController();
    let pid = 0;
    const run = runUpdateScript({
      script,
      args: [],
      env: {},
      timeoutMs: 60_000,
      signal: abort.signal,
      onSpawn: (p) => {
        pid = p;
      },
    });
    await until(() => {
      try {
        return childPid() > 0;
      } catch {
        return false;
      }
    });
    abort.abort();
    await expect(run).rejects.toThrow(new ApplyError('Update script stopped: the agent is stopping'));
    expect(processAlive(pid)).toBe(false);
    await until(() => !processAlive(childPid()), 2000, 'the child to be killed');
  });

  it('starts the script only once onSpawn has returned (a slow state write cannot be overtaken)', async () => {
    const marker = join(dir, 'gate-started');
    const script = writeScript(dir, 'gate.sh', `echo "$$ $1" > ${marker}`);
    let seenDuringRecord: boolean | undefined;
    let recorded = 0;
    await runUpdateScript({
      script,
      args: ['/abs/image.bin'],
      env: {},
      timeoutMs: 10_000,
      onSpawn: (pid) => {
        recorded = pid;
        // A state write stuck for 300 ms on a slow disk: the script must not run meanwhile.
        const deadline = Date.now() + 300;
        while (Date.now() < deadline) {}
        seenDuringRecord = existsSync(marker);
      },
    });
    expect(seenDuringRecord).toBe(false);
    // The script ran afterwards, as the recorded PID (the gate execs it) and with its argument.
    expect(readFileSync(marker, 'utf8')).toBe(`${recorded} /abs/image.bin\n`);
  });

  it('never runs the script when recording its PID fails, and says why', async () => {
    const marker = join(dir, 'unrecorded-ran');
    const script = writeScript(dir, 'unrecorded.sh', `touch ${marker}`);
    let pid = 0;
    const run = runUpdateScript({
      script,
      args: [],
      env: {},
      timeoutMs: 10_000,
      onSpawn: (p) => {
        pid = p;
        // Time enough for an ungated script to run.
        const deadline = Date.now() + 300;
        while (Date.now() < deadline) {}
        throw new Error('state directory: EIO');
      },
    });
    await expect(run).rejects.toThrow('state directory: EIO');
    await until(() => !processAlive(pid), 2000, 'the gate to end');
    expect(existsSync(marker)).toBe(false);
  });

  it('names a script that vanished since the config was read', async () => {
    const run = runUpdateScript({
      script: join(dir, 'gone.sh'),
      args: [],
      env: {},
      timeoutMs: 1000,
      onSpawn: () => {},
    });
    await expect(run).rejects.toThrow(`Cannot run update script ${join(dir, 'gone.sh')}: ENOENT`);
  });

  it('does not start the script once the agent is stopping', async () => {
    const script = writeScript(dir, 'never.sh', `touch ${join(dir, 'ran')}`);
    const abort = new AbortController();
    abort.abort();
    await expect(
      runUpdateScript({ script, args: [], env: {}, timeoutMs: 1000, signal: abort.signal }),
    ).rejects.toThrow(/not started/);
  });
});

describe('script output', () => {
  it('takes the last line without its newline: scripts.version may print a VERSION file as it is', async () => {
    await expect(runVersionCommand('printf 1.2.3', 5000)).resolves.toBe('1.2.3');
    await expect(runVersionCommand('echo 1.2.4; echo', 5000)).resolves.toBe('1.2.4');
  });

  it('reads lines and a final `exit` without newline from the output files, while and after the script runs', async () => {
    const output = { stdout: join(dir, 'out.log'), stderr: join(dir, 'err.log') };
    const script = writeScript(
      dir,
      'files.sh',
      'echo first; echo oops >&2; sleep 0.5; echo second; printf exit',
    );
    const seen: string[] = [];
    const action = await runUpdateScript({
      script,
      args: [],
      env: {},
      timeoutMs: 10_000,
      onSpawn: () => {},
      onLine: (line, stream) => seen.push(`${stream}:${line}`),
      output,
    });
    expect(action).toBe('exit');
    expect(seen).toEqual(['stdout:first', 'stderr:oops', 'stdout:second', 'stdout:exit']);
    expect(readFileSync(output.stdout, 'utf8')).toBe('first\nsecond\nexit');
  });

  it('keeps a script that prints without pause in check: its timeout still fires', async () => {
    const output = { stdout: join(dir, 'chatty.out'), stderr: join(dir, 'chatty.err') };
    const script = writeScript(dir, 'chatty.sh', 'exec yes');
    const run = runUpdateScript({ script, args: [], env: {}, timeoutMs: 1000, onSpawn: () => {}, output });
    // Reading the file to its end on every poll never caught up with `yes`: the timer never ran.
    await expect(run).rejects.toThrow('Update script timed out after 1 s and was killed');
  });

  it('skips output it falls behind on without taking fragments for lines', async () => {
    const output = { stdout: join(dir, 'burst.out'), stderr: join(dir, 'burst.err') };
    // One 8 MiB line (the reader skips most of it), then a real one.
    const script = writeScript(dir, 'burst.sh', `head -c ${8 << 20} /dev/zero | tr '\\0' x; echo; echo last`);
    const lines: string[] = [];
    await runUpdateScript({
      script,
      args: [],
      env: {},
      timeoutMs: 10_000,
      onSpawn: () => {},
      onLine: (line) => lines.push(line),
      output,
    });
    expect(lines.at(-1)).toBe('last');
    expect(lines.some((line) => /^\[\d+ bytes of output skipped\]$/.test(line))).toBe(true);
    // Without resynchronising, the tail of the cut line came out as a line of its own.
    expect(lines.filter((line) => /^x+$/.test(line))).toEqual([]);
  });

  it('gives each run new output files: a background child of an earlier run cannot write into them', async () => {
    const output = { stdout: join(dir, 'runs.out'), stderr: join(dir, 'runs.err') };
    const go = join(dir, 'runs.go');
    const wrote = join(dir, 'runs.wrote');
    // The first run's background child prints `exit` only once the second run is under way.
    const wait = (file: string) =>
      `i=0; while [ ! -e ${file} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done`;
    const first = writeScript(dir, 'first.sh', `(${wait(go)}; echo exit; touch ${wrote}) & echo first`);
    await expect(
      runUpdateScript({ script: first, args: [], env: {}, timeoutMs: 10_000, onSpawn: () => {}, output }),
    ).resolves.toBeUndefined();
    const second = writeScript(dir, 'second.sh', `echo second; touch ${go}; ${wait(wrote)}`);
    const lines: string[] = [];
    const action = await runUpdateScript({
      script: second,
      args: [],
      env: {},
      timeoutMs: 20_000,
      onSpawn: () => {},
      onLine: (line) => lines.push(line),
      output,
    });
    expect(existsSync(wrote)).toBe(true);
    expect(action).toBeUndefined();
    expect(lines).toEqual(['second']);
    expect(readFileSync(output.stdout, 'utf8')).toBe('second\n');
  });

  it('names the output file it cannot create', async () => {
    const script = writeScript(dir, 'never-runs.sh', 'exit 0');
    const run = runUpdateScript({
      script,
      args: [],
      env: {},
      timeoutMs: 1000,
      onSpawn: () => {},
      output: { stdout: join(dir, 'no-such-dir', 'out'), stderr: join(dir, 'no-such-dir', 'err') },
    });
    await expect(run).rejects.toThrow(
      `Cannot create the update script's output file ${join(dir, 'no-such-dir', 'out')}: ENOENT`,
    );
  });
});

describe('scriptStillRunning: a group left by an earlier agent process', () => {
  it('is the same group while it runs, and not once it ended', async () => {
    const child = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const who = identify(child.pid!);
    expect(scriptStillRunning(who)).toBe(true);
    // After a reboot, or with the PID taken by a process that started at another time, it is not ours.
    expect(scriptStillRunning({ ...who, boot: '00000000-0000-4000-8000-000000000000' })).toBe(false);
    expect(scriptStillRunning({ ...who, start: '1' })).toBe(false);
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
    expect(scriptStillRunning(who)).toBe(false);
  });
});
