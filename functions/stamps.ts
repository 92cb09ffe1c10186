/**
 * The product stamp, shared with admin operations: every change to a product's updates bumps it, and
 * running clouds reload their cached update list when it moves. A deliberate API for admin/, so it
 * need not reach into the device store; the stamp itself is kept by functions/device-store.ts.
 */
export { bumpStamp } from './device-store.ts';
