/**
 * The local cloud as `npm start` runs it, in its own process: for tests that kill or restart it and
 * for the load benchmark, which measures its RSS.
 */
import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalCloudFile } from '#local/cloud-file.ts';
import { until } from '#test/support/wait.ts';

/** Starts local/main.ts on `dataDir` with every port chosen by the system and no request log. */
export function spawnLocalCloud(dataDir: string, stdio: StdioOptions): ChildProcess {
  return spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'local/main.ts',
      '--data',
      dataDir,
      '--port',
      '0',
      '--s3-port',
      '0',
      '--console-port',
      '0',
      '--quiet',
    ],
    { stdio },
  );
}

/**
 * The cloud.json `child` wrote in `dataDir` (not one a killed predecessor left); fails with a
 * message if the process exits first or takes over 20 s.
 */
export async function cloudFileOf(dataDir: string, child: ChildProcess): Promise<LocalCloudFile> {
  const path = join(dataDir, 'cloud.json');
  let file: LocalCloudFile | undefined;
  await until(
    () => {
      if (child.exitCode !== null) throw new Error(`local cloud exited ${child.exitCode}`);
      if (existsSync(path)) {
        const written = JSON.parse(readFileSync(path, 'utf8')) as LocalCloudFile;
        if (written.pid === child.pid) file = written;
      }
      return file !== undefined;
    },
    20_000,
    `local cloud pid ${child.pid} to write ${path}`,
  );
  return file!;
}
