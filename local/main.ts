/**
 * `npm start [-- options]`: the embedded local device cloud. See `npm start -- --help`.
 */
// First: silences the SDK's Node 20 warning before any SDK client exists (see the module).
import '#scripts/sdk-env.ts';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { DEV_PRODUCT, startLocalCloud } = await import('./cloud.ts');

const USAGE = `Usage: npm start -- [options]
  --host H            API address (default 127.0.0.1)
  --port N            API port (default 4000)
  --s3-host H         embedded S3 address (default 127.0.0.1)
  --s3-port N         embedded S3 port (default 4569)
  --data DIR          state directory (default .data)
  --tls-cert FILE     PEM certificate: serve the API and S3 over HTTPS (with --tls-key)
  --tls-key FILE      PEM private key
  --public-url URL    API address devices use, when behind a proxy
  --s3-public-url URL image address written into presigned URLs, when behind a proxy
  --console-host H    web console address (default 127.0.0.1; keep it on loopback)
  --console-port N    web console port (default 4080; 0 picks a free one)
  --quiet             log errors only`;

function fail(message: string): never {
  process.stderr.write(`updraft: ${message}\n`);
  process.exit(1);
}

function port(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    fail(`Invalid ${flag} "${value}": use a port number 0–65535`);
  return n;
}

function url(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  try {
    const u = new URL(value);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
    return value;
  } catch {
    return fail(`Invalid ${flag} "${value}": use an http(s) URL such as https://updates.example.com`);
  }
}

function readPem(file: string, flag: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    return fail(`Cannot read ${flag} ${file}: ${(err as Error).message}`);
  }
}

let args: ReturnType<typeof parse>;
function parse() {
  return parseArgs({
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      's3-host': { type: 'string' },
      's3-port': { type: 'string' },
      data: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'public-url': { type: 'string' },
      's3-public-url': { type: 'string' },
      'console-host': { type: 'string' },
      'console-port': { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  }).values;
}
try {
  args = parse();
} catch (err) {
  fail(`${(err as Error).message}\n${USAGE}`);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
if ((args['tls-cert'] === undefined) !== (args['tls-key'] === undefined))
  fail('--tls-cert and --tls-key go together');

const { jsonLogger } = await import('#functions/log.ts');
// Loaded while the cloud starts; the console starts once the cloud is up (it opens it as the CLI does).
const consoleModule = import('#console/index.ts');
const log = jsonLogger('updraft-local', args.quiet === true);
const consolePort = port(args['console-port'], '--console-port', 4080);
const tlsCert = args['tls-cert'];
const tlsKey = args['tls-key'];
const publicUrl = url(args['public-url'], '--public-url');
const s3PublicUrl = url(args['s3-public-url'], '--s3-public-url');
let cloud: Awaited<ReturnType<typeof startLocalCloud>>;
try {
  cloud = await startLocalCloud({
    dataDir: args.data ?? '.data',
    host: args.host ?? '127.0.0.1',
    port: port(args.port, '--port', 4000),
    s3Host: args['s3-host'] ?? '127.0.0.1',
    s3Port: port(args['s3-port'], '--s3-port', 4569),
    ...(tlsCert && tlsKey
      ? {
          tls: { cert: readPem(tlsCert, '--tls-cert'), key: readPem(tlsKey, '--tls-key'), certFile: tlsCert },
        }
      : {}),
    ...(publicUrl ? { publicUrl } : {}),
    ...(s3PublicUrl ? { s3PublicUrl } : {}),
    log,
  });
} catch (err) {
  fail((err as Error).message);
}

const dataDir = args.data ?? '.data';
const dataEnv = args.data === undefined ? '' : `UPDRAFT_DATA=${args.data} `;
// config/ioto.json5 points the agent at the default address; say so when this cloud is elsewhere.
const apiHint =
  cloud.apiUrl === 'http://127.0.0.1:4000'
    ? ''
    : `\n  # then set update.api to '${cloud.apiUrl}' in /tmp/device/ioto.json5`;
console.log(`Updraft local device cloud
  API     ${cloud.apiUrl}   (POST /tok/provision/update, /tok/provision/updateReport)
  Images  ${cloud.s3Url}   (presigned URLs only)
  Data    ${dataDir}   (private; the CLI signs with ${dataDir}/credentials.json)

Development token for product "${DEV_PRODUCT}" (also in ${dataDir}/dev-token):
  ${cloud.devToken}

Quickstart, in another terminal:
  echo 'firmware 1.1.0' > /tmp/image.bin
  ${dataEnv}npx updraft publish --product ${DEV_PRODUCT} --version 1.1.0 --file /tmp/image.bin
  mkdir -p /tmp/device && cp config/*.json5 /tmp/device/   # the update script edits the copy${apiHint}
  UPDRAFT_TOKEN=$(cat ${dataDir}/dev-token) npx updraft-agent --once \\
    --config /tmp/device/ioto.json5 --device /tmp/device/device.json5 --state /tmp/device/state`);

const webConsole = await (await consoleModule)
  .startCloudConsole({
    cloudNames: ['local'],
    dataDir,
    outputsFile: 'cdk-outputs.json',
    defaultProduct: DEV_PRODUCT,
    host: args['console-host'] ?? '127.0.0.1',
    port: consolePort,
    log,
  })
  .catch(async (err: Error) => {
    await cloud.stop();
    return fail(err.message);
  });
console.log(`
Web console (the secret in the URL signs you in):
  ${webConsole.url}
Press Ctrl-C to stop.`);

let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info('stopping', { signal });
  Promise.all([webConsole.stop(), cloud.stop()]).then(
    () => process.exit(0),
    (err: unknown) => {
      log.error('stop failed', { error: err });
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
