import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadProject } from './load.ts';
import { networkHash, networkHashInput, volumeHash, volumeHashInput } from './resource-hash.ts';

/*
 * The expected JSON is written by hand from compose-go's NetworkConfig,
 * IPAMConfig, IPAMPool and VolumeConfig (field order, json tags, omitempty;
 * IPAMConfig a struct value, enable_ipv4/6 pointers) and docker compose's
 * NetworkHash/VolumeHash; the digests are `printf '%s' '<JSON>' | sha256sum`.
 */

function load(yaml: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-rhash-'));
  try {
    fs.writeFileSync(path.join(dir, 'compose.yaml'), yaml);
    return loadProject({ cwd: dir, projectName: 'p', env: {}, onWarning: () => {} });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('network and volume config hashes as docker compose labels them', () => {
  const p = load(`services:
  a:
    image: busybox
    networks: [back, default]
    volumes: [data:/data]
networks:
  back:
    driver: bridge
    driver_opts: {com.docker.network.bridge.name: br-back}
    internal: true
    enable_ipv6: false
    labels: {tier: back}
    ipam:
      config:
        - subnet: 10.5.0.0/24
          gateway: 10.5.0.1
          aux_addresses: {host1: 10.5.0.5}
volumes:
  data:
    labels: [keep=yes]
`);
  assert.equal(
    networkHashInput(p.networks.back!),
    '{"name":"p_back","driver":"bridge","driver_opts":{"com.docker.network.bridge.name":"br-back"},"ipam":{"config":[{"subnet":"10.5.0.0/24","gateway":"10.5.0.1","aux_addresses":{"host1":"10.5.0.5"}}]},"internal":true,"labels":{"tier":"back"},"enable_ipv6":false}',
  );
  assert.equal(networkHash(p.networks.back!), '49a6b8da3fb49e7af55f35037139e6542cb120478401002925a00c61bd8d5eae');
  assert.equal(networkHashInput(p.networks.default!), '{"name":"p_default","ipam":{}}');
  assert.equal(networkHash(p.networks.default!), 'cca2b3a66c94bd18c278d0ace2145197839f42c28f96dcd3878eeb5d03f53510');
  assert.equal(volumeHashInput(p.volumes.data!), '{"name":"p_data","driver":"local","labels":{"keep":"yes"}}');
  assert.equal(volumeHash(p.volumes.data!), '0d999e064bfcd95be5c59184845419242bbc6664bcdab748b145ea4b37d4aeb0');
});
