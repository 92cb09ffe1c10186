/** Lambda entry for POST /tok/provision/updateReport. The shared app routes by path. */
export { handler } from './lambda.ts';
