/**
 * The device-facing HTTP app (DESIGN §2): `(AppRequest) → AppResponse`, served unchanged by the
 * Lambda entries and by the local server. Errors become responses here and nowhere else.
 */
import { parseCheckin, parseReport } from '#core/device.ts';
import { PayloadTooLargeError, ValidationError } from '#core/errors.ts';
import { baseUpdateId, offeredUpdateId } from '#core/rollout.ts';
import type { DeviceReport, UpdateRecord } from '#core/types.ts';
import { deviceContext, quoteInput } from '#core/version.ts';
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

/**
 * The checkin and report handlers over one device store. A class so that each handler is a method of
 * its own; `createApp` below turns it into the `App` function the hosts serve.
 */
class DeviceApp {
  private readonly store: DeviceStore;
  private readonly presigner: Presigner | undefined;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly expiresSeconds: number;
  /** One presigned URL per update, reused while enough of its validity remains. */
  private readonly urls = new Map<string, { url: string; expiresAt: number }>();

  constructor(options: AppOptions) {
    this.store = options.store;
    this.presigner = options.presigner;
    this.metrics = options.metrics;
    this.log = options.log;
    this.now = options.now ?? Date.now;
    this.expiresSeconds = Math.min(options.urlExpiresSeconds ?? 3600, 3600);
  }

  private imageUrl(update: UpdateRecord, at: number): string {
    const cached = this.urls.get(update.id);
    if (
      cached &&
      cached.expiresAt - at >= Math.min(CACHE_LIFETIMES.urlMinRemainingMs, (this.expiresSeconds * 1000) / 2)
    ) {
      return cached.url;
    }
    if (!this.presigner) throw new Error('No image bucket configured: this function serves reports only');
    const url = this.presigner.presignGet(update.key, this.expiresSeconds, at);
    this.urls.set(update.id, { url, expiresAt: at + this.expiresSeconds * 1000 });
    return url;
  }

  private async authorize(request: AppRequest): Promise<TokenScope> {
    const token = tokenOf(request.headers);
    if (!token) throw new AuthenticationError();
    const scope = await this.store.tokens.scopeOf(token);
    if (!scope) throw new AuthenticationError();
    return scope;
  }

  async checkin(request: AppRequest): Promise<AppResponse> {
    const scope = await this.authorize(request);
    const device = parseCheckin(request.body);
    if (device.product !== scope.product)
      throw new ForbiddenError(`Token not valid for product ${quoteInput(device.product)}`);
    if (scope.device !== undefined && scope.device !== device.id) {
      throw new ForbiddenError(`Token not valid for device ${quoteInput(device.id)}`);
    }
    const at = this.now();
    this.metrics.count(device.product, 'UpdateRequests');
    // The registry write runs beside selection; it is awaited on every path, and an early throw
    // below must not leave its rejection unhandled (that would crash a Lambda runtime).
    const registered = this.store.registry.record(device);
    registered.catch(() => {});
    const updates = await this.store.catalog.updatesOf(device.product);
    const candidate = findCandidate(updates, device, deviceContext(device), () =>
      this.metrics.count(device.product, 'PolicyErrors'),
    );
    if (!candidate) {
      await registered;
      return json({});
    }
    // Presign before granting: a presigning failure must not leave a device counted as started.
    const url = this.imageUrl(candidate, at);
    // A phased update admits the current phase's share of devices; the ledger counts what it
    // answers (a start or a deferral).
    const admitting = this.store.phases.admitting(candidate, at);
    const [grant] = await Promise.all([
      admitting.then((offered) => this.store.rollout.admit(offered, device.id, at)),
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

  async report(request: AppRequest): Promise<AppResponse> {
    const scope = await this.authorize(request);
    const reported = parseReport(request.body);
    // An id offered again by `rollout retry-failed` names the same update.
    const body = { ...reported, update: baseUpdateId(reported.update) };
    if (scope.device !== undefined && scope.device !== body.id) {
      throw new ForbiddenError(`Token not valid for device ${quoteInput(body.id)}`);
    }
    // Errors name the id as the device sent it (suffix included), cut as all echoed input is.
    const unknown = () => new NotFoundError(`Unknown update ${quoteInput(reported.update)}`);
    const update = await this.store.catalog.get(scope.product, body.update);
    if (!update) throw unknown();
    // Only devices that were offered the update report on it, each with one outcome, so reports
    // alone cannot trip auto-abort. (A product token may still check in as any device id: a shared
    // product token is that; device-scoped tokens are the remedy, see the README.)
    const notOffered = () =>
      new ForbiddenError(
        `Update ${quoteInput(reported.update)} was not offered to device ${quoteInput(body.id)}`,
      );
    if (!(await this.store.rollout.hasGrant(update.id, body.id))) throw notOffered();
    const success = outcomeOf(body);
    const recorded = await this.store.reports.record(update, body, success);
    if (recorded === 'not-granted') throw notOffered();
    if (recorded === 'deleted') throw unknown();
    if (recorded === 'unchanged' || success === undefined) return json({});
    this.metrics.count(update.product, success ? 'UpdateSuccess' : 'UpdateFailure', 1, update.id);
    if (success)
      await this.store.registry.recordAppliedVersion(update.product, body.id, body.version ?? update.version);
    else await this.autoAbort(update);
    return json({});
  }

  /** Pauses the update once failures reach its threshold among the devices that reported an outcome. */
  private async autoAbort(update: UpdateRecord): Promise<void> {
    const { abortThreshold, abortMin } = update;
    if (abortThreshold === undefined || abortMin === undefined) return;
    const counters = await this.store.reports.countersOf(update);
    if (!counters) return;
    const reports = counters.success + counters.failure;
    if (reports >= abortMin && counters.failure * 100 >= abortThreshold * reports) {
      const reason = `auto-aborted: ${counters.failure} of ${reports} reports failed (threshold ${abortThreshold}%)`;
      if (await this.store.catalog.pause(update, reason))
        this.log.warn('update paused', { update: update.id, reason });
    }
  }

  toResponse(err: unknown, request: AppRequest): AppResponse {
    if (err instanceof HttpError) return text(err.status, err.message, err.headers);
    if (err instanceof PayloadTooLargeError) return text(413, err.message);
    if (err instanceof ValidationError) return text(400, err.message);
    if (err instanceof StoreUnavailableError) {
      this.log.error('store unavailable', { path: request.path, error: err });
      return text(503, 'Service unavailable, retry later', { 'retry-after': RETRY_AFTER_SECONDS });
    }
    this.log.error('internal error', { path: request.path, error: err });
    return text(500, 'Internal error');
  }
}

export function createApp(options: AppOptions): App {
  const app = new DeviceApp(options);
  const routes: Record<string, (request: AppRequest) => Promise<AppResponse>> = {
    [CHECKIN_PATH]: (request) => app.checkin(request),
    [REPORT_PATH]: (request) => app.report(request),
  };

  return async function serve(request) {
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
      return app.toResponse(err, request);
    }
  };
}
