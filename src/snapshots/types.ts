import type { Digest } from '../oci/digest.ts';
import type { Mount } from '../oci/mount.ts';

export type { Mount };

export interface LayerMeta {
  chainId: Digest;
  diffId: Digest;
  parent: Digest | null;
  /** Bytes of the uncompressed layer tar. */
  size: number;
  created: string;
}

/**
 * What images/ and containers/ need from a snapshotter (containerd's split):
 * committed read-only layers keyed by chain ID, and active writable snapshots
 * over a chain. A snapshot is handed out as mounts described as data
 * (`Mount`, the OCI spec's type, destination `/` for the rootfs), every path
 * in them absolute, so they mean the same from any working directory and in
 * any process; the snapshotter never mounts them itself (snapshots/mount.ts
 * does, for whoever runs the container). conformance.ts is the suite every
 * implementation passes.
 */
export interface LayerSnapshotter {
  init(): Promise<void>;
  hasLayer(chainId: Digest): Promise<boolean>;
  layerMeta(chainId: Digest): Promise<LayerMeta | undefined>;
  listLayers(): Promise<Digest[]>;
  /** The layer's tree, for readers (export, diff); never written after creation. */
  layerDir(chainId: Digest): string;
  /**
   * Creates a committed layer: `fill` writes the tree into a fresh directory
   * and returns its diff ID and tar size. The layer becomes visible only when
   * `fill` succeeds with the expected diff ID; an existing layer is kept.
   */
  createLayer(
    expected: { chainId: Digest; diffId?: Digest; parent: Digest | null },
    fill: (dir: string) => Promise<{ diffId: Digest; size: number }>,
  ): Promise<LayerMeta>;
  scratchDir(): Promise<string>;
  discardScratch(dir: string): Promise<void>;
  removeLayer(chainId: Digest): Promise<void>;
  /** A writable snapshot over `chain` (bottom layer first); returns its mounts. */
  prepare(key: string, chain: Digest[]): Promise<Mount[]>;
  mounts(key: string): Promise<Mount[]>;
  upperDir(key: string): string;
  chainOf(key: string): Promise<Digest[] | undefined>;
  listActive(): Promise<string[]>;
  remove(key: string): Promise<void>;
}
