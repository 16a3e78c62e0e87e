import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { EngineError, ERROR_CODE_HEADER } from '../common/errors.ts';
import { sendError, statusOf } from './router.ts';

test('every error code has a deliberate status: timeouts and cancellations are not 500', () => {
  assert.equal(statusOf(new EngineError('TIMEOUT', 'registry did not answer')), 504);
  assert.equal(statusOf(new EngineError('CANCELLED', 'shutting down')), 503);
  assert.equal(statusOf(new EngineError('COMMAND_NOT_FOUND', 'exec: nope')), 400);
  assert.equal(statusOf(new EngineError('INTERNAL', 'bug')), 500);
  assert.equal(statusOf(new Error('not ours')), 500);
});

test("an error answer carries docker's body and keel's code in a header", () => {
  const headers: Record<string, string> = {};
  let status = 0;
  let body = '';
  const res = {
    headersSent: false,
    setHeader: (k: string, v: string) => void (headers[k] = v),
    writeHead: (s: number, h: Record<string, string>) => void ((status = s), Object.assign(headers, h)),
    end: (b: string) => void (body = b),
  } as unknown as ServerResponse;
  sendError(res, new EngineError('CANNOT_EXECUTE', 'exec: "/etc": permission denied'));
  assert.equal(status, 400);
  assert.equal(headers[ERROR_CODE_HEADER], 'CANNOT_EXECUTE');
  assert.equal(headers['Content-Type'], 'application/json');
  assert.deepEqual(JSON.parse(body), { message: 'exec: "/etc": permission denied' });
});
