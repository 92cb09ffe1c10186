/**
 * The console's JSON API: every route reads its input, calls ONE admin operation and returns its
 * typed result. No business logic here (STYLE habit 12): validation of meaning, storage and the
 * errors' statuses all belong to admin/.
 *
 *   GET    /api/session                                  cloud name and default product
 *   GET    /api/products/:product/updates                listUpdates
 *   POST   /api/products/:product/updates?settings=JSON  publish (the body is the image)
 *   GET    /api/products/:product/updates/:version       showUpdate
 *   PATCH  /api/products/:product/updates/:version       editUpdate
 *   DELETE /api/products/:product/updates/:version       deleteUpdate
 *   POST   /api/products/:product/updates/:version/enable   enableUpdate
 *   POST   /api/products/:product/updates/:version/disable  disableUpdate
 *   GET    /api/products/:product/stats?days=N           productStats
 *   POST   /api/policy/check                             checkPolicy (no dry run over the registry)
 *   GET    /api/tokens?product=P                         listTokens
 *   POST   /api/tokens                                   createToken
 *   DELETE /api/tokens/:id                               revokeToken
 */
import {
  checkPolicy,
  createToken,
  deleteUpdate,
  disableUpdate,
  editUpdate,
  enableUpdate,
  listTokens,
  listUpdates,
  type NamedCloud,
  productStats,
  publish,
  revokeToken,
  showUpdate,
} from '#admin/index.ts';
import type { ApiSession, PublishSettings } from './api-types.ts';
import { BadRequestError } from './errors.ts';
import {
  contentLength,
  type JsonObject,
  onlyFields,
  optionalBoolean,
  optionalNumber,
  optionalNumberOrNull,
  optionalString,
  queryJson,
  readJson,
  requiredString,
} from './request.ts';
import { created, ok, type Route } from './router.ts';

export interface ApiOptions {
  readonly cloud: NamedCloud;
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
  ...LIMIT_FIELDS,
];
const EDIT_FIELDS = ['policy', 'description', ...LIMIT_FIELDS];

function publishSettings(settings: JsonObject): PublishSettings {
  onlyFields(settings, PUBLISH_FIELDS);
  const out: Record<string, unknown> = {
    version: requiredString(settings, 'version'),
    name: requiredString(settings, 'name'),
  };
  for (const field of ['policy', 'description'] as const) out[field] = optionalString(settings, field);
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
  for (const field of LIMIT_FIELDS) out[field] = optionalNumberOrNull(body, field);
  return withoutUndefined(out) as Record<string, string | number | null>;
}

function withoutUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

function days(url: URL): number | undefined {
  const text = url.searchParams.get('days');
  if (text === null) return undefined;
  if (!/^\d{1,4}$/.test(text))
    throw new BadRequestError(`Invalid days "${text}": use a whole number of days`);
  return Number(text);
}

const update = (params: Readonly<Record<string, string>>) => ({
  product: params.product ?? '',
  version: params.version ?? '',
});

/** Published updates: list, publish, show, edit, delete, enable, disable. */
function updateRoutes(cloud: NamedCloud): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/products/:product/updates',
      handle: async ({ params }) => ok(await listUpdates(cloud, params.product ?? '')),
    },
    {
      method: 'POST',
      path: '/api/products/:product/updates',
      handle: async ({ req, url, params }) => {
        const { name, ...settings } = publishSettings(queryJson(url, 'settings'));
        const size = contentLength(req);
        const input = { ...settings, product: params.product ?? '', stream: req, name, size };
        return created(await publish(cloud, input));
      },
    },
    {
      method: 'GET',
      path: '/api/products/:product/updates/:version',
      handle: async ({ params }) => ok(await showUpdate(cloud, update(params))),
    },
    {
      method: 'PATCH',
      path: '/api/products/:product/updates/:version',
      handle: async ({ req, params }) =>
        ok(await editUpdate(cloud, update(params), editChanges(await readJson(req)))),
    },
    {
      method: 'DELETE',
      path: '/api/products/:product/updates/:version',
      handle: async ({ params }) => ok(await deleteUpdate(cloud, update(params))),
    },
    {
      method: 'POST',
      path: '/api/products/:product/updates/:version/enable',
      handle: async ({ params }) => ok(await enableUpdate(cloud, update(params))),
    },
    {
      method: 'POST',
      path: '/api/products/:product/updates/:version/disable',
      handle: async ({ params }) => ok(await disableUpdate(cloud, update(params))),
    },
  ];
}

/** What the fleet looks like and what a policy would do. */
function fleetRoutes({ cloud, defaultProduct }: ApiOptions): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/session',
      handle: async () => ok({ cloud: cloud.name, defaultProduct } satisfies ApiSession),
    },
    {
      method: 'GET',
      path: '/api/products/:product/stats',
      handle: async ({ url, params }) => ok(await productStats(cloud, params.product ?? '', days(url))),
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
function tokenRoutes(cloud: NamedCloud): Route[] {
  return [
    {
      method: 'GET',
      path: '/api/tokens',
      handle: async ({ url }) => ok(await listTokens(cloud, url.searchParams.get('product') ?? undefined)),
    },
    {
      method: 'POST',
      path: '/api/tokens',
      handle: async ({ req }) => {
        const body = await readJson(req);
        onlyFields(body, ['product', 'device', 'description']);
        const device = optionalString(body, 'device');
        const description = optionalString(body, 'description');
        const scope = {
          product: requiredString(body, 'product'),
          ...(device !== undefined ? { device } : {}),
          ...(description !== undefined ? { description } : {}),
        };
        return created(await createToken(cloud, scope));
      },
    },
    {
      method: 'DELETE',
      path: '/api/tokens/:id',
      handle: async ({ params }) => ok(await revokeToken(cloud, params.id ?? '')),
    },
  ];
}

/** The routes over one cloud's admin operations. */
export function apiRoutes(options: ApiOptions): Route[] {
  return [...fleetRoutes(options), ...updateRoutes(options.cloud), ...tokenRoutes(options.cloud)];
}
