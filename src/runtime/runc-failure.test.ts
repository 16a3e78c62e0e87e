import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isNotRunning, parseRuncFailure, RuntimeError } from './runc.ts';
import { EngineError } from '../common/errors.ts';

test('runc failures are read once into what they mean', () => {
  const notFound = parseRuncFailure('time="2026-01-01T00:00:00Z" level=error msg="exec: \\"nope\\": executable file not found in $PATH"\n');
  assert.equal(notFound.message, 'exec: "nope": executable file not found in $PATH');
  assert.equal(notFound.exec, 'COMMAND_NOT_FOUND');
  assert.equal(parseRuncFailure('runc create failed: unable to start container process: exec: "/etc": permission denied').exec, 'CANNOT_EXECUTE');
  // a missing file that is not the command is not docker's 127
  assert.equal(parseRuncFailure('mount /x: no such file or directory').exec, undefined);
  assert.equal(parseRuncFailure('container "abc" does not exist').noSuchContainer, true);
  const gone = parseRuncFailure('level=error msg="container not running"');
  assert.equal(gone.notRunning, true);
  assert.equal(gone.inactive, true);
  assert.equal(parseRuncFailure('cannot exec in a paused container').inactive, true);
  assert.equal(parseRuncFailure('cgroup: permission denied').exec, undefined);
});

test('a signal that finds no process is told apart by type, not by message', () => {
  assert.equal(isNotRunning(new RuntimeError('INTERNAL', 'runc kill failed: process already finished', parseRuncFailure('process already finished'))), true);
  assert.equal(isNotRunning(new EngineError('NOT_FOUND', 'no such container in the runtime: x')), true);
  assert.equal(isNotRunning(new RuntimeError('INTERNAL', 'runc kill failed: permission denied', parseRuncFailure('permission denied'))), false);
  assert.equal(isNotRunning(new EngineError('INTERNAL', 'container not running')), false);
});
