/**
 * Reading what the page sends: a JSON body of bounded size, and typed fields out of it. Each
 * failure is a BadRequestError naming the field and what to send instead. The admin operations
 * check the meaning (a valid version, a limit ≥ 1); this only checks the shape.
 */
import type { IncomingMessage } from 'node:http';
import { BadRequestError } from './errors.ts';

export const MAX_JSON_BYTES = 64 * 1024;

export type JsonObject = Readonly<Record<string, unknown>>;

export async function readJson(req: IncomingMessage): Promise<JsonObject> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new BadRequestError(`Send the body as application/json (got ${type || 'no Content-Type'})`, 415);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_JSON_BYTES) throw new BadRequestError(`Request body over ${MAX_JSON_BYTES} bytes`, 413);
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new BadRequestError(`The body is not JSON: ${(err as Error).message}`);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new BadRequestError('The body must be a JSON object');
  }
  return body as JsonObject;
}

/** Refuses fields the route does not know, so a typo is not silently ignored. */
export function onlyFields(body: JsonObject, known: readonly string[]): void {
  const unknown = Object.keys(body).filter((k) => !known.includes(k));
  if (unknown.length > 0) {
    throw new BadRequestError(`Unknown field "${unknown[0]}": use ${known.join(', ')}`);
  }
}

export function requiredString(body: JsonObject, name: string): string {
  const value = body[name];
  if (typeof value !== 'string') throw new BadRequestError(`Field "${name}" must be a string`);
  return value;
}

export function optionalString(body: JsonObject, name: string): string | undefined {
  return body[name] === undefined ? undefined : requiredString(body, name);
}

/** A string, or null to remove the setting (edit). */
export function optionalStringOrNull(body: JsonObject, name: string): string | null | undefined {
  return body[name] === null ? null : optionalString(body, name);
}

export function optionalNumber(body: JsonObject, name: string): number | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw new BadRequestError(`Field "${name}" must be a number`);
  return value;
}

/** A number, or null to remove the setting (edit). */
export function optionalNumberOrNull(body: JsonObject, name: string): number | null | undefined {
  return body[name] === null ? null : optionalNumber(body, name);
}

export function optionalBoolean(body: JsonObject, name: string): boolean | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new BadRequestError(`Field "${name}" must be true or false`);
  return value;
}

/** A JSON object given in a query parameter (publish sends its settings this way; the body is the image). */
export function queryJson(url: URL, name: string): JsonObject {
  const text = url.searchParams.get(name);
  if (text === null) throw new BadRequestError(`Query parameter "${name}" is missing`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new BadRequestError(`Query parameter "${name}" is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BadRequestError(`Query parameter "${name}" must be a JSON object`);
  }
  return value as JsonObject;
}

/** The upload's length: publish needs it before the first byte (the admin operation checks it). */
export function contentLength(req: IncomingMessage): number {
  const header = req.headers['content-length'];
  if (header === undefined || !/^\d+$/.test(header)) {
    throw new BadRequestError('Send the image with a Content-Length header', 411);
  }
  return Number(header);
}
