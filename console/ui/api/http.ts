/**
 * The page's one way to talk to the console server: same-origin JSON requests (the cookie goes
 * along by itself), failures as ApiErrors carrying the server's one line and, for a policy, its column.
 */
import type { ApiError as ApiErrorBody } from '../../api-types.ts';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly column?: number,
  ) {
    super(message);
  }
}

async function errorOf(res: Response): Promise<ApiError> {
  try {
    const body = (await res.json()) as ApiErrorBody;
    return new ApiError(res.status, body.error, body.column);
  } catch {
    return new ApiError(res.status, `The console answered HTTP ${res.status}`);
  }
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      ...(body === undefined
        ? {}
        : { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }),
    });
  } catch {
    throw new ApiError(0, 'The console server cannot be reached: is npm start still running?');
  }
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

export interface UploadProgress {
  readonly sent: number;
  readonly total: number;
  /** Bytes per second since the upload started. */
  readonly rate: number;
}

/**
 * POSTs a file as the request body, reporting progress. fetch() has no upload progress in
 * browsers yet, so this one request uses XMLHttpRequest.
 */
export function upload<T>(path: string, file: Blob, onProgress: (p: UploadProgress) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const started = performance.now();
    xhr.open('POST', path);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.onprogress = (event) => {
      const seconds = Math.max((performance.now() - started) / 1000, 0.001);
      onProgress({ sent: event.loaded, total: event.total, rate: event.loaded / seconds });
    };
    xhr.onload = () => {
      let body: unknown;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        return reject(new ApiError(xhr.status, `The console answered HTTP ${xhr.status}`));
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(body as T);
      const { error, column } = body as ApiErrorBody;
      reject(new ApiError(xhr.status, error, column));
    };
    xhr.onerror = () => reject(new ApiError(0, 'The upload was cut off: is npm start still running?'));
    xhr.send(file);
  });
}

export const segment = (text: string) => encodeURIComponent(text);

/** Where a cloud's routes live: every call about updates, tokens or stats names its cloud. */
export const cloudPath = (cloud: string) => `/api/clouds/${segment(cloud)}`;
