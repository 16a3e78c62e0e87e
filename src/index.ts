/**
 * keel as a library: `import { Engine } from 'keel'`.
 *
 *   await using engine = new Engine({ dataRoot: '/var/lib/keel', execRoot: '/run/keel' });
 *   await engine.open();                       // takes the state root's lock, reconciles containers
 *   const { id } = await engine.createContainer({ image: 'busybox', cmd: ['true'] });
 *   await engine.startContainer(id);
 *   const code = await engine.waitContainer(id, 'next-exit');
 *   // leaving the scope closes the engine (containers keep running under their conmon)
 *
 * Every failure is an EngineError whose `code` says what kind it is.
 * Records are plain data: read them, don't change them.
 */
export { Engine, VERSION } from './engine/engine.ts';
export type { EngineOptions, ImageView, ContainerNetworks } from './engine/engine.ts';
export { EngineError, isEngineError } from './common/errors.ts';
export type { ErrorCode } from './common/errors.ts';
export type { EngineEvent, EventFilter } from './engine/events.ts';
export type { Filters } from './engine/filters.ts';
export type { ContainerRecord, ContainerConfig, ContainerState, ContainerStatus, HostConfig, RestartPolicy, EndpointConfig } from './containers/types.ts';
export type { ContainerView } from './containers/view.ts';
export type { ContainerSpec, MountRequest, MountOption, EndpointSpec, ResourcesSpec, HealthcheckSpec, UpdateSpec } from './containers/spec.ts';
export type { ExecConfig, ExecRecord } from './containers/exec.ts';
export type { ImageRecord } from './images/store.ts';
export type { NetworkRecord, EndpointRecord, CreateNetworkOptions, EndpointOptions } from './network/index.ts';
export type { VolumeRecord, CreateVolumeOptions, VolumeFilters, VolumeUsage } from './volumes/index.ts';
export type { OciRuntime, AttachSession, ExecSession, ExitInfo, LogEntry } from './runtime/index.ts';

// A client for a running daemon (the Docker API plus keel's clones and pools).
export { KeelClient } from './client/index.ts';
export type { KeelClientOptions, CallOptions, CreateRequest, ExecResult as ClientExecResult, CloneRequest, PoolInfo, TakenContainer } from './client/index.ts';
export type { CloneOptions, CloneResult, FrozenUsage } from './containers/clone.ts';
export type { PoolStatus } from './engine/pools.ts';
