/**
 * The device-facing HTTP app (DESIGN §2): `(AppRequest) → AppResponse`, served unchanged by the
 * Lambda entries and by the local server. Errors become responses here and nowhere else.
 */
import { parseCheckin, parseReport } from '#core/device.ts';
import { PayloadTooLargeError, ValidationError } from '#core/errors.ts';
import { baseUpdateId, offeredUpdateId } from '#core/rollout.ts';
import type { DeviceReport, UpdateRecord } from '#core/types.ts';
import { deviceContext } from '#core/version.ts';
import { CACHE_LIFETIMES } from './config.ts';
import type { DeviceStore, TokenScope } from './device-store.ts';
import {
  AuthenticationError,
  ForbiddenError,
  HttpError,
  NotFoundError,
  StoreUnavailableError,
} from './errors.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';
import type { Presigner } from './presign.ts';
import { findCandidate } from './selection.ts';

export const CHECKIN_PATH = '/tok/provision/update';
export const REPORT_PATH = '/tok/provision/updateReport';

export interface AppRequest {
  readonly method: string;
  readonly path: string;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: Uint8Array;
}

export interface AppResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export type App = (request: AppRequest) => Promise<AppResponse>;

export interface AppOptions {
  readonly store: DeviceStore;
  /** Absent in the report function, which serves no images. */
  readonly presigner?: Presigner;
  /** Requests, policy errors and outcomes are counted here, starts and deferrals by the rollout ledger; the host flushes them (per invocation in Lambda, on a timer locally). */
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Presigned URL lifetime; DESIGN §2 caps it at 3600 s. */
  readonly urlExpiresSeconds?: number;
  readonly now?: () => number;
}

const JSON_HEADERS = { 'content-type': 'application/json' } as const;
const TEXT_HEADERS = { 'content-type': 'text/plain; charset=utf-8' } as const;
const RETRY_AFTER_SECONDS = '5';
/** Media types existing clients send: JSON, curl's default form type, and plain text. */
const ACCEPTED_TYPES = /^\s*(application\/json|application\/x-www-form-urlencoded|text\/plain)\s*(;|$)/i;

function json(body: unknown): AppResponse {
  return { status: 200, headers: JSON_HEADERS, body: JSON.stringify(body) };
}

function text(status: number, message: string, headers: Record<string, string> = {}): AppResponse {
  return { status, headers: { ...TEXT_HEADERS, ...headers }, body: `${message}\n` };
}

/** `Authorization: <token>`, `Authorization: Bearer <token>` (any case) or `X-Token: <token>`. */
export function tokenOf(headers: AppRequest['headers']): string | undefined {
  const auth = headers.authorization?.trim();
  if (auth) {
    const bearer = /^bearer\s+(\S+)$/i.exec(auth);
    return bearer ? bearer[1] : auth;
  }
  return headers['x-token']?.trim() || undefined;
}

function outcomeOf(report: DeviceReport): boolean | undefined {
  if (report.status === 'applied') return true;
  if (report.status === 'failed' || report.status === 'rejected') return false;
  return undefined; // downloaded / verified: progress, not an outcome
}

export function createApp(options: AppOptions): App {
  const { store, presigner, metrics, log } = options;
  const now = options.now ?? Date.now;
  const expiresSeconds = Math.min(options.urlExpiresSeconds ?? 3600, 3600);
  const urls = new Map<string, { url: string; expiresAt: number }>();

  function imageUrl(update: UpdateRecord, at: number): string {
    const cached = urls.get(update.id);
    if (
      cached &&
      cached.expiresAt - at >= Math.min(CACHE_LIFETIMES.urlMinRemainingMs, (expiresSeconds * 1000) / 2)
    ) {
      return cached.url;
    }
    if (!presigner) throw new Error('No image bucket configured: this function serves reports only');
    const url = presigner.presignGet(update.key, expiresSeconds, at);
    urls.set(update.id, { url, expiresAt: at + expiresSeconds * 1000 });
    return url;
  }

  async function authorize(request: AppRequest): Promise<TokenScope> {
    const token = tokenOf(request.headers);
    if (!token) throw new AuthenticationError();
    const scope = await store.tokens.scopeOf(token);
    if (!scope) throw new AuthenticationError();
    return scope;
  }

  async function checkin(request: AppRequest): Promise<AppResponse> {
    const scope = await authorize(request);
    const device = parseCheckin(request.body);
    if (device.product !== scope.product)
      throw new ForbiddenError(`Token not valid for product "${device.product}"`);
    if (scope.device !== undefined && scope.device !== device.id) {
      throw new ForbiddenError(`Token not valid for device "${device.id}"`);
    }
    const at = now();
    metrics.count(device.product, 'UpdateRequests');
    // The registry write runs beside selection; it is awaited on every path, and an early throw
    // below must not leave its rejection unhandled (that would crash a Lambda runtime).
    const registered = store.registry.record(device);
    registered.catch(() => {});
    const updates = await store.catalog.updatesOf(device.product);
    const candidate = findCandidate(updates, device, deviceContext(device), () =>
      metrics.count(device.product, 'PolicyErrors'),
    );
    if (!candidate) {
      await registered;
      return json({});
    }
    // Presign before granting: a presigning failure must not leave a device counted as started.
    const url = imageUrl(candidate, at);
    // A phased update admits the current phase's share of devices; the ledger counts what it
    // answers (a start or a deferral).
    const admitting = store.phases.admitting(candidate, at);
    const [grant] = await Promise.all([
      admitting.then((offered) => store.rollout.admit(offered, device.id, at)),
      registered,
    ]);
    if (!grant.granted) return json({});
    return json({
      url,
      checksum: candidate.checksum,
      update: offeredUpdateId(candidate.id, candidate.retry),
      version: candidate.version,
      size: candidate.size,
      ...(candidate.signature ? { signature: candidate.signature } : {}),
    });
  }

  async function report(request: AppRequest): Promise<AppResponse> {
    const scope = await authorize(request);
    const reported = parseReport(request.body);
    // An id offered again by `rollout retry-failed` names the same update.
    const body = { ...reported, update: baseUpdateId(reported.update) };
    if (scope.device !== undefined && scope.device !== body.id) {
      throw new ForbiddenError(`Token not valid for device "${body.id}"`);
    }
    const update = await store.catalog.get(scope.product, body.update);
    if (!update) throw new NotFoundError(`Unknown update "${body.update}"`);
    // Only devices that were offered the update report on it, each with one outcome, so reports
    // alone cannot trip auto-abort. (A product token may still check in as any device id: a shared
    // product token is that; device-scoped tokens are the remedy, see the README.)
    const notOffered = () =>
      new ForbiddenError(`Update "${body.update}" was not offered to device "${body.id}"`);
    if (!(await store.rollout.hasGrant(update.id, body.id))) throw notOffered();
    const success = outcomeOf(body);
    const recorded = await store.reports.record(update, body, success);
    if (recorded === 'not-granted') throw notOffered();
    if (recorded === 'deleted') throw new NotFoundError(`Unknown update "${body.update}"`);
    if (recorded === 'unchanged' || success === undefined) return json({});
    metrics.count(update.product, success ? 'UpdateSuccess' : 'UpdateFailure', 1, update.id);
    if (success)
      await store.registry.recordAppliedVersion(update.product, body.id, body.version ?? update.version);
    else await autoAbort(update);
    return json({});
  }

  /** Pauses the update once failures reach its threshold among the devices that reported an outcome. */
  async function autoAbort(update: UpdateRecord): Promise<void> {
    const { abortThreshold, abortMin } = update;
    if (abortThreshold === undefined || abortMin === undefined) return;
    const counters = await store.reports.countersOf(update);
    if (!counters) return;
    const reports = counters.success + counters.failure;
    if (reports >= abortMin && counters.failure * 100 >= abortThreshold * reports) {
      const reason = `auto-aborted: ${counters.failure} of ${reports} reports failed (threshold ${abortThreshold}%)`;
      if (await store.catalog.pause(update, reason)) log.warn('update paused', { update: update.id, reason });
    }
  }

  function toResponse(err: unknown, request: AppRequest): AppResponse {
    if (err instanceof HttpError) return text(err.status, err.message, err.headers);
    if (err instanceof PayloadTooLargeError) return text(413, err.message);
    if (err instanceof ValidationError) return text(400, err.message);
    if (err instanceof StoreUnavailableError) {
      log.error('store unavailable', { path: request.path, error: err });
      return text(503, 'Service unavailable, retry later', { 'retry-after': RETRY_AFTER_SECONDS });
    }
    log.error('internal error', { path: request.path, error: err });
    return text(500, 'Internal error');
  }

  const routes: Record<string, (request: AppRequest) => Promise<AppResponse>> = {
    [CHECKIN_PATH]: checkin,
    [REPORT_PATH]: report,
  };

  return async function app(request) {
    const route = Object.hasOwn(routes, request.path) ? routes[request.path] : undefined;
    if (!route) return text(404, `Not found: use POST ${CHECKIN_PATH} or POST ${REPORT_PATH}`);
    if (request.method !== 'POST') return text(405, 'Method not allowed: use POST', { allow: 'POST' });
    const type = request.headers['content-type'];
    if (type !== undefined && !ACCEPTED_TYPES.test(type)) {
      return text(415, 'Unsupported content type: send application/json');
    }
    try {
      return await route(request);
    } catch (err) {
      return toResponse(err, request);
    }
  };
}
