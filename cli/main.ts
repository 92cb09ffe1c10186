/**
 * The builder CLI `updraft` (DESIGN §6). Parses flags with node:util parseArgs, validates them at the
 * edge, and calls the library modules of cli/. Heavy modules (the AWS SDK) load only for commands
 * that talk to a cloud, so `policy check` and `keys generate` start fast.
 * Every failure ends as one line `updraft: …` on stderr (plus detail lines such as a policy excerpt)
 * and exit code 1.
 */
// First: silences the SDK's Node 20 warning before any SDK client exists (see the module).
import '#scripts/sdk-env.ts';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { parseDuration } from '#core/duration.ts';
import { PolicyError } from '#core/errors.ts';
import type { UpdateRecord } from '#core/types.ts';
import type { CloudSources, CloudTarget } from './cloud.ts';
import { CliError, errorLine, type StoreDescription, UsageError } from './errors.ts';
import type { PublishInput, UpdateChanges } from './updates.ts';

type Values = Record<string, string | boolean | undefined>;
type Options = NonNullable<ParseArgsConfig['options']>;

interface Context {
  readonly command: string;
  readonly values: Values;
  readonly positionals: readonly string[];
  readonly json: boolean;
  /** The cloud named by --cloud (default local), opened on first use. */
  cloud(): Promise<CloudTarget>;
  readonly sources: CloudSources;
  readonly cloudName: string;
  /** Writes a line to stdout. */
  print(text?: string): void;
  /** Writes a value as indented JSON to stdout. */
  printJson(value: unknown): void;
}

/** Where output goes; tests pass their own. */
export type Output = (text: string) => void;

const stdout: Output = (text) => {
  process.stdout.write(text);
};

interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly options?: Options;
  /** Names of the positional arguments; more are refused. */
  readonly positionals?: readonly string[];
  run(ctx: Context): Promise<number | undefined>;
}

const COMMON_OPTIONS: Options = {
  cloud: { type: 'string' },
  data: { type: 'string' },
  outputs: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const COMMON_HELP = `Common options:
  --cloud NAME     device cloud: local (default; the cloud of npm start) or a name from cdk-outputs.json
  --data DIR       data dir of the local cloud (default $UPDRAFT_DATA or .data)
  --outputs FILE   outputs of npx cdk deploy (default $UPDRAFT_OUTPUTS or cdk-outputs.json)
  --json           machine-readable output
  -h, --help       this help`;

const SETTINGS_OPTIONS: Options = {
  policy: { type: 'string' },
  description: { type: 'string' },
  percentage: { type: 'string' },
  limit: { type: 'string' },
  rate: { type: 'string' },
  period: { type: 'string' },
  'abort-threshold': { type: 'string' },
  'abort-min': { type: 'string' },
};

const SETTINGS_HELP = `  --policy EXPR          distribution policy (default: semver(version, "<", newVersion))
  --description TEXT     what the update brings
  --percentage P         offer to P% of devices (0 < P <= 100), the same devices every time
  --limit N              at most N devices
  --rate N --period S    at most N grants per S seconds (S may be a duration: "1 hr")
  --abort-threshold PCT --abort-min N
                         pause the update once N reports arrived and PCT% of them failed`;

// ---------------------------------------------------------------------------------------------
// Flag helpers

function str(values: Values, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

function required(ctx: Context, name: string, placeholder: string): string {
  const v = str(ctx.values, name);
  if (v === undefined || v === '') {
    throw new UsageError(`Missing --${name} ${placeholder}: see updraft ${ctx.command} --help`);
  }
  return v;
}

/** A numeric flag: undefined when absent; with `clearable`, `none` gives null (remove the setting). */
function numberFlag(values: Values, name: string, clearable = false): number | null | undefined {
  const raw = str(values, name);
  if (raw === undefined) return undefined;
  if (clearable && raw === 'none') return null;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) {
    throw new UsageError(
      `Invalid --${name} "${raw}": use a number${clearable ? ', or none to remove it' : ''}`,
    );
  }
  return n;
}

function periodFlag(values: Values, clearable = false): number | null | undefined {
  const raw = str(values, 'period');
  if (raw === undefined) return undefined;
  if (clearable && raw === 'none') return null;
  try {
    return parseDuration(/^\d+$/.test(raw) ? Number(raw) : raw, '--period');
  } catch {
    throw new UsageError(`Invalid --period "${raw}": use a number of seconds or a duration such as "1 hr"`);
  }
}

/** Warns on stderr (stdout may carry --json) about a policy that compiles but always fails somewhere. */
async function warnAboutPolicy(policy: string | undefined): Promise<void> {
  if (policy === undefined) return;
  const { compilePolicy } = await import('#core/policy.ts');
  for (const w of compilePolicy(policy).warnings) {
    process.stderr.write(`updraft: warning: policy column ${w.column}: ${w.reason}\n`);
  }
}

function settingChanges(values: Values, clearable: boolean): UpdateChanges {
  const changes: Record<string, string | number | null> = {};
  const set = (name: string, value: string | number | null | undefined) => {
    if (value !== undefined) changes[name] = value;
  };
  set('policy', str(values, 'policy'));
  set('description', str(values, 'description'));
  set('percentage', numberFlag(values, 'percentage', clearable));
  set('limit', numberFlag(values, 'limit', clearable));
  set('rate', numberFlag(values, 'rate', clearable));
  set('period', periodFlag(values, clearable));
  set('abortThreshold', numberFlag(values, 'abort-threshold', clearable));
  set('abortMin', numberFlag(values, 'abort-min', clearable));
  return changes as UpdateChanges;
}

// ---------------------------------------------------------------------------------------------
// Output helpers

/** Left-aligned columns separated by two spaces. */
function table(head: readonly string[], rows: readonly (readonly string[])[], indent = ''): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    indent +
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

function cut(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function statusOf(u: UpdateRecord): string {
  if (u.paused) return 'paused';
  return u.enabled ? 'enabled' : 'disabled';
}

function limitsOf(u: UpdateRecord): string {
  const parts: string[] = [];
  if (u.percentage !== undefined) parts.push(`${u.percentage}%`);
  if (u.limit !== undefined) parts.push(`max ${u.limit}`);
  if (u.rate !== undefined && u.period !== undefined) parts.push(`${u.rate}/${u.period}s`);
  if (u.abortThreshold !== undefined && u.abortMin !== undefined) {
    parts.push(`abort ${u.abortThreshold}% of ≥${u.abortMin}`);
  }
  return parts.length ? parts.join(', ') : '-';
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function showUpdate(u: UpdateRecord): string {
  const rows: [string, string][] = [
    ['Product', u.product],
    ['Version', u.version],
    ['Update id', u.id],
    ['Status', u.paused ? `paused (${u.pauseReason ?? 'no reason given'})` : statusOf(u)],
    ['Policy', u.policy === '' ? '(default) semver(version, "<", newVersion)' : u.policy],
    ['Description', u.description || '-'],
    ['Percentage', u.percentage === undefined ? '-' : `${u.percentage}%`],
    ['Limit', u.limit === undefined ? '-' : `${u.limit} devices`],
    ['Rate', u.rate === undefined ? '-' : `${u.rate} per ${u.period} s`],
    [
      'Auto-abort',
      u.abortThreshold === undefined ? '-' : `${u.abortThreshold}% failures of ≥ ${u.abortMin} reports`,
    ],
    ['Downgrade', u.allowDowngrade ? 'allowed' : 'no'],
    ['Image', u.key],
    ['Size', `${u.size} bytes (${mib(u.size)})`],
    ['SHA-256', u.checksum],
    ['Signature', u.signature ?? '-'],
    ['Created', u.created],
    ['Started', String(u.counters.started)],
    ['Success', String(u.counters.success)],
    ['Failure', String(u.counters.failure)],
    ['Deferred', String(u.counters.deferred)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width + 2)}${v}`).join('\n');
}

/** A one-line progress meter on a terminal; nothing when stderr is not one. */
function progressMeter(label: string): { update: (sent: number, total: number) => void; done: () => void } {
  if (!process.stderr.isTTY) return { update: () => undefined, done: () => undefined };
  let shown = -1;
  return {
    update(sent, total) {
      const pct = total > 0 ? Math.floor((sent / total) * 100) : 100;
      if (pct === shown) return;
      shown = pct;
      process.stderr.write(`\r${label}  ${mib(sent)} / ${mib(total)}  ${String(pct).padStart(3)}%`);
    },
    done() {
      if (shown >= 0) process.stderr.write('\r\x1b[2K');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Commands

const PUBLISH_USAGE = `Usage: updraft publish --product P --version V --file F [options]
Upload an image and publish it as an update. Nothing is visible until every step succeeded.
  --product P            product name
  --version V            SemVer 2.0 version of the image
  --file F               the image file
${SETTINGS_HELP}
  --allow-downgrade      offer to devices running a higher version (needs --policy)
  --disabled             publish disabled (updraft enable makes it available)
  --sign-key KEY.pem     sign the manifest with this Ed25519 private key (updraft keys generate)
  --cloud all            publish to every cloud of cdk-outputs.json`;

function updateSelector(ctx: Context): { product: string; version: string } {
  return { product: required(ctx, 'product', 'P'), version: required(ctx, 'version', 'V') };
}

const commands: Record<string, Command> = {
  publish: {
    summary: 'upload an image and publish it as an update',
    usage: PUBLISH_USAGE,
    options: {
      product: { type: 'string' },
      version: { type: 'string' },
      file: { type: 'string' },
      ...SETTINGS_OPTIONS,
      'allow-downgrade': { type: 'boolean' },
      disabled: { type: 'boolean' },
      'sign-key': { type: 'string' },
    },
    async run(ctx) {
      const { product, version } = updateSelector(ctx);
      const file = required(ctx, 'file', 'F');
      const signKey = str(ctx.values, 'sign-key');
      let signKeyPem: string | undefined;
      if (signKey !== undefined) {
        try {
          signKeyPem = readFileSync(signKey, 'utf8');
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          throw new CliError(
            code === 'ENOENT'
              ? `Signing key not found: ${signKey}`
              : `Cannot read --sign-key ${signKey}: ${(err as Error).message}`,
          );
        }
      }
      const changes = settingChanges(ctx.values, false);
      const input: PublishInput = {
        product,
        version,
        file,
        ...(changes as Partial<PublishInput>),
        allowDowngrade: ctx.values['allow-downgrade'] === true,
        disabled: ctx.values.disabled === true,
        ...(signKeyPem !== undefined ? { signKeyPem } : {}),
      };
      const { cloudNames, openCloud } = await import('./cloud.ts');
      const { preparePublish, publish } = await import('./updates.ts');
      const names = cloudNames(ctx.cloudName, ctx.sources);
      const targets: CloudTarget[] = [];
      try {
        // Validate against every cloud before uploading to any.
        for (const name of names) {
          const target = openCloud(name, ctx.sources);
          targets.push(target);
          await withStore(target.store, () => preparePublish(target.table, input));
        }
        await warnAboutPolicy(input.policy);
        const published: (UpdateRecord & { cloud: string })[] = [];
        for (const target of targets) {
          const meter = progressMeter(`Uploading ${basename(file)} to ${target.name}`);
          let record: UpdateRecord;
          try {
            record = await publish(target, input, { onProgress: ctx.json ? undefined : meter.update });
          } catch (err) {
            if (published.length === 0) throw err;
            const done = published.map((p) => p.cloud).join(', ');
            throw new CliError(`${errorLine(err, target.store).message} (already published to ${done})`);
          } finally {
            meter.done();
          }
          published.push({ cloud: target.name, ...record });
          if (!ctx.json) {
            ctx.print(
              `Published ${product} ${record.version} to ${target.name}: update ${record.id}, ${record.size} bytes, sha256 ${record.checksum}${record.signature ? ', signed' : ''}${record.enabled ? '' : ' (disabled)'}`,
            );
          }
        }
        if (ctx.json) ctx.printJson(names.length === 1 && ctx.cloudName !== 'all' ? published[0] : published);
      } finally {
        for (const t of targets) t.close();
      }
      return 0;
    },
  },

  list: {
    summary: "list a product's updates",
    usage: `Usage: updraft list --product P
List the updates of a product, highest version first.`,
    options: { product: { type: 'string' } },
    async run(ctx) {
      const product = required(ctx, 'product', 'P');
      const { listUpdates } = await import('./updates.ts');
      const updates = await listUpdates((await ctx.cloud()).table, product);
      if (ctx.json) {
        ctx.printJson(updates);
        return 0;
      }
      if (updates.length === 0) {
        ctx.print(`No updates of ${product}.`);
        return 0;
      }
      const rows = updates.map((u) => [
        u.version,
        u.id,
        statusOf(u),
        u.policy === '' ? '(default)' : cut(u.policy, 40),
        limitsOf(u),
        String(u.counters.started),
        String(u.counters.success),
        String(u.counters.failure),
      ]);
      ctx.print(
        table(['VERSION', 'ID', 'STATUS', 'POLICY', 'LIMITS', 'STARTED', 'SUCCESS', 'FAILURE'], rows),
      );
      return 0;
    },
  },

  show: {
    summary: 'show one update in full',
    usage: `Usage: updraft show --product P --version V
Show an update: settings, image, signature, counters and pause reason.`,
    options: { product: { type: 'string' }, version: { type: 'string' } },
    async run(ctx) {
      const { product, version } = updateSelector(ctx);
      const { findUpdate } = await import('./updates.ts');
      const update = await findUpdate((await ctx.cloud()).table, product, version);
      if (ctx.json) ctx.printJson(update);
      else ctx.print(showUpdate(update));
      return 0;
    },
  },

  enable: {
    summary: 'make an update available (also resumes a paused one)',
    usage: `Usage: updraft enable --product P --version V
Enable an update; resumes one paused by auto-abort.`,
    options: { product: { type: 'string' }, version: { type: 'string' } },
    async run(ctx) {
      const { product, version } = updateSelector(ctx);
      const { enableUpdate } = await import('./updates.ts');
      const update = await enableUpdate(await ctx.cloud(), product, version);
      if (ctx.json) ctx.printJson(update);
      else ctx.print(`Enabled ${product} ${update.version} (update ${update.id}).`);
      return 0;
    },
  },

  disable: {
    summary: 'stop offering an update',
    usage: `Usage: updraft disable --product P --version V
Disable an update: checkins stop getting it.`,
    options: { product: { type: 'string' }, version: { type: 'string' } },
    async run(ctx) {
      const { product, version } = updateSelector(ctx);
      const { disableUpdate } = await import('./updates.ts');
      const update = await disableUpdate(await ctx.cloud(), product, version);
      if (ctx.json) ctx.printJson(update);
      else ctx.print(`Disabled ${product} ${update.version} (update ${update.id}).`);
      return 0;
    },
  },

  delete: {
    summary: 'delete an update and its image',
    usage: `Usage: updraft delete --product P --version V
Delete an update record and its image.`,
    options: { product: { type: 'string' }, version: { type: 'string' } },
    async run(ctx) {
      const { product, version } = updateSelector(ctx);
      const { deleteUpdate } = await import('./updates.ts');
      const update = await deleteUpdate(await ctx.cloud(), product, version);
      if (ctx.json) ctx.printJson({ deleted: true, ...update });
      else ctx.print(`Deleted ${product} ${update.version} (update ${update.id}) and its image.`);
      return 0;
    },
  },

  edit: {
    summary: "change an update's policy, description, limits or abort settings",
    usage: `Usage: updraft edit --product P --version V [options]
Change an update's settings; the result is validated as publish would. Pass none to remove a limit
(e.g. --limit none, --rate none --period none).
${SETTINGS_HELP}`,
    options: { product: { type: 'string' }, version: { type: 'string' }, ...SETTINGS_OPTIONS },
    async run(ctx) {
      const { product, version } = updateSelector(ctx);
      const changes = settingChanges(ctx.values, true);
      const { editUpdate } = await import('./updates.ts');
      const update = await editUpdate(await ctx.cloud(), product, version, changes);
      await warnAboutPolicy(changes.policy);
      if (ctx.json) ctx.printJson(update);
      else ctx.print(`Updated ${product} ${update.version} (update ${update.id}).\n${showUpdate(update)}`);
      return 0;
    },
  },

  'policy check': {
    summary: 'parse, explain and try a distribution policy',
    usage: `Usage: updraft policy check EXPR [--device FILE.json] [--new-version V] [--product P]
Parse a policy and explain it; with --device evaluate it for one device (a checkin body in JSON
or JSON5); with --product dry-run it against the devices in that product's registry.
  --device FILE          device properties, including "version"
  --new-version V        the update's version (newVersion in the policy)
  --product P            evaluate against the registry of product P (needs a cloud)`,
    options: { device: { type: 'string' }, 'new-version': { type: 'string' }, product: { type: 'string' } },
    positionals: ['EXPR'],
    async run(ctx) {
      const source = ctx.positionals[0];
      if (source === undefined) throw new UsageError('Missing EXPR: updraft policy check EXPR (quote it)');
      const { checkNewVersion, checkPolicy, evaluateFor, matchFleet, readDeviceFile } = await import(
        './policy-check.ts'
      );
      let policy: ReturnType<typeof checkPolicy>;
      try {
        policy = checkPolicy(source);
      } catch (err) {
        if (ctx.json && err instanceof PolicyError) {
          ctx.print(JSON.stringify({ ok: false, error: err.reason, column: err.column }));
        }
        throw err;
      }
      const newVersionFlag = str(ctx.values, 'new-version');
      const newVersion = newVersionFlag === undefined ? undefined : checkNewVersion(newVersionFlag);
      const product = str(ctx.values, 'product');
      const deviceFile = str(ctx.values, 'device');
      const device = deviceFile === undefined ? undefined : readDeviceFile(deviceFile, product);
      const outcome = device ? evaluateFor(policy, device, newVersion) : undefined;
      const fleet =
        product === undefined
          ? undefined
          : await matchFleet((await ctx.cloud()).table, product, policy, newVersion);
      if (ctx.json) {
        ctx.print(
          JSON.stringify({
            ok: true,
            terms: policy.terms,
            ...(outcome !== undefined ? { match: outcome === true } : {}),
            ...(policy.warnings.length > 0 ? { warnings: policy.warnings } : {}),
            ...(outcome === null ? { evaluationError: true } : {}),
            ...(fleet ? { product, ...fleet } : {}),
          }),
        );
        return 0;
      }
      ctx.print(`Policy: ${policy.source}${source.trim() === '' ? '  (the default)' : ''}`);
      ctx.print(`Terms:  ${policy.terms}`);
      ctx.print(policy.explain());
      for (const w of policy.warnings) ctx.print(`Warning (column ${w.column}): ${w.reason}`);
      if (device) {
        const result =
          outcome === null ? 'error (evaluation failed: counts as no match)' : outcome ? 'match' : 'no match';
        ctx.print(`\nDevice ${device.id} (version ${device.version}): ${result}`);
      }
      if (fleet) {
        ctx.print(
          `\nWould match ${fleet.matched} of ${fleet.devices} devices of ${product}${fleet.errors ? ` (${fleet.errors} evaluation errors)` : ''}`,
        );
        if (fleet.sample.length) {
          ctx.print(
            table(
              ['DEVICE', 'VERSION'],
              fleet.sample.map((d) => [d.id, d.version]),
              '  ',
            ),
          );
          if (fleet.matched > fleet.sample.length)
            ctx.print(`  … and ${fleet.matched - fleet.sample.length} more`);
        }
      }
      if ((device || fleet) && newVersion === undefined)
        ctx.print('(newVersion is null: pass --new-version V)');
      return 0;
    },
  },

  'token create': {
    summary: 'create a device token (shown once)',
    usage: `Usage: updraft token create --product P [--device ID] [--description TEXT]
Create a token devices of product P (or only device ID) check in with. It is shown once and
stored only as a hash.`,
    options: { product: { type: 'string' }, device: { type: 'string' }, description: { type: 'string' } },
    async run(ctx) {
      const product = required(ctx, 'product', 'P');
      const device = str(ctx.values, 'device');
      const description = str(ctx.values, 'description');
      const { isValidId, isValidProduct } = await import('#core/device.ts');
      if (!isValidProduct(product)) {
        throw new UsageError(`Invalid --product "${product}": use 1–64 characters of A-Z a-z 0-9 . _ : -`);
      }
      if (device !== undefined && !isValidId(device)) {
        throw new UsageError(`Invalid --device "${device}": use 1–128 characters of A-Z a-z 0-9 . _ : -`);
      }
      const { createToken } = await import('#functions/tokens.ts');
      const { token, info } = await createToken((await ctx.cloud()).table, {
        product,
        ...(device !== undefined ? { device } : {}),
        ...(description !== undefined ? { description } : {}),
      });
      if (ctx.json) {
        ctx.printJson({ token, ...info });
        return 0;
      }
      ctx.print(
        `Token for product ${product}${device ? `, device ${device}` : ''} (shown once, store it now):`,
      );
      ctx.print(`  ${token}`);
      ctx.print(`Id ${info.id} (for updraft token revoke).`);
      return 0;
    },
  },

  'token list': {
    summary: 'list device tokens (ids, not secrets)',
    usage: `Usage: updraft token list [--product P]
List tokens by id, product and device; the secrets are not stored.`,
    options: { product: { type: 'string' } },
    async run(ctx) {
      const product = str(ctx.values, 'product');
      const { listTokens } = await import('#functions/tokens.ts');
      const tokens = (await listTokens((await ctx.cloud()).table)).filter(
        (t) => product === undefined || t.product === product,
      );
      if (ctx.json) {
        ctx.printJson(tokens);
        return 0;
      }
      if (tokens.length === 0) {
        ctx.print('No tokens.');
        return 0;
      }
      const rows = tokens.map((t) => [t.id, t.product, t.device ?? '*', t.created, t.description ?? '']);
      ctx.print(table(['ID', 'PRODUCT', 'DEVICE', 'CREATED', 'DESCRIPTION'], rows));
      return 0;
    },
  },

  'token revoke': {
    summary: 'revoke a device token',
    usage: `Usage: updraft token revoke ID
Revoke the token with this id (from updraft token list). Devices using it get 401 once the
clouds' token caches expire (at most a minute).`,
    positionals: ['ID'],
    async run(ctx) {
      const id = ctx.positionals[0];
      if (id === undefined || id === '')
        throw new UsageError('Missing ID: updraft token revoke ID (see updraft token list)');
      if (!/^[0-9a-f]{4,64}$/.test(id)) {
        throw new UsageError(`Invalid token id "${id}": use the id updraft token list shows (hex digits)`);
      }
      const { revokeToken } = await import('#functions/tokens.ts');
      if (!(await revokeToken((await ctx.cloud()).table, id))) {
        throw new CliError(
          `No single token with id ${id}: see updraft token list (use a longer id if several match)`,
        );
      }
      if (ctx.json) ctx.printJson({ revoked: id });
      else ctx.print(`Revoked token ${id}.`);
      return 0;
    },
  },

  stats: {
    summary: 'devices per version, update counters, daily metrics',
    usage: `Usage: updraft stats --product P [--days N]
Devices per version (from the registry), per-update counters, and daily metrics.
  --days N               days of metrics to show (default 7)`,
    options: { product: { type: 'string' }, days: { type: 'string' } },
    async run(ctx) {
      const product = required(ctx, 'product', 'P');
      const days = numberFlag(ctx.values, 'days') ?? 7;
      if (!Number.isSafeInteger(days) || days < 1)
        throw new UsageError(`Invalid --days ${days}: use a whole number ≥ 1`);
      const { productStats } = await import('./stats.ts');
      const stats = await productStats((await ctx.cloud()).table, product, days);
      if (ctx.json) {
        ctx.printJson(stats);
        return 0;
      }
      ctx.print(`Product ${product}: ${stats.devices} device${stats.devices === 1 ? '' : 's'}`);
      if (stats.versions.length) {
        ctx.print(
          table(
            ['VERSION', 'DEVICES', 'LAST SEEN'],
            stats.versions.map((v) => [v.version, String(v.devices), v.lastSeen]),
            '  ',
          ),
        );
      }
      ctx.print('\nUpdates');
      if (stats.updates.length === 0) ctx.print('  none');
      else {
        const rows = stats.updates.map((u) => [
          u.version,
          u.id,
          u.paused ? 'paused' : u.enabled ? 'enabled' : 'disabled',
          String(u.started),
          String(u.success),
          String(u.failure),
          String(u.deferred),
        ]);
        ctx.print(
          table(['VERSION', 'ID', 'STATUS', 'STARTED', 'SUCCESS', 'FAILURE', 'DEFERRED'], rows, '  '),
        );
      }
      ctx.print(`\nMetrics (last ${days} day${days === 1 ? '' : 's'} with activity)`);
      if (stats.metrics.length === 0) ctx.print('  none');
      else {
        const rows = stats.metrics.map((m) => [
          m.day,
          String(m.UpdateRequests),
          String(m.UpdateStarted),
          String(m.UpdateDeferred),
          String(m.UpdateSuccess),
          String(m.UpdateFailure),
          String(m.PolicyErrors),
        ]);
        ctx.print(
          table(
            ['DAY', 'REQUESTS', 'STARTED', 'DEFERRED', 'SUCCESS', 'FAILURE', 'POLICY ERRORS'],
            rows,
            '  ',
          ),
        );
      }
      return 0;
    },
  },

  'keys generate': {
    summary: 'create an Ed25519 signing key pair',
    usage: `Usage: updraft keys generate [--out FILE]
Create an Ed25519 key pair for signing manifests (publish --sign-key). Without --out, prints
both PEM keys; with --out, writes the private key to FILE (mode 0600) and the public key to
FILE.pub. Either way prints the public key in the form of the agent's update.keys.
  --out FILE             where to write the private key`,
    options: { out: { type: 'string' } },
    async run(ctx) {
      const { generateKeyPair } = await import('#core/manifest.ts');
      const pair = generateKeyPair();
      const out = str(ctx.values, 'out');
      if (out !== undefined) {
        for (const file of [out, `${out}.pub`]) {
          if (existsSync(file)) throw new CliError(`${file} exists: remove it or choose another --out`);
        }
        try {
          writeFileSync(out, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
          writeFileSync(`${out}.pub`, pair.publicKeyPem, { flag: 'wx' });
        } catch (err) {
          throw new CliError(`Cannot write ${out}: ${(err as Error).message}`);
        }
      }
      if (ctx.json) {
        ctx.printJson({
          publicKey: pair.publicKey,
          publicKeyPem: pair.publicKeyPem,
          ...(out === undefined
            ? { privateKeyPem: pair.privateKeyPem }
            : { privateKeyFile: out, publicKeyFile: `${out}.pub` }),
        });
        return 0;
      }
      if (out === undefined) ctx.print(`${pair.privateKeyPem.trimEnd()}\n${pair.publicKeyPem.trimEnd()}`);
      else
        ctx.print(`Private key: ${out} (keep it secret; publish --sign-key ${out})\nPublic key:  ${out}.pub`);
      ctx.print(`\nFor the agent's config/ioto.json5:  update: { keys: ['${pair.publicKey}'] }`);
      return 0;
    },
  },
};

const GROUPS = new Set(['policy', 'token', 'keys']);

function mainUsage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const list = Object.entries(commands)
    .map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
    .join('\n');
  return `Usage: updraft COMMAND [options]   (updraft COMMAND --help for its options)
Publish and manage updates of the Updraft device cloud.

Commands:
${list}

${COMMON_HELP}`;
}

/** Runs the store-touching `fn`, naming the table when it cannot be reached. */
async function withStore<T>(store: StoreDescription, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Error && err.name === 'StoreUnavailableError') {
      throw new CliError(errorLine(err, store).message, undefined, { cause: err });
    }
    throw err;
  }
}

function firstSentence(message: string): string {
  const at = message.indexOf('. ');
  return at < 0 ? message : message.slice(0, at);
}

/** Runs the CLI on `argv` (without node and script); returns the exit code. */
export async function main(argv: readonly string[], out: Output = stdout): Promise<number> {
  const print = (text = '') => out(`${text}\n`);
  const [first, second] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const topic = first === 'help' ? argv.slice(1).join(' ') : '';
    const cmd = topic ? commands[topic] : undefined;
    if (topic && !cmd) throw new UsageError(`Unknown command "${topic}": see updraft --help`);
    print(cmd ? `${cmd.usage}\n\n${COMMON_HELP}` : mainUsage());
    return first === undefined ? 1 : 0;
  }
  let name = first;
  let rest = argv.slice(1);
  if (GROUPS.has(first)) {
    const sub = second === undefined || second.startsWith('-') ? undefined : second;
    if (sub === undefined) {
      if (second === '--help' || second === '-h') {
        print(
          Object.entries(commands)
            .filter(([n]) => n.startsWith(`${first} `))
            .map(([, c]) => c.usage.split('\n')[0])
            .join('\n'),
        );
        return 0;
      }
      const subs = Object.keys(commands)
        .filter((n) => n.startsWith(`${first} `))
        .map((n) => n.slice(first.length + 1));
      throw new UsageError(`Missing subcommand: updraft ${first} ${subs.join('|')}`);
    }
    name = `${first} ${sub}`;
    rest = argv.slice(2);
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) throw new UsageError(`Unknown command "${name}": see updraft --help`);

  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...rest],
      options: { ...COMMON_OPTIONS, ...command.options },
      allowPositionals: (command.positionals?.length ?? 0) > 0,
      strict: true,
    }) as { values: Values; positionals: string[] };
  } catch (err) {
    throw new UsageError(`${firstSentence((err as Error).message)}: see updraft ${name} --help`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    print(`${command.usage}\n\n${COMMON_HELP}`);
    return 0;
  }
  if (positionals.length > (command.positionals?.length ?? 0)) {
    throw new UsageError(
      `Unexpected argument "${positionals[command.positionals?.length ?? 0]}": see updraft ${name} --help (quote values with spaces)`,
    );
  }
  const cloudName = str(values, 'cloud') ?? 'local';
  if (cloudName === 'all' && name !== 'publish') {
    throw new UsageError('--cloud all works with publish only: name one cloud');
  }
  const sources: CloudSources = {
    dataDir: str(values, 'data') ?? process.env.UPDRAFT_DATA ?? '.data',
    outputsFile: str(values, 'outputs') ?? process.env.UPDRAFT_OUTPUTS ?? 'cdk-outputs.json',
  };
  let target: CloudTarget | undefined;
  const ctx: Context = {
    command: name,
    values,
    positionals,
    json: values.json === true,
    sources,
    cloudName,
    print,
    printJson: (value) => print(JSON.stringify(value, null, 2)),
    async cloud() {
      if (!target) {
        const { openCloud } = await import('./cloud.ts');
        target = openCloud(cloudName, sources);
      }
      return target;
    },
  };
  try {
    return (await command.run(ctx)) ?? 0;
  } catch (err) {
    if (target && err instanceof Error && err.name === 'StoreUnavailableError') {
      throw new CliError(errorLine(err, target.store).message, undefined, { cause: err });
    }
    throw err;
  } finally {
    target?.close();
  }
}

/** Prints an error as `updraft: <one line>` (plus detail lines) on stderr. */
export function reportError(err: unknown): void {
  const { message, detail } = errorLine(err);
  process.stderr.write(`updraft: ${message}\n${detail ? `${detail}\n` : ''}`);
  if (process.env.UPDRAFT_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
}

/** The `updraft` process: runs `main`, prints any error, exits with its code. */
export async function runCli(argv: readonly string[]): Promise<never> {
  let code: number;
  try {
    code = await main(argv);
  } catch (err) {
    reportError(err);
    code = 1;
  }
  // Flush stdout, then exit: an idle keep-alive socket of the SDK must not hold the process.
  return new Promise<never>(() => process.stdout.write('', () => process.exit(code)));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runCli(process.argv.slice(2));
}
