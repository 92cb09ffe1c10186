/**
 * The console's JSON API: every route reads its input, calls ONE admin operation and returns its
 * typed result. No business logic here (STYLE habit 12): validation of meaning, storage and the
 * errors' statuses all belong to admin/.
 *
 *   GET    /api/session                                  the clouds served and the default product
 *   POST   /api/policy/check                             checkPolicy (no dry run over the registry)
 *   POST   /api/keys                                     generateKeys (the private key in the answer, once)
 * and per cloud, under /api/clouds/:cloud (each cloud with the builder's own credentials):
 *   GET    …/products/:product/updates                   listUpdates
 *   POST   …/products/:product/updates?settings=JSON     publish (the body is the image)
 *   GET    …/products/:product/updates/:version          showUpdate
 *   PATCH  …/products/:product/updates/:version          editUpdate
 *   DELETE …/products/:product/updates/:version          deleteUpdate
 *   POST   …/products/:product/updates/:version/enable   enableUpdate
 *   POST   …/products/:product/updates/:version/disable  disableUpdate
 *   POST   …/products/:product/updates/:version/pause    pauseRollout ({reason?})
 *   POST   …/products/:product/updates/:version/resume   resumeRollout
 *   POST   …/products/:product/updates/:version/advance  advanceRollout ({force?})
 *   POST   …/products/:product/updates/:version/retry-failed  retryFailed
 *   GET    …/products/:product/stats, …/updates/:version/failures|devices   see routes-fleet.ts
 *   GET    …/tokens?product=P                            listTokens
 *   POST   …/tokens                                      createToken
 *   DELETE …/tokens/:id                                  revokeToken
 * and the device list, device history and policy dry run in console/routes-devices.ts.
 */
import {
  advanceRollout,
  checkPolicy,
  createToken,
  deleteUpdate,
  disableUpdate,
  editUpdate,
  enableUpdate,
  generateKeys,
  listTokens,
  listUpdates,
  type NamedCloud,
  pauseRollout,
  phaseStatusOf,
  publish,
  readSigningKey,
  resumeRollout,
  retryFailed,
  revokeToken,
  showUpdate,
} from '#admin/index.ts';
import type { ApiSession, PublishSettings, UpdateRecord, UpdateView } from './api-types.ts';
import { CloudNotFoundError } from './errors.ts';
import {
  contentLength,
  type JsonObject,
  onlyFields,
  optionalBoolean,
  optionalNumber,
  optionalNumberOrNull,
  optionalString,
  optionalStringOrNull,
  queryJson,
  readJson,
  requiredString,
} from './request.ts';
import { created, ok, type Route } from './router.ts';
import { deviceRoutes } from './routes-devices.ts';
import { fleetViewRoutes } from './routes-fleet.ts';

export interface ApiOptions {
  /** The clouds served, by name; the page names one in every cloud route. */
  readonly clouds: readonly NamedCloud[];
  /** The product the page opens with (the local cloud's development product). */
  readonly defaultProduct: string;
}

const LIMIT_FIELDS = ['percentage', 'limit', 'rate', 'period', 'abortThreshold', 'abortMin'] as const;
const PUBLISH_FIELDS = [
  'version',
  'name',
  'policy',
  'description',
  'allowDowngrade',
  'disabled',
  'signKey',
  'phases',
  'gate',
  'startAt',
  ...LIMIT_FIELDS,
];
const EDIT_FIELDS = ['policy', 'description', 'phases', 'gate', 'startAt', ...LIMIT_FIELDS];

function publishSettings(settings: JsonObject): PublishSettings {
  onlyFields(settings, PUBLISH_FIELDS);
  const out: Record<string, unknown> = {
    version: requiredString(settings, 'version'),
    name: requiredString(settings, 'name'),
  };
  for (const field of ['policy', 'description', 'signKey', 'phases', 'gate', 'startAt'] as const)
    out[field] = optionalString(settings, field);
  for (const field of ['allowDowngrade', 'disabled'] as const) out[field] = optionalBoolean(settings, field);
  for (const field of LIMIT_FIELDS) out[field] = optionalNumber(settings, field);
  return withoutUndefined(out) as unknown as PublishSettings;
}

function editChanges(body: JsonObject): Record<string, string | number | null> {
  onlyFields(body, EDIT_FIELDS);
  const out: Record<string, unknown> = {
    policy: optionalString(body, 'policy'),
    description: optionalString(body, 'description'),
  };
  // null removes phases, gate or start time, as it removes a limit.
  for (const field of ['phases', 'gate', 'startAt'] as const) out[field] = optionalStringOrNull(body, field);
  for (const field of LIMIT_FIELDS) out[field] = optionalNumberOrNull(body, field);
  return withoutUndefined(out) as Record<string, string | number | null>;
}

function withoutUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

type Params = Readonly<Record<string, string>>;
/** The cloud a route's `:cloud` names. */
export type CloudOf = (params: Params) => NamedCloud;

const CLOUD_PREFIX = '/api/clouds/:cloud';

const update = (params: Readonly<Record<string, string>>) => ({
  product: params.product ?? '',
  version: params.version ?? '',
});

/** An update as the page shows it: with where its phases stand now (computed, never stored). */
function view(update: UpdateRecord): UpdateView {
  const phaseStatus = phaseStatusOf(update, Date.now());
  return phaseStatus ? { ...update, phaseStatus } : update;
}

/** Published updates: list, publish, show, edit, delete, enable, disable. */
function updateRoutes(cloudOf: CloudOf): Route[] {
  return [
    {
      method: 'GET',
      path: `${CLOUD_PREFIX}/products/:product/updates`,
      handle: async ({ params }) => ok((await listUpdates(cloudOf(params), params.product ?? '')).map(view)),
    },
    {
      method: 'POST',
      path: `${CLOUD_PREFIX}/products/:product/updates`,
      handle: async ({ req, url, params }) => {
        const cloud = cloudOf(params);
        const { name, signKey, ...settings } = publishSettings(queryJson(url, 'settings'));
        const size = contentLength(req);
        // The key is a path on this machine, read here like the CLI's --sign-key; it never reaches the page.
        const signKeyPem = signKey ? readSigningKey(signKey) : undefined;
        const input = {
          ...settings,
          ...(signKeyPem !== undefined ? { signKeyPem } : {}),
          product: params.product ?? '',
          stream: req,
          name,
          size,
        };
        return created(await publish(cloud, input));
      },
    },
    {
      method: 'GET',
      path: `${CLOUD_PREFIX}/products/:product/updates/:version`,
      handle: async ({ params }) => ok(view(await showUpdate(cloudOf(params), update(params)))),
    },
    {
      method: 'PATCH',
      path: `${CLOUD_PREFIX}/products/:product/updates/:version`,
      handle: async ({ req, params }) =>
        ok(view(await editUpdate(cloudOf(params), update(params), editChanges(await readJson(req))))),
    },
    {
      method: 'DELETE',
      path: `${CLOUD_PREFIX}/products/:product/updates/:version`,
      handle: async ({ params }) => ok(await deleteUpdate(cloudOf(params), update(params))),
    },
    {
      method: 'POST',
      path: `${CLOUD_PREFIX}/products/:product/updates/:version/enable`,
      handle: async ({ params }) => ok(view(await enableUpdate(cloudOf(params), update(params)))),
    },
    {
      method: 'POST',
      path: `${CLOUD_PREFIX}/products/:product/updates/:version/disable`,
      handle: async ({ params }) => ok(view(await disableUpdate(cloudOf(params), update(params)))),
    },
  ];
}

/** Rollout control (DESIGN §12): the same operations as `updraft rollout`. */
function rolloutRoutes(cloudOf: CloudOf): Route[] {
  const action = `${CLOUD_PREFIX}/products/:product/updates/:version`;
  return [
    {
      method: 'POST',
      path: `${action}/pause`,
      handle: async ({ req, params }) => {
        const body = await readJson(req);
        onlyFields(body, ['reason']);
        return ok(await pauseRollout(cloudOf(params), update(params), optionalString(body, 'reason')));
      },
    },
    {
      method: 'POST',
      path: `${action}/resume`,
      handle: async ({ params }) => ok(await resumeRollout(cloudOf(params), update(params))),
    },
    {
      method: 'POST',
      path: `${action}/advance`,
      handle: async ({ req, params }) => {
        const body = await readJson(req);
        onlyFields(body, ['force']);
        const force = optionalBoolean(body, 'force') ?? false;
        return ok(await advanceRollout(cloudOf(params), update(params), { force }));
      },
    },
    {
      method: 'POST',
      path: `${action}/retry-failed`,
      handle: async ({ params }) => ok(await retryFailed(cloudOf(params), update(params))),
    },
  ];
}

/** What the fleet looks like and what a policy would do. */
function fleetRoutes({ clouds, defaultProduct }: ApiOptions): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/session',
      handle: async () => ok({ clouds: clouds.map((c) => c.name), defaultProduct } satisfies ApiSession),
    },
    {
      method: 'POST',
      path: '/api/keys',
      // Never written to a file by the console: the page shows the private key once, then forgets it.
      handle: async () => created(generateKeys()),
    },
    {
      method: 'POST',
      path: '/api/policy/check',
      handle: async ({ req }) => {
        const body = await readJson(req);
        onlyFields(body, ['policy', 'newVersion', 'device']);
        const newVersion = optionalString(body, 'newVersion');
        // Device properties only: a `file` would make the console read files of the server's host.
        const device = body.device === undefined ? undefined : { properties: body.device };
        return ok(
          await checkPolicy({
            policy: requiredString(body, 'policy'),
            ...(newVersion !== undefined ? { newVersion } : {}),
            ...(device ? { device } : {}),
          }),
        );
      },
    },
  ];
}

/** Device tokens: list, create (the secret in the answer, once), revoke. */
function tokenRoutes(cloudOf: CloudOf): Route[] {
  return [
    {
      method: 'GET',
      path: `${CLOUD_PREFIX}/tokens`,
      handle: async ({ url, params }) =>
        ok(await listTokens(cloudOf(params), url.searchParams.get('product') ?? undefined)),
    },
    {
      method: 'POST',
      path: `${CLOUD_PREFIX}/tokens`,
      handle: async ({ req, params }) => {
        const body = await readJson(req);
        onlyFields(body, ['product', 'device', 'description']);
        const device = optionalString(body, 'device');
        const description = optionalString(body, 'description');
        const scope = {
          product: requiredString(body, 'product'),
          ...(device !== undefined ? { device } : {}),
          ...(description !== undefined ? { description } : {}),
        };
        return created(await createToken(cloudOf(params), scope));
      },
    },
    {
      method: 'DELETE',
      path: `${CLOUD_PREFIX}/tokens/:id`,
      handle: async ({ params }) => ok(await revokeToken(cloudOf(params), params.id ?? '')),
    },
  ];
}

/** The routes over the admin operations of the clouds served. */
export function apiRoutes(options: ApiOptions): Route[] {
  const byName = new Map(options.clouds.map((c) => [c.name, c]));
  const cloudOf: CloudOf = (params) => {
    const name = params.cloud ?? '';
    const cloud = byName.get(name);
    if (!cloud) throw new CloudNotFoundError(name, [...byName.keys()]);
    return cloud;
  };
  return [
    ...fleetRoutes(options),
    ...updateRoutes(cloudOf),
    ...rolloutRoutes(cloudOf),
    ...tokenRoutes(cloudOf),
    ...fleetViewRoutes(cloudOf),
    ...deviceRoutes(cloudOf),
  ];
}
