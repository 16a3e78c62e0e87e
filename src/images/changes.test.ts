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
