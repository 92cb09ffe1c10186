/**
 * The response side of http-get.ts: an incremental HTTP/1.1 response parser (head, then the body as
 * Content-Length, chunked encoding or the end of the connection frames it) that hands body bytes to
 * a sink without copying them.
 */
import { TransientError } from './errors.ts';

export interface ResponseHead {
  readonly status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
}

export interface BodySink {
  /** Called once with the status and headers; throwing ends the request with that error. */
  onHead(head: ResponseHead): void;
  /**
   * Called with body bytes. The chunk is a view of the read buffer, valid until the next call: copy
   * what must outlive it. Returning a promise pauses the socket (and keeps the chunk valid) until it
   * settles; a rejection ends the request with that error.
   */
  onData(chunk: Buffer): Promise<void> | undefined;
}

const MAX_HEAD_BYTES = 64 * 1024;

type Framing = { kind: 'length'; remaining: number } | { kind: 'chunked' } | { kind: 'close' };

/** Incremental response parser: head, then body bytes per the framing the head announces. */
export class ResponseParser {
  private head: Buffer[] = [];
  private headBytes = 0;
  private framing: Framing | undefined;
  private chunked: ChunkedDecoder | undefined;
  /** Body bytes not yet handed over because the sink asked to wait. */
  private backlog: Buffer | undefined;
  complete = false;
  bodyBytes = 0;

  constructor(private readonly sink: BodySink) {}

  /** Feeds socket bytes; returns a promise when the sink asked to wait. */
  feed(data: Buffer): Promise<void> | undefined {
    let rest = data;
    if (!this.framing) {
      const body = this.takeHead(data);
      if (!body) return undefined;
      rest = body;
    }
    return this.deliver(rest);
  }

  /** After a wait: delivers what arrived with the chunk that caused it. */
  resume(): Promise<void> | undefined {
    const backlog = this.backlog;
    this.backlog = undefined;
    return backlog ? this.deliver(backlog) : undefined;
  }

  /** The connection ended: true when that completes the body. */
  endOfStream(): boolean {
    return this.framing?.kind === 'close';
  }

  private takeHead(data: Buffer): Buffer | undefined {
    this.head.push(data);
    this.headBytes += data.length;
    const all = this.head.length === 1 ? data : Buffer.concat(this.head);
    const end = all.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.headBytes > MAX_HEAD_BYTES) throw new TransientError('Response head larger than 64 KiB');
      // `data` is a view of the read buffer, which the next read overwrites.
      this.head = [Buffer.from(all)];
      return undefined;
    }
    const head = parseHead(all.subarray(0, end).toString('latin1'));
    this.head = [];
    this.sink.onHead(head);
    const te = head.headers['transfer-encoding'];
    const cl = head.headers['content-length'];
    if (te && te.toLowerCase() !== 'identity') {
      if (!/(^|,)\s*chunked\s*$/i.test(te)) throw new TransientError(`Unsupported Transfer-Encoding "${te}"`);
      this.framing = { kind: 'chunked' };
      this.chunked = new ChunkedDecoder();
    } else if (cl !== undefined) {
      if (!/^\d+$/.test(cl)) throw new TransientError(`Bad Content-Length "${cl}"`);
      this.framing = { kind: 'length', remaining: Number(cl) };
    } else {
      this.framing = { kind: 'close' };
    }
    if (this.framing.kind === 'length' && this.framing.remaining === 0) this.complete = true;
    return all.subarray(end + 4);
  }

  private deliver(data: Buffer): Promise<void> | undefined {
    const framing = this.framing!;
    if (framing.kind === 'chunked') {
      const decoder = this.chunked!;
      let at = 0;
      while (at < data.length && !decoder.done) {
        const piece = decoder.next(data, at);
        at = piece.next;
        if (piece.data && piece.data.length > 0) {
          const wait = this.emit(piece.data);
          if (wait) {
            if (at < data.length) this.backlog = data.subarray(at);
            return wait;
          }
        }
      }
      if (decoder.done) this.complete = true;
      return undefined;
    }
    let body = data;
    if (framing.kind === 'length') {
      if (body.length > framing.remaining) body = body.subarray(0, framing.remaining);
      framing.remaining -= body.length;
      if (framing.remaining === 0) this.complete = true;
    }
    return body.length > 0 ? this.emit(body) : undefined;
  }

  private emit(chunk: Buffer): Promise<void> | undefined {
    this.bodyBytes += chunk.length;
    return this.sink.onData(chunk);
  }
}

function parseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!status)
    throw new TransientError(`Not an HTTP/1.1 response: ${JSON.stringify((lines[0] ?? '').slice(0, 60))}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(status[1]), headers };
}

/** RFC 9112 §7.1 chunked body decoder, fed in arbitrary pieces; chunk extensions and trailers ignored. */
class ChunkedDecoder {
  private state: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
  private line = '';
  private remaining = 0;
  done = false;

  /** Consumes from `buf` at `at`; returns body bytes found (a view of `buf`) and where to continue. */
  next(buf: Buffer, at: number): { data?: Buffer; next: number } {
    if (this.state === 'data') {
      const n = Math.min(this.remaining, buf.length - at);
      this.remaining -= n;
      if (this.remaining === 0) this.state = 'data-end';
      return { data: buf.subarray(at, at + n), next: at + n };
    }
    // Line-oriented states: collect up to LF.
    const lf = buf.indexOf(10, at);
    const end = lf < 0 ? buf.length : lf;
    this.line += buf.toString('latin1', at, end);
    if (this.line.length > 4096) throw new TransientError('Chunked encoding: line too long');
    if (lf < 0) return { next: buf.length };
    const line = this.line.replace(/\r$/, '');
    this.line = '';
    if (this.state === 'size') {
      const size = /^([0-9a-fA-F]+)/.exec(line);
      if (!size)
        throw new TransientError(`Chunked encoding: bad chunk size ${JSON.stringify(line.slice(0, 20))}`);
      this.remaining = Number.parseInt(size[1]!, 16);
      this.state = this.remaining === 0 ? 'trailer' : 'data';
    } else if (this.state === 'data-end') {
      if (line !== '') throw new TransientError('Chunked encoding: missing CRLF after chunk data');
      this.state = 'size';
    } else if (line === '') {
      this.done = true;
    }
    return { next: lf + 1 };
  }
}
