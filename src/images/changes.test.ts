import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyChanges } from './changes.ts';

test('--change applies Dockerfile config instructions', () => {
  const c = applyChanges({ Env: ['A=0', 'KEEP=1'] }, [
    'CMD ["sh", "-c", "echo hi"]',
    'ENTRYPOINT /bin/entry --flag',
    'ENV A=1 B="two words"',
    'ENV LEGACY some value',
    'EXPOSE 80 53/udp',
    'LABEL x=y',
    'USER nobody',
    'WORKDIR /srv',
    'STOPSIGNAL SIGQUIT',
    'VOLUME ["/data"]',
  ]);
  assert.deepEqual(c.Cmd, ['sh', '-c', 'echo hi']);
  assert.deepEqual(c.Entrypoint, ['/bin/sh', '-c', '/bin/entry --flag']);
  assert.deepEqual(c.Env, ['KEEP=1', 'A=1', 'B=two words', 'LEGACY=some value']);
  assert.deepEqual(c.ExposedPorts, { '80/tcp': {}, '53/udp': {} });
  assert.deepEqual(c.Labels, { x: 'y' });
  assert.equal(c.User, 'nobody');
  assert.equal(c.WorkingDir, '/srv');
  assert.equal(c.StopSignal, 'SIGQUIT');
  assert.deepEqual(c.Volumes, { '/data': {} });
});

test('unsupported or malformed changes are refused with a clear error', () => {
  assert.throws(() => applyChanges({}, ['RUN rm -rf /']), /RUN is not a supported change/);
  assert.throws(() => applyChanges({}, ['CMD']), /expected an instruction and its arguments/);
  assert.throws(() => applyChanges({}, ['EXPOSE http']), /invalid port/);
});

test("HEALTHCHECK change: exec and shell forms, flags, NONE, the builder's errors", () => {
  const shell = applyChanges({}, ['HEALTHCHECK --interval=5s --timeout=2s --start-period=1m --retries=4 CMD test -f /tmp/ok || exit 1']);
  assert.deepEqual(shell.Healthcheck, { Test: ['CMD-SHELL', 'test -f /tmp/ok || exit 1'], Interval: 5e9, Timeout: 2e9, StartPeriod: 60e9, Retries: 4 });
  assert.deepEqual(applyChanges({}, ['HEALTHCHECK CMD ["cat", "/x"]']).Healthcheck, { Test: ['CMD', 'cat', '/x'] });
  assert.deepEqual(applyChanges({}, ['HEALTHCHECK NONE']).Healthcheck, { Test: ['NONE'] });
  assert.throws(() => applyChanges({}, ['HEALTHCHECK NONE x']), /HEALTHCHECK NONE takes no arguments/);
  assert.throws(() => applyChanges({}, ['HEALTHCHECK PING x']), /Unknown type "PING" in HEALTHCHECK \(try CMD\)/);
  assert.throws(() => applyChanges({}, ['HEALTHCHECK CMD']), /Missing command after HEALTHCHECK CMD/);
  assert.throws(() => applyChanges({}, ['HEALTHCHECK --interval=10us CMD true']), /Interval "interval" cannot be less than 1ms/);
  assert.throws(() => applyChanges({}, ['HEALTHCHECK --timeout=5 CMD true']), /missing unit in duration "5"/);
  assert.throws(() => applyChanges({}, ['HEALTHCHECK --retries=0 CMD true']), /--retries must be at least 1 \(not 0\)/);
  assert.throws(() => applyChanges({}, ['HEALTHCHECK --bogus=1 CMD true']), /unknown flag: --bogus/);
});
