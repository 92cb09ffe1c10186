/** Lambda entry for POST /tok/provision/updateReport (the shared app routes by path). */
import { handlerFromEnv } from './lambda.ts';

export const handler = handlerFromEnv({ images: false });
