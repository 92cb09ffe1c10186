/**
 * The console's fleet views (DESIGN §10, §11): what the overview and an update's detail draw. Each
 * route reads its query, calls ONE admin operation and returns its typed result (STYLE habit 12).
 *
 *   GET …/products/:product/stats?days=N&hours=H                      productStats
 *   GET …/products/:product/updates/:version/failures                 updateFailures
 *   GET …/products/:product/updates/:version/devices?limit=N&next=C   updateDevices
 * (… is /api/clouds/:cloud)
 */
import { type NamedCloud, productStats, updateDevices, updateFailures } from '#admin/index.ts';
import { quoteInput } from '#core/version.ts';
import { BadRequestError } from './errors.ts';
import { ok, type Route } from './router.ts';

type Params = Readonly<Record<string, string>>;

const PRODUCT = '/api/clouds/:cloud/products/:product';

/** Refuses query parameters the route does not know, so a typo is not silently ignored. */
function onlyQuery(url: URL, known: readonly string[]): void {
  for (const name of url.searchParams.keys())
    if (!known.includes(name))
      throw new BadRequestError(
        `Unknown query parameter ${quoteInput(name)}: use ${known.length ? known.join(', ') : 'none'}`,
      );
}

/** A whole-number query parameter (the admin operation checks its range); undefined when absent. */
function wholeNumber(url: URL, name: string): number | undefined {
  const text = url.searchParams.get(name);
  if (text === null) return undefined;
  if (!/^\d{1,6}$/.test(text))
    throw new BadRequestError(`Invalid ${name} "${text.slice(0, 40)}": use a whole number`);
  return Number(text);
}

const selector = (params: Params) => ({ product: params.product ?? '', version: params.version ?? '' });

/** The fleet views' routes over the clouds `cloudOf` finds by name. */
export function fleetViewRoutes(cloudOf: (params: Params) => NamedCloud): Route[] {
  return [
    {
      method: 'GET',
      path: `${PRODUCT}/stats`,
      handle: async ({ url, params }) => {
        onlyQuery(url, ['days', 'hours']);
        const days = wholeNumber(url, 'days');
        const hours = wholeNumber(url, 'hours');
        const options = {
          ...(days !== undefined ? { days } : {}),
          ...(hours !== undefined ? { hours } : {}),
        };
        return ok(await productStats(cloudOf(params), params.product ?? '', options));
      },
    },
    {
      method: 'GET',
      path: `${PRODUCT}/updates/:version/failures`,
      handle: async ({ url, params }) => {
        onlyQuery(url, []);
        return ok(await updateFailures(cloudOf(params), selector(params)));
      },
    },
    {
      method: 'GET',
      path: `${PRODUCT}/updates/:version/devices`,
      handle: async ({ url, params }) => {
        onlyQuery(url, ['limit', 'next']);
        const limit = wholeNumber(url, 'limit');
        const next = url.searchParams.get('next');
        const page = {
          ...selector(params),
          ...(limit !== undefined ? { limit } : {}),
          ...(next !== null ? { next } : {}),
        };
        return ok(await updateDevices(cloudOf(params), page));
      },
    },
  ];
}
