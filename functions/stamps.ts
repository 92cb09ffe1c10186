/**
 * The product stamp, shared with admin operations: every change to a product's updates bumps it, and
 * running clouds reload their cached update list when it moves. A deliberate API for admin/, so it
 * need not reach into the device cloud's units; the stamp itself is kept by the update catalog
 * (functions/catalog.ts).
 */
export { bumpStamp } from './catalog.ts';
