/**
 * The config hashes docker compose puts on the networks and volumes it
 * creates (label com.docker.compose.config-hash; NetworkHash and VolumeHash
 * in pkg/compose/hash.go): a sha256 of Go's json.Marshal of compose-go's
 * NetworkConfig / VolumeConfig, the user's labels only (compose's own are
 * CustomLabels, not marshalled), a volume's driver defaulting to "local".
 * With the same label docker compose v2 and keel agree on whether a network
 * or volume still matches the file.
 */
import { list, mapping, obj, optBool, str, type Tree } from './gojson.ts';
import { sha256Hex as sha256 } from './sha256.ts';
import type { NetworkConfig, VolumeConfig } from './types.ts';

/** The JSON NetworkHash marshals (exported for tests). */
export function networkHashInput(n: NetworkConfig): string {
  const ipam = (n.ipam ?? {}) as Tree;
  const pools = ipam.config as Tree[] | undefined;
  return obj([
    ['name', str(n.name)],
    ['driver', str(n.driver)],
    ['driver_opts', mapping(n.driver_opts)],
    // IPAMConfig is a struct value: always written
    [
      'ipam',
      obj([
        ['driver', str(ipam.driver)],
        [
          'config',
          list(pools, (p) =>
            obj([
              ['subnet', str(p.subnet)],
              ['gateway', str(p.gateway)],
              ['ip_range', str(p.ip_range)],
              ['aux_addresses', mapping(p.aux_addresses as Tree | undefined)],
            ]),
          ),
        ],
        ['options', mapping(ipam.options as Tree | undefined)],
      ]),
    ],
    ['external', n.external ? 'true' : undefined],
    ['internal', n.internal ? 'true' : undefined],
    ['attachable', n.attachable ? 'true' : undefined],
    ['labels', mapping(n.labels)],
    ['enable_ipv4', optBool(n.enable_ipv4)],
    ['enable_ipv6', optBool(n.enable_ipv6)],
  ]);
}

export function networkHash(n: NetworkConfig): string {
  return sha256(networkHashInput(n));
}

/** The JSON VolumeHash marshals (exported for tests). */
export function volumeHashInput(v: VolumeConfig): string {
  return obj([
    ['name', str(v.name)],
    ['driver', str(v.driver || 'local')],
    ['driver_opts', mapping(v.driver_opts)],
    ['external', v.external ? 'true' : undefined],
    ['labels', mapping(v.labels)],
  ]);
}

export function volumeHash(v: VolumeConfig): string {
  return sha256(volumeHashInput(v));
}
