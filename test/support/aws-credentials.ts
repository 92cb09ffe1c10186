/** Fixed credentials and clock for the SigV4 tests (presigner and DynamoDB client). */
import type { AwsCredentials } from '#functions/sigv4.ts';

export const CREDS: AwsCredentials = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
};
export const SESSION: AwsCredentials = {
  accessKeyId: 'ASIAEXAMPLE',
  secretAccessKey: 'c2VjcmV0/with+slash=',
  sessionToken: 'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+abc/def==',
};
export const NOW = Date.UTC(2024, 4, 6, 12, 34, 56);
