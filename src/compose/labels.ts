/**
 * The labels docker compose puts on what it creates, by which it (and
 * docker-compose v1, and keel) finds a project's objects again. Names
 * follow docker compose: containers `<project>-<service>-<n>`, networks
 * `<project>_<key>`, volumes `<project>_<key>`.
 */
export const PROJECT = 'com.docker.compose.project';
export const SERVICE = 'com.docker.compose.service';
export const NUMBER = 'com.docker.compose.container-number';
export const ONEOFF = 'com.docker.compose.oneoff';
export const CONFIG_HASH = 'com.docker.compose.config-hash';
export const IMAGE = 'com.docker.compose.image';
export const WORKING_DIR = 'com.docker.compose.project.working_dir';
export const CONFIG_FILES = 'com.docker.compose.project.config_files';
export const ENVIRONMENT_FILE = 'com.docker.compose.project.environment_file';
export const DEPENDS_ON = 'com.docker.compose.depends_on';
export const VERSION = 'com.docker.compose.version';
export const NETWORK = 'com.docker.compose.network';
export const VOLUME = 'com.docker.compose.volume';
export const REPLACE = 'com.docker.compose.replace';

/**
 * The version label's value: the docker compose release whose behaviour
 * this follows (tools compare it; a non-version string could confuse them).
 */
export const COMPOSE_VERSION = '2.29.7';

/** docker compose's project name normalization: lower case, [a-z0-9_-] only, no leading _ or -. */
export function normalizeProjectName(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '')
    .replace(/^[_-]+/, '');
}

export const projectFilter = (project: string) => [`${PROJECT}=${project}`];
export const serviceFilter = (project: string, service: string) => [`${PROJECT}=${project}`, `${SERVICE}=${service}`];

/** `<project>-<service>-<n>`, or the service's container_name. */
export function containerName(project: string, service: string, n: number, fixed?: string): string {
  return fixed ?? `${project}-${service}-${n}`;
}
