/**
 * `<data>/cloud.json`: where the running local cloud is, for the CLI; the local cloud's credentials;
 * the data-dir lock. The data dir holds the store and its keys, so it is private to its owner.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { identify, isSameProcess, type ProcessIdentity, writeAllSync } from '#agent/proc.ts';
import type { LocalCredentials } from './sigv4-verify.ts';

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

/** Writes `text` to `path` readable by its owner only, atomically. */
function writePrivate(path: string, text: string): void {
  rmSync(`${path}.tmp`, { force: true });
  writeFileSync(`${path}.tmp`, text, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

export function writeCloudFile(dataDir: string, file: LocalCloudFile): void {
  writePrivate(join(dataDir, 'cloud.json'), `${JSON.stringify(file, null, 2)}\n`);
}

/** What the local cloud keeps in its data dir: made private at start (earlier versions left them world-readable). */
const DATA_FILES = ['cloud.json', 'credentials.json', 'dev-token', 'lock', 'changes'];
const DATA_DIRS = ['s3', 'dynamodb'];

/**
 * Creates the data dir, or makes an existing one private: the dir and its store dirs 0700, its
 * files 0600; what lies deeper is unreachable through a 0700 dir. Only our own entries are
 * touched: `--data` may name a dir that holds other things too.
 */
export function secureDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  for (const [names, mode] of [
    [DATA_FILES, 0o600],
    [DATA_DIRS, 0o700],
  ] as const) {
    for (const name of names) {
      try {
        chmodSync(join(dataDir, name), mode);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }
}

/** The local cloud's own S3 and DynamoDB key: `<data>/credentials.json`, generated on first start. */
export function localCredentials(dataDir: string): LocalCredentials {
  const path = join(dataDir, 'credentials.json');
  try {
    const stored = JSON.parse(readFileSync(path, 'utf8')) as Partial<LocalCredentials>;
    if (typeof stored.accessKeyId === 'string' && typeof stored.secretAccessKey === 'string')
      return { accessKeyId: stored.accessKeyId, secretAccessKey: stored.secretAccessKey };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
  }
  const credentials = {
    accessKeyId: `UPDRAFTLOCAL${randomBytes(4).toString('hex').toUpperCase()}`,
    secretAccessKey: randomBytes(30).toString('base64url'),
  };
  writePrivate(path, `${JSON.stringify(credentials, null, 2)}\n`);
  return credentials;
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
 * The lock's holder: `{"pid":…,"boot":…,"start":…}` (as the agent's lock), or a bare PID as
 * earlier versions wrote it; undefined when unreadable.
 */
function lockHolder(path: string): ProcessIdentity | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
  if (/^\d+$/.test(text)) return { pid: Number(text) };
  try {
    const json = JSON.parse(text) as Partial<ProcessIdentity>;
    if (typeof json.pid !== 'number' || !Number.isInteger(json.pid) || json.pid <= 0) return undefined;
    return {
      pid: json.pid,
      ...(typeof json.boot === 'string' ? { boot: json.boot } : {}),
      ...(typeof json.start === 'string' ? { start: json.start } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * Takes `<data>/lock` for this process. A second local cloud on the same data dir gets a clear
 * error; a lock left by a killed process is taken over, and so is one whose PID now names another
 * process (another boot, or another start time: the PID was reused).
 */
export function acquireLock(dataDir: string): () => void {
  const path = join(dataDir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeAllSync(fd, JSON.stringify(identify(process.pid)));
      } finally {
        closeSync(fd);
      }
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = lockHolder(path);
      if (holder && holder.pid !== process.pid && isSameProcess(holder)) {
        throw new Error(
          `Another local cloud (pid ${holder.pid}) is using ${dataDir}: stop it first or pass --data DIR`,
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
    writeFileSync(path, '', { mode: 0o600 });
  }
}

/** The signal's current value: the file's mtime in ns precision (0 when absent). */
export function localChangeSignal(dataDir: string): () => number {
  const path = changesFile(dataDir);
  return () => statSync(path, { throwIfNoEntry: false, bigint: false })?.mtimeMs ?? 0;
}
