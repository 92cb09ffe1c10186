/** The commands the CLI prints to be pasted back: each value must come back from the shell unchanged. */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellQuote } from '#cli/format.ts';

describe('shellQuote', () => {
  it.each(['fleetcli', 'region == "eu"', "name == 'it''s'", 'a;b $(x) `y` \\ *'])(
    '%s survives sh',
    (value) => {
      expect(execFileSync('sh', ['-c', `printf %s ${shellQuote(value)}`]).toString()).toBe(value);
    },
  );
});
