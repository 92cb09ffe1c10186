/** The console's one place where errors become answers: statuses from typed errors only, 5xx generic. */
import { describe, expect, it } from 'vitest';
import { InvalidPolicyError, NotFoundError, StoreUnreachableError } from '#admin/index.ts';
import { BadRequestError, ForbiddenError } from '#console/errors.ts';
import { errorAnswer } from '#console/respond.ts';

function recordingLog() {
  const errors: unknown[] = [];
  return {
    errors,
    log: { info() {}, warn() {}, error: (_m: string, f?: Record<string, unknown>) => errors.push(f?.error) },
  };
}

describe('errorAnswer', () => {
  it('answers admin and console errors with their status and one line', () => {
    const { log, errors } = recordingLog();
    expect(errorAnswer(new NotFoundError('No update 9.9.9 of product demo'), log)).toEqual({
      status: 404,
      body: { error: 'No update 9.9.9 of product demo' },
    });
    expect(errorAnswer(new ForbiddenError('Host "x" refused'), log).status).toBe(403);
    expect(errorAnswer(new BadRequestError('Body\\n too large', 413), log)).toEqual({
      status: 413,
      body: { error: 'Body\\n too large' },
    });
    expect(errors).toEqual([]);
  });

  it('carries the column of an invalid policy', () => {
    const { log } = recordingLog();
    const answer = errorAnswer(new InvalidPolicyError('Expected expression', 7, 'a == \n      ^'), log);
    expect(answer).toEqual({
      status: 400,
      body: { error: 'Invalid policy: Expected expression at column 7', column: 7 },
    });
  });

  it('keeps 5xx generic and logs the cause', () => {
    const { log, errors } = recordingLog();
    const unreachable = new StoreUnreachableError('DynamoDB at http://127.0.0.1:1234 unreachable');
    expect(errorAnswer(unreachable, log)).toEqual({
      status: 503,
      body: { error: "The cloud's table cannot be reached: see the console's log" },
    });
    const bug = new TypeError('cannot read x of undefined');
    expect(errorAnswer(bug, log)).toEqual({
      status: 500,
      body: { error: "Internal error: see the console's log" },
    });
    expect(errors).toEqual([unreachable, bug]);
  });

  it('does not trust a status on errors of other kinds (a library error says nothing to the page)', () => {
    const { log, errors } = recordingLog();
    const foreign = Object.assign(new Error('secret internal detail'), { status: 400 });
    expect(errorAnswer(foreign, log)).toEqual({
      status: 500,
      body: { error: "Internal error: see the console's log" },
    });
    expect(errors).toEqual([foreign]);
  });
});
