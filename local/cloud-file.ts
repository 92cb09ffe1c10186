/** `<data>/cloud.json`: where the running local cloud is, for the CLI; and the data-dir lock. */
import {
  closeSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

export interface LocalCloudFile {
  readonly name: 'local';
  /** Device-facing API base URL. */
  readonly apiUrl: string;
  /** S3 endpoint for the CLI's uploads. */
  readonly s3Endpoint: string;
  /** S3 address written into presigned URLs. */
  readonly s3PublicUrl: string;
  readonly dynamoEndpoint: string;
  readonly region: string;
  readonly tableName: string;
  readonly bucketName: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly pid: number;
  /** Certificate to trust when the local cloud serves HTTPS with its own certificate. */
  readonly caFile?: string;
}

export function writeCloudFile(dataDir: string, file: LocalCloudFile): void {
  const path = join(dataDir, 'cloud.json');
  writeFileSync(`${path}.tmp`, `${JSON.stringify(file, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

export function readCloudFile(dataDir: string): LocalCloudFile {
  const path = join(dataDir, 'cloud.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new Error(`The local cloud is not running (no ${path}): start it with npm start`);
  }
  const file = JSON.parse(text) as LocalCloudFile;
  if (!isAlive(file.pid))
    throw new Error(`The local cloud is not running (pid ${file.pid} is gone): start it with npm start`);
  return file;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<data>/lock` for this process. A second local cloud on the same data dir gets a clear
 * error; a lock left by a killed process is taken over.
 */
export function acquireLock(dataDir: string): () => void {
  const path = join(dataDir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new Error(
          `Another local cloud (pid ${pid}) is using ${dataDir}: stop it first or pass --data DIR`,
        );
      }
      rmSync(path, { force: true });
    }
  }
  throw new Error(`Could not lock ${dataDir}: remove ${path} if no local cloud is running`);
}

/**
 * The local change signal: after changing a product's updates (publish, edit, enable, disable,
 * delete) the CLI touches <data>/changes, and the local cloud reloads its update list on the next
 * checkin instead of after its revalidation period. One stat per checkin, no extra table read.
 */
export function changesFile(dataDir: string): string {
  return join(dataDir, 'changes');
}

export function notifyLocalChange(dataDir: string): void {
  const path = changesFile(dataDir);
  const now = new Date();
  try {
    utimesSync(path, now, now);
  } catch {
    writeFileSync(path, '');
  }
}

/** The signal's current value: the file's mtime in ns precision (0 when absent). */
export function localChangeSignal(dataDir: string): () => number {
  const path = changesFile(dataDir);
  return () => statSync(path, { throwIfNoEntry: false, bigint: false })?.mtimeMs ?? 0;
}
