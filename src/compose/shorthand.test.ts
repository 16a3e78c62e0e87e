import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePort, parseVolume, shellSplit } from './shorthand.ts';

test('ports: short forms, ranges, host ips, protocols, long form', () => {
  assert.deepEqual(parsePort('80', 'p'), [{ target: 80, protocol: 'tcp', mode: 'ingress' }]);
  assert.deepEqual(parsePort(3000, 'p'), [{ target: 3000, protocol: 'tcp', mode: 'ingress' }]);
  assert.deepEqual(parsePort('8080:80/udp', 'p'), [{ target: 80, published: '8080', protocol: 'udp', mode: 'ingress' }]);
  assert.deepEqual(parsePort('127.0.0.1:8080:80', 'p'), [{ target: 80, published: '8080', host_ip: '127.0.0.1', protocol: 'tcp', mode: 'ingress' }]);
  assert.deepEqual(parsePort('127.0.0.1::80', 'p'), [{ target: 80, host_ip: '127.0.0.1', protocol: 'tcp', mode: 'ingress' }]);
  assert.deepEqual(parsePort('[::1]:8080:80', 'p'), [{ target: 80, published: '8080', host_ip: '::1', protocol: 'tcp', mode: 'ingress' }]);
  assert.deepEqual(
    parsePort('9000-9001:80-81', 'p').map((x) => [x.published, x.target]),
    [
      ['9000', 80],
      ['9001', 81],
    ],
  );
  assert.deepEqual(
    parsePort('80-82', 'p').map((x) => x.target),
    [80, 81, 82],
  );
  // compose-go sorts a range's "port/proto" keys as strings: the order the config hash sees
  assert.deepEqual(
    parsePort('8-10', 'p').map((x) => x.target),
    [10, 8, 9],
  );
  assert.deepEqual(
    parsePort('1008-1010:8-10/udp', 'p').map((x) => [x.published, x.target]),
    [
      ['1010', 10],
      ['1008', 8],
      ['1009', 9],
    ],
  );
  assert.deepEqual(parsePort('9000-9010:80', 'p'), [{ target: 80, published: '9000-9010', protocol: 'tcp', mode: 'ingress' }]);
  assert.deepEqual(parsePort({ target: 80, published: 8080, host_ip: '0.0.0.0' }, 'p'), [
    { target: 80, published: '8080', host_ip: '0.0.0.0', protocol: 'tcp', mode: 'ingress' },
  ]);
  assert.throws(() => parsePort('9000-9001:80-82', 'services.web.ports[0]'), /services\.web\.ports\[0\]: port ranges don't match/);
  assert.throws(() => parsePort('abc', 'p'), /invalid port/);
  assert.throws(() => parsePort('70000', 'p'), /invalid port range/);
});

test('volumes: named, bind, anonymous, modes, long form', () => {
  assert.deepEqual(parseVolume('/data', 'v'), { type: 'volume', target: '/data', volume: {} });
  assert.deepEqual(parseVolume('db:/var/lib/db:ro', 'v'), { type: 'volume', source: 'db', target: '/var/lib/db', read_only: true, volume: {} });
  assert.deepEqual(parseVolume('db:/x:nocopy', 'v'), { type: 'volume', source: 'db', target: '/x', volume: { nocopy: true } });
  assert.deepEqual(parseVolume('/host:/c:ro,z,rshared', 'v'), {
    type: 'bind',
    source: '/host',
    target: '/c',
    read_only: true,
    bind: { create_host_path: true, selinux: 'z', propagation: 'rshared' },
  });
  assert.deepEqual(parseVolume({ type: 'bind', source: '/h', target: '/c', read_only: true }, 'v'), {
    type: 'bind',
    source: '/h',
    target: '/c',
    read_only: true,
  });
  assert.deepEqual(parseVolume({ type: 'bind', source: '/h', target: '/c', bind: { propagation: 'rslave' } }, 'v'), {
    type: 'bind',
    source: '/h',
    target: '/c',
    bind: { create_host_path: true, propagation: 'rslave' },
  });
  assert.deepEqual(parseVolume({ type: 'tmpfs', target: '/t', tmpfs: { size: 1000 } }, 'v'), { type: 'tmpfs', target: '/t', tmpfs: { size: 1000 } });
  assert.throws(() => parseVolume('a:/b:bogus', 'services.x.volumes[0]'), /services\.x\.volumes\[0\]: invalid volume mode "bogus"/);
});

test('shell words', () => {
  assert.deepEqual(shellSplit(`sh -c "echo 'hi there'; exit 3"`, 'c'), ['sh', '-c', "echo 'hi there'; exit 3"]);
  assert.deepEqual(shellSplit(`a 'b c' d\\ e "" x`, 'c'), ['a', 'b c', 'd e', '', 'x']);
  assert.throws(() => shellSplit(`echo "open`, 'services.a.command'), /services\.a\.command: unterminated double quote/);
});
