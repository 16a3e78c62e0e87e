/**
 * volumes/ — named and anonymous volumes (local driver), bind and tmpfs
 * mounts of containers.
 *
 *   const vols = volumeService(dataRoot);                    // one per root per process
 *   await vols.create('data', { labels, options });          // docker volume create
 *   await vols.list({ dangling: ['true'] }); vols.inspect(n); vols.remove(n); vols.prune(filters); vols.usage()
 *
 * Container hooks (containers/ calls these):
 *   create: const mounts = await vols.prepareContainerMounts(id, { binds: hc.Binds, mounts: hc.Mounts, tmpfs: hc.Tmpfs,
 *             imageVolumes: Object.keys(imageConfig.config?.Volumes ?? {}), volumesFrom, volumeDriver: hc.VolumeDriver });
 *           → keep `mounts` (ResolvedMount[], plain JSON) in the container record
 *   start:  spec.mounts.push(...await vols.setupContainerMounts(id, mergedRootfsDir, mounts));   // before runc create
 *   stop:   await vols.teardownContainerMounts(id, mounts);
 *   rm:     await vols.releaseContainerMounts(id, mounts, { removeAnonymous: rmV || autoRemove });
 *   inspect: mounts.filter((m) => !m.fromTmpfsFlag).map(toDockerMountPoint)
 *   --volumes-from x:ro → parseVolumesFrom('x:ro') → { container, mode }; pass { mounts: thatRecord.mounts, mode }.
 */
export { VolumeService, volumeService, mountInputFrom } from './service.ts';
export type { VolumeFilters, VolumeEventSink, VolumeUsage } from './service.ts';
export { VolumeStore, validateVolumeName, validateDriverOptions, VOLUME_NAME_PATTERN } from './store.ts';
export type { VolumeRecord, CreateVolumeOptions } from './store.ts';
export {
  resolveMounts,
  parseBind,
  parseMountSpec,
  parseVolumesFrom,
  parseTmpfsOptions,
  validMountMode,
  sortMounts,
  toDockerMountPoint,
  cleanPath,
} from './mounts.ts';
export type { MountSpec, ResolvedMount, MountInput, MountType } from './mounts.ts';
export { setupMounts, teardownMounts, copyUp, resolveDestination } from './setup.ts';
