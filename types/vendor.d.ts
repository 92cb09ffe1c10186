/** Minimal typings for the two embedded servers of the local cloud (neither ships its own). */
declare module 'dynalite' {
  import type { Server } from 'node:http';

  interface DynaliteOptions {
    path?: string;
    createTableMs?: number;
    deleteTableMs?: number;
    updateTableMs?: number;
    maxItemSizeKb?: number;
    ssl?: boolean;
  }
  export default function dynalite(options?: DynaliteOptions): Server;
}

declare module 's3rver' {
  import type { IncomingMessage, Server, ServerResponse } from 'node:http';

  interface S3rverOptions {
    address?: string;
    port?: number;
    key?: string | Buffer;
    cert?: string | Buffer;
    silent?: boolean;
    directory?: string;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
    vhostBuckets?: boolean;
    configureBuckets?: { name: string; configs?: (string | Buffer)[] }[];
  }
  export default class S3rver {
    constructor(options?: S3rverOptions);
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
    httpServer?: Server;
    /** Creates the configured buckets (run() does it before listening). */
    configureBuckets(): Promise<void>;
    /** The Koa request handler, to serve s3rver on a server of one's own. */
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    readonly logger: { readonly exceptions: { unhandle(): void }; close(): void };
    readonly store: {
      /** `<dir>/<bucket>/<key path>._S3rver_<resource>`; resource 'uploads' holds incomplete multipart uploads. */
      getResourcePath(bucket: string, key: string | undefined, resource: string): string;
    };
  }
}
