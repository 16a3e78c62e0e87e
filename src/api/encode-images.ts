import { imageCreated } from '../images/store.ts';
import type { ImageView } from '../engine/engine.ts';
import type { ContainerConfig } from '../oci/types.ts';

/** docker's full container-config shape: every key present, null where unset. */
export function encodeConfig(c: ContainerConfig | undefined, image = ''): Record<string, unknown> {
  return {
    Hostname: '',
    Domainname: '',
    User: c?.User ?? '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    ...(c?.ExposedPorts ? { ExposedPorts: c.ExposedPorts } : {}),
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: c?.Env ?? null,
    Cmd: c?.Cmd ?? null,
    ...(c?.Healthcheck ? { Healthcheck: c.Healthcheck } : {}),
    ...(c?.ArgsEscaped ? { ArgsEscaped: true } : {}),
    Image: image,
    Volumes: c?.Volumes ?? null,
    WorkingDir: c?.WorkingDir ?? '',
    Entrypoint: c?.Entrypoint ?? null,
    OnBuild: c?.OnBuild ?? null,
    Labels: c?.Labels ?? null,
    ...(c?.StopSignal ? { StopSignal: c.StopSignal } : {}),
    ...(c?.Shell ? { Shell: c.Shell } : {}),
  };
}

/** `GET /images/json` entry. */
export function encodeImageSummary(v: ImageView): Record<string, unknown> {
  return {
    Containers: v.containers,
    Created: imageCreated(v.config),
    Id: v.record.id,
    Labels: v.config.config?.Labels ?? null,
    ParentId: v.record.parent ?? '',
    RepoDigests: v.repoDigests.length ? v.repoDigests : v.repoTags.length ? null : ['<none>@<none>'],
    RepoTags: v.repoTags.length ? v.repoTags : ['<none>:<none>'],
    SharedSize: -1,
    Size: v.record.size,
    VirtualSize: v.record.size,
  };
}

/** `GET /images/{name}/json`. */
export function encodeImageInspect(v: ImageView, dataRoot: string): Record<string, unknown> {
  const c = v.config;
  return {
    Id: v.record.id,
    RepoTags: v.repoTags,
    RepoDigests: v.repoDigests,
    Parent: v.record.parent ?? '',
    Comment: c.comment ?? '',
    Created: c.created ?? '',
    Container: c.container ?? '',
    ContainerConfig: encodeConfig(c.container_config),
    DockerVersion: c.docker_version ?? '',
    Author: c.author ?? '',
    Config: encodeConfig(c.config),
    Architecture: c.architecture,
    ...(c.variant ? { Variant: c.variant } : {}),
    Os: c.os,
    Size: v.record.size,
    VirtualSize: v.record.size,
    GraphDriver: {
      Data: {
        LowerDir: v.record.chainIds
          .map((id) => `${dataRoot}/overlay/layers/${id.slice(7)}/diff`)
          .reverse()
          .join(':'),
      },
      Name: 'overlay2',
    },
    RootFS: { Type: 'layers', Layers: c.rootfs.diff_ids },
    Metadata: { LastTagTime: v.record.stored },
  };
}
