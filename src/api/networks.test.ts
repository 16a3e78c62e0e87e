import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeCreate } from './networks.ts';

test('decodeCreate maps docker CLI and docker-compose bodies', () => {
  assert.deepEqual(
    decodeCreate({
      Name: 'n',
      Driver: 'bridge',
      IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: '10.1.0.0/24', Gateway: '10.1.0.254', IPRange: '10.1.0.128/25' }] },
      Internal: true,
      Labels: { a: 'b' },
      Options: { o: 'v' },
      CheckDuplicate: true,
    }),
    {
      Name: 'n',
      Driver: 'bridge',
      Subnet: '10.1.0.0/24',
      Gateway: '10.1.0.254',
      IPRange: '10.1.0.128/25',
      Internal: true,
      Labels: { a: 'b' },
      Options: { o: 'v' },
      CheckDuplicate: true,
    },
  );
  const compose = decodeCreate({ Name: 'p_default', CheckDuplicate: true, Labels: { 'com.docker.compose.project': 'p' }, Attachable: true });
  assert.equal(compose.Driver, 'bridge');
  assert.equal(compose.Subnet, undefined);
  assert.deepEqual(compose.Labels, { 'com.docker.compose.project': 'p' });
});

test('decodeCreate refuses what keel cannot do, with a reason', () => {
  assert.throws(() => decodeCreate(undefined), /JSON body/);
  assert.throws(() => decodeCreate({}), /network name is required/);
  assert.throws(() => decodeCreate({ Name: 'n', EnableIPv6: true }), /IPv6/);
  assert.throws(() => decodeCreate({ Name: 'n', IPAM: { Config: [{ Subnet: 'fd00::/64' }] } }), /IPv6/);
  assert.throws(() => decodeCreate({ Name: 'n', IPAM: { Config: [{ Subnet: '10.1.0.0/24' }, { Subnet: '10.2.0.0/24' }] } }), /only one IPAM pool/);
  assert.throws(() => decodeCreate({ Name: 'n', IPAM: { Driver: 'dhcp' } }), /IPAM driver dhcp/);
  assert.throws(() => decodeCreate({ Name: 'n', IPAM: { Config: [{ Subnet: '10.1.0.0/24', AuxiliaryAddresses: { r: '10.1.0.5' } }] } }), /auxiliary/);
  assert.throws(() => decodeCreate({ Name: 'n', Ingress: true }), /swarm/);
  assert.throws(() => decodeCreate({ Name: 'n', Scope: 'swarm' }), /local/);
  assert.throws(() => decodeCreate({ Name: 'n', Labels: { a: 1 as unknown as string } }), /must be a string/);
});
