/**
 * The normalized compose project: every short form expanded, every
 * duration in nanoseconds, every relative path absolute. The loader
 * (load.ts) produces it; the reconciler and `config` consume it. It stays
 * plain data (JSON-serializable) so `config` can print it and the config
 * hash can be computed from it.
 */
import type { DevelopConfig } from './develop.ts';

export interface Project {
  name: string;
  workingDir: string;
  /** Absolute paths of the compose files, in the order given. */
  configFiles: string[];
  services: Record<string, Service>;
  networks: Record<string, NetworkConfig>;
  volumes: Record<string, VolumeConfig>;
  secrets: Record<string, FileObject>;
  configs: Record<string, FileObject>;
  /** Services defined but left out by their profiles. */
  disabled: Record<string, Service>;
  /** The services' `develop` sections (watch rules), by service; outside Service so they are no part of its config hash. */
  develop?: Record<string, DevelopConfig>;
  /** The environment the files were interpolated with (used by `run -e` defaults, COMPOSE_* settings). */
  environment: Record<string, string>;
  /** Top-level `models:` (Docker Model Runner) as written: keel only prints them (`config`); `up` of a service that uses one fails, as docker compose without its model plugin. */
  models?: Record<string, unknown>;
}

/**
 * `provider:` (compose-go's ServiceProviderConfig): a service that is no
 * container; an external program (`docker-<type>` among the docker CLI
 * plugins, else `<type>` on PATH) sets it up on `up` and tears it down on
 * `down` (provider.ts). Option values are strings, each option a list, as
 * compose-go's MultiOptions.
 */
export interface ProviderConfig {
  type: string;
  options?: Record<string, string[]>;
}

export interface BuildConfig {
  context: string;
  dockerfile?: string;
  dockerfile_inline?: string;
  args?: Record<string, string | null>;
  target?: string;
  labels?: Record<string, string>;
  cache_from?: string[];
  cache_to?: string[];
  secrets?: ServiceFileRef[];
  network?: string;
  no_cache?: boolean;
  pull?: boolean;
  tags?: string[];
  platforms?: string[];
  shm_size?: number;
  extra_hosts?: Record<string, string[]>;
  additional_contexts?: Record<string, string>;
}

export interface PortConfig {
  target: number;
  published?: string;
  host_ip?: string;
  protocol: string;
  mode: string;
  name?: string;
  app_protocol?: string;
}

export interface VolumeMount {
  type: 'volume' | 'bind' | 'tmpfs' | 'npipe' | 'cluster' | 'image';
  /** A volume name (project-local), a host path (absolute), or undefined for an anonymous volume or tmpfs. */
  source?: string;
  target: string;
  read_only?: boolean;
  consistency?: string;
  bind?: { propagation?: string; create_host_path?: boolean; selinux?: string };
  volume?: { nocopy?: boolean; subpath?: string };
  tmpfs?: { size?: number; mode?: number };
}

export interface DependsOn {
  condition: 'service_started' | 'service_healthy' | 'service_completed_successfully';
  restart: boolean;
  required: boolean;
}

export interface Healthcheck {
  test?: string[];
  interval?: number;
  timeout?: number;
  retries?: number;
  start_period?: number;
  start_interval?: number;
  disable?: boolean;
}

export interface ServiceNetwork {
  aliases?: string[];
  ipv4_address?: string;
  ipv6_address?: string;
  priority?: number;
  mac_address?: string;
}

export interface ServiceFileRef {
  source: string;
  target?: string;
  uid?: string;
  gid?: string;
  mode?: number;
}

export interface Ulimit {
  soft: number;
  hard: number;
  /** Written as one number (compose-go's Single): hashed and printed that way. */
  single?: true;
}

/** A post_start or pre_stop hook as normalized (the keys hooks.ts runs; others are kept for the hash). */
export interface ServiceHook {
  command?: string[];
  user?: string;
  privileged?: boolean;
  working_dir?: string;
  environment?: Record<string, string | null>;
  [key: string]: unknown;
}

export interface Service {
  name: string;
  /** The watch rules (also in Project.develop, by service, for the watcher); part of the config hash, as in docker compose. */
  develop?: DevelopConfig;
  image?: string;
  build?: BuildConfig;
  command?: string[] | null;
  entrypoint?: string[] | null;
  environment: Record<string, string | null>;
  ports: PortConfig[];
  expose?: string[];
  volumes: VolumeMount[];
  tmpfs?: string[];
  networks?: Record<string, ServiceNetwork | null>;
  network_mode?: string;
  depends_on: Record<string, DependsOn>;
  healthcheck?: Healthcheck;
  restart?: string;
  /** deploy.replicas / scale, 1 when neither is given. */
  scale: number;
  deploy?: Record<string, unknown>;
  /** The resource keys below that only deploy.resources gave (compose-go keeps them only there: not hashed, not printed). */
  fromDeploy?: ('mem_limit' | 'mem_reservation' | 'cpus' | 'pids_limit')[];
  mem_limit?: number;
  mem_reservation?: number;
  memswap_limit?: number;
  cpus?: number;
  cpu_shares?: number;
  cpuset?: string;
  pids_limit?: number;
  labels: Record<string, string>;
  container_name?: string;
  hostname?: string;
  domainname?: string;
  user?: string;
  working_dir?: string;
  extra_hosts?: string[];
  dns?: string[];
  dns_search?: string[];
  dns_opt?: string[];
  cap_add?: string[];
  cap_drop?: string[];
  privileged?: boolean;
  read_only?: boolean;
  init?: boolean;
  stop_signal?: string;
  stop_grace_period?: number;
  sysctls?: Record<string, string>;
  ulimits?: Record<string, Ulimit>;
  shm_size?: number;
  stdin_open?: boolean;
  tty?: boolean;
  logging?: { driver?: string; options?: Record<string, string> };
  secrets?: ServiceFileRef[];
  configs?: ServiceFileRef[];
  pull_policy?: string;
  platform?: string;
  profiles?: string[];
  devices?: string[];
  security_opt?: string[];
  group_add?: string[];
  ipc?: string;
  pid?: string;
  userns_mode?: string;
  oom_score_adj?: number;
  mac_address?: string;
  links?: string[];
  external_links?: string[];
  /*
   * Keys keel keeps for the config hash (docker compose hashes them, so a
   * change recreates) and for what the engine supports of them at create.
   */
  annotations?: Record<string, string>;
  attach?: boolean;
  blkio_config?: Record<string, unknown>;
  cgroup?: string;
  cgroup_parent?: string;
  cpu_count?: number;
  cpu_percent?: number;
  cpu_period?: number;
  cpu_quota?: number;
  cpu_rt_period?: number;
  cpu_rt_runtime?: number;
  credential_spec?: Record<string, unknown>;
  device_cgroup_rules?: string[];
  gpus?: Record<string, unknown>[];
  isolation?: string;
  mem_swappiness?: number;
  oom_kill_disable?: boolean;
  runtime?: string;
  storage_opt?: Record<string, string>;
  use_api_socket?: boolean;
  uts?: string;
  volumes_from?: string[];
  /** Lifecycle hooks: post_start and pre_stop run by exec (hooks.ts); pre_start (a one-off container before the service starts) is only hashed. */
  pre_start?: Record<string, unknown>[];
  post_start?: ServiceHook[];
  pre_stop?: ServiceHook[];
  /** Extension keys (`x-*`) kept as given. */
  extensions?: Record<string, unknown>;
  /** Not a container: managed by an external provider program (provider.ts). */
  provider?: ProviderConfig;
  /** `models:` (Docker Model Runner), as written: by model name, each endpoint_var/model_var or null. */
  models?: Record<string, unknown>;
}

export interface NetworkConfig {
  /** The engine-side name: `<project>_<key>` unless `name:` or external. */
  name: string;
  driver?: string;
  driver_opts?: Record<string, string>;
  ipam?: {
    driver?: string;
    config?: { subnet?: string; gateway?: string; ip_range?: string; aux_addresses?: Record<string, string> }[];
    options?: Record<string, string>;
  };
  external?: boolean;
  internal?: boolean;
  attachable?: boolean;
  /** As written (compose-go's *bool: an explicit false is hashed). */
  enable_ipv4?: boolean;
  enable_ipv6?: boolean;
  labels?: Record<string, string>;
}

export interface VolumeConfig {
  name: string;
  driver?: string;
  driver_opts?: Record<string, string>;
  external?: boolean;
  labels?: Record<string, string>;
}

export interface FileObject {
  name: string;
  file?: string;
  environment?: string;
  content?: string;
  external?: boolean;
}
