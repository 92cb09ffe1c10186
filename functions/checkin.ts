/** Lambda entry for POST /tok/provision/update (the shared app routes by path). */
import { handlerFromEnv } from './lambda.ts';

export const handler = handlerFromEnv({ images: true });
