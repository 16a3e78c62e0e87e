/**
 * `use_api_socket: true`, as docker compose does it (pkg/compose/apiSocket.go):
 * not an engine feature but a change to the project before its containers
 * are made. Each such service gets the engine's API socket bind-mounted at
 * /var/run/docker.sock (keel's socket: the one the client talks to), a
 * config `#apisocket` holding the client's registry credentials as a
 * docker config.json at /run/secrets/docker/config.json, and
 * DOCKER_CONFIG=/run/secrets/docker unless the service sets DOCKER_CONFIG.
 * The changed service is what gets hashed, as in docker compose.
 */
import type { Project } from './types.ts';

export const API_SOCKET_CONFIG = '#apisocket';

export function usesApiSocket(p: Project): boolean {
  return Object.values(p.services).some((s) => s.use_api_socket);
}

/** The project with the socket, credentials and DOCKER_CONFIG given to its use_api_socket services. `configJson`: the credentials' config.json. */
export function withApiSocket(p: Project, socketPath: string, configJson: string): Project {
  if (!usesApiSocket(p)) return p;
  const services = { ...p.services };
  for (const [name, s] of Object.entries(services)) {
    if (!s.use_api_socket) continue;
    services[name] = {
      ...s,
      volumes: [...s.volumes, { type: 'bind', source: socketPath, target: '/var/run/docker.sock' }],
      environment: 'DOCKER_CONFIG' in s.environment ? s.environment : { ...s.environment, DOCKER_CONFIG: '/run/secrets/docker' },
      configs: [...(s.configs ?? []), { source: API_SOCKET_CONFIG, target: '/run/secrets/docker/config.json' }],
    };
  }
  return { ...p, services, configs: { ...p.configs, [API_SOCKET_CONFIG]: { name: API_SOCKET_CONFIG, content: configJson } } };
}
