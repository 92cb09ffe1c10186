/**
 * The device side of DESIGN §2: checkin and report against an Updraft device cloud or the EmbedThis
 * Builder. Answers are validated here, so the rest of the agent only sees well-formed offers.
 */
import { isValidId } from '#core/device.ts';
import type { DeviceObject } from '#core/types.ts';
import { isSemver } from '#core/version.ts';
import { TransientError } from './errors.ts';
import { type PostOptions, postJson } from './http.ts';
import type { ProxySettings } from './proxy.ts';
import type { Offer, ReportRecord } from './state.ts';

export interface CheckinAnswer {
  /** Absent when the cloud has no update for this device. */
  readonly offer?: Offer;
  /** Seconds until the next checkin, when the cloud asks for one. */
  readonly nextCheckin?: number;
}

export interface ReportBody extends ReportRecord {
  /** The device id. */
  readonly id: string;
}

const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

export class CloudClient {
  constructor(
    private readonly api: string,
    private readonly token: string,
    private readonly timeoutMs = 30_000,
    /** Proxies (AgentConfig.proxy); by default this process's proxy variables (proxy.ts). */
    private readonly proxy?: ProxySettings,
  ) {}

  async checkin(body: DeviceObject, signal?: AbortSignal): Promise<CheckinAnswer> {
    const answer = await postJson(`${this.api}/tok/provision/update`, this.token, body, this.options(signal));
    return parseCheckinAnswer(answer);
  }

  async report(body: ReportBody, signal?: AbortSignal): Promise<void> {
    await postJson(`${this.api}/tok/provision/updateReport`, this.token, body, this.options(signal));
  }

  private options(signal: AbortSignal | undefined): PostOptions {
    return {
      timeoutMs: this.timeoutMs,
      ...(signal ? { signal } : {}),
      ...(this.proxy ? { proxy: this.proxy } : {}),
    };
  }
}

/** Numbers may arrive as strings from Ioto-era servers; accept both, refuse anything else. */
function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^\d+(\.\d+)?$/.test(value)) return Number(value);
  return undefined;
}

function invalid(field: string, rule: string): TransientError {
  return new TransientError(`Invalid checkin answer: "${field}" ${rule}`);
}

/** A checkin answer → CheckinAnswer. A malformed offer is a cloud fault, retried like a network error. */
export function parseCheckinAnswer(answer: unknown): CheckinAnswer {
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
    throw new TransientError('Invalid checkin answer: not a JSON object');
  }
  const a = answer as Record<string, unknown>;
  let nextCheckin: number | undefined;
  if (a.nextCheckin !== undefined && a.nextCheckin !== null) {
    nextCheckin = toNumber(a.nextCheckin);
    if (nextCheckin === undefined || nextCheckin < 0)
      throw invalid('nextCheckin', 'must be a number of seconds');
  }
  const schedule = nextCheckin === undefined ? {} : { nextCheckin };
  if (a.url === undefined || a.url === null || a.url === '') return schedule;

  if (typeof a.url !== 'string' || !/^https?:\/\//.test(a.url))
    throw invalid('url', 'must be an http(s) URL');
  if (typeof a.checksum !== 'string' || !SHA256_HEX.test(a.checksum)) {
    throw invalid('checksum', 'must be a sha256 in hex');
  }
  if (typeof a.update !== 'string' || !isValidId(a.update)) throw invalid('update', 'must be an update id');
  if (typeof a.version !== 'string' || !isSemver(a.version)) throw invalid('version', 'must be SemVer 2.0');
  const size = toNumber(a.size);
  if (size === undefined || !Number.isSafeInteger(size) || size < 0) {
    throw invalid('size', 'must be a number of bytes');
  }
  if (a.signature !== undefined && a.signature !== null && typeof a.signature !== 'string') {
    throw invalid('signature', 'must be a string');
  }
  const offer: Offer = {
    update: a.update,
    version: a.version,
    url: a.url,
    checksum: a.checksum.toLowerCase(),
    size,
    ...(typeof a.signature === 'string' && a.signature !== '' ? { signature: a.signature } : {}),
  };
  return { ...schedule, offer };
}
