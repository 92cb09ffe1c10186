/**
 * The console's device routes (DESIGN §10, §11): the device list, one device's history, and the
 * dry run of a policy over a product's registry ("would match N of M"). Each calls ONE admin
 * operation (STYLE habit 12); admin/ checks the meaning and bounds every read of the registry.
 *
 *   GET  …/products/:product/devices?id=&version=&where=&limit=&next=   listDevices (one page)
 *   GET  …/products/:product/devices/:id                                 showDevice
 *   POST …/products/:product/policy/match  {policy, newVersion?, next?}  checkPolicy with a dry run
 */
import { checkPolicy, type DeviceQuery, listDevices, showDevice } from '#admin/index.ts';
import { BadRequestError } from './errors.ts';
import { onlyFields, optionalString, readJson, requiredString } from './request.ts';
import { ok, type Route } from './router.ts';
import type { CloudOf } from './routes.ts';

const PRODUCT = '/api/clouds/:cloud/products/:product';
const QUERY_FIELDS = ['id', 'version', 'where', 'limit', 'next'] as const;

/** The list's filters from the query string; admin/ checks each value, this only reads them. */
function deviceQuery(product: string, url: URL): DeviceQuery {
  const params = url.searchParams;
  const unknown = [...params.keys()].find((name) => !(QUERY_FIELDS as readonly string[]).includes(name));
  if (unknown !== undefined)
    throw new BadRequestError(
      `Unknown query parameter "${unknown.slice(0, 40)}": use ${QUERY_FIELDS.join(', ')}`,
    );
  const text = (name: (typeof QUERY_FIELDS)[number]) => params.get(name) ?? undefined;
  const limit = text('limit');
  if (limit !== undefined && !/^\d{1,4}$/.test(limit))
    throw new BadRequestError(`Invalid limit "${limit.slice(0, 20)}": use a whole number of devices`);
  // An empty search or filter means none (a link or a script may send ?where= with nothing).
  const given = (name: 'id' | 'version' | 'where' | 'next') => {
    const value = text(name);
    return value === undefined || value.trim() === '' ? undefined : value;
  };
  const idPrefix = given('id');
  const version = given('version');
  const where = given('where');
  const next = given('next');
  return {
    product,
    ...(idPrefix !== undefined ? { idPrefix } : {}),
    ...(version !== undefined ? { version } : {}),
    ...(where !== undefined ? { where } : {}),
    ...(next !== undefined ? { next } : {}),
    ...(limit !== undefined ? { limit: Number(limit) } : {}),
  };
}

export function deviceRoutes(cloudOf: CloudOf): Route[] {
  return [
    {
      method: 'GET',
      path: `${PRODUCT}/devices`,
      handle: async ({ url, params }) =>
        ok(await listDevices(cloudOf(params), deviceQuery(params.product ?? '', url))),
    },
    {
      method: 'GET',
      path: `${PRODUCT}/devices/:id`,
      handle: async ({ params }) =>
        ok(await showDevice(cloudOf(params), { product: params.product ?? '', id: params.id ?? '' })),
    },
    {
      method: 'POST',
      path: `${PRODUCT}/policy/match`,
      handle: async ({ req, params }) => {
        const cloud = cloudOf(params);
        const body = await readJson(req);
        onlyFields(body, ['policy', 'newVersion', 'next']);
        const newVersion = optionalString(body, 'newVersion');
        const next = optionalString(body, 'next');
        const request = {
          policy: requiredString(body, 'policy'),
          product: params.product ?? '',
          ...(newVersion !== undefined ? { newVersion } : {}),
          // The admin's bounds hold (10,000 devices or 5 s per call); `next` resumes a cut scan.
          ...(next !== undefined ? { scan: { next } } : {}),
        };
        return ok(await checkPolicy(request, async () => cloud));
      },
    },
  ];
}
