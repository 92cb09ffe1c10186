/** Lambda entry for POST /tok/provision/update. The shared app routes by path. */
export { handler } from './lambda.ts';
