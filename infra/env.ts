/**
 * Environment variables the stack sets on the device-cloud functions. The construct that sets them
 * owns the names (STYLE.md habit 6); functions/ reads them through these constants.
 * No imports: this file is bundled into the Lambda functions.
 */
export const FUNCTION_ENV = {
  /** DynamoDB table holding updates, devices, tokens and counters (DESIGN §5). Set by bindTable(). */
  table: 'TABLE_NAME',
  /** S3 bucket holding the update images under `images/` (DESIGN §5). Set by bindImages(). */
  bucket: 'BUCKET_NAME',
} as const;
