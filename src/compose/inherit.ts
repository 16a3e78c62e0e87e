/**
 * A container made again (config changed, --force-recreate) keeps its
 * predecessor's anonymous volumes, as docker compose does
 * (buildContainerMountOptions with Inherit): the data of a service's
 * `- /data` volume or of its image's VOLUME survives `up`. `up -V`
 * (--renew-anon-volumes) makes new ones instead.
 */
import type { ComposeBackend, ContainerSummary } from './backend.ts';
import { imageRef } from './images.ts';
import type { Project, Service } from './types.ts';

export interface InheritedVolume {
  target: string;
  /** The volume's name. */
  name: string;
  readOnly: boolean;
}

/** The previous container's volumes at the service's anonymous volume targets and at its image's VOLUME paths. */
export async function inheritedVolumes(b: ComposeBackend, p: Project, s: Service, previous: ContainerSummary): Promise<InheritedVolume[]> {
  const volumes = previous.mounts ?? [];
  if (!volumes.length) return [];
  const anonymous = new Set(s.volumes.filter((v) => v.type === 'volume' && !v.source).map((v) => v.target));
  // the image is looked at only when there are volumes the service does not declare (docker compose inspects it every time)
  const undeclared = volumes.some((m) => !anonymous.has(m.destination));
  const imageVolumes = new Set(undeclared ? ((await b.inspectImage(imageRef(p, s)))?.volumes ?? []) : []);
  return volumes
    .filter((m) => anonymous.has(m.destination) || imageVolumes.has(m.destination))
    .map((m) => ({ target: m.destination, name: m.name, readOnly: !m.rw }));
}
