/**
 * Endpoints of features keel does not have, answered as dockerd answers
 * them when the feature is off, so clients that probe them (docker info,
 * docker inspect, docker-py, testcontainers) take their normal path:
 * plugins (none installed), swarm mode (inactive), and `docker search`.
 */
import { EngineError } from '../common/errors.ts';
import { searchIndex } from '../registry/search.ts';
import { qInt, type Router, sendJson } from './router.ts';

const NOT_MANAGER = 'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';

export function compatRoutes(r: Router): void {
  r.add('GET', '/plugins', ({ res }) => sendJson(res, 200, []));
  r.add('GET', '/plugins/{name}/json', ({ params }) => {
    throw new EngineError('NOT_FOUND', `plugin "${params[0]}" not found`);
  });

  // dockerd with swarm inactive: 503 for every swarm object; leave has its own words.
  r.add('POST', '/swarm/leave', () => {
    throw new EngineError('UNAVAILABLE', 'This node is not part of a swarm');
  });
  for (const prefix of ['/swarm', '/nodes', '/services', '/tasks', '/secrets', '/configs']) {
    for (const method of ['GET', 'POST', 'DELETE', 'PUT']) {
      r.add(method, `${prefix}(?:/.*)?`, () => {
        throw new EngineError('UNAVAILABLE', NOT_MANAGER);
      });
    }
  }

  r.add('GET', '/images/search', async ({ res, query, signal }) => {
    const results = await searchIndex(query.get('term') ?? '', qInt(query, 'limit') ?? 25, signal);
    const filters = query.get('filters');
    let f: Record<string, Record<string, boolean> | string[]> = {};
    try {
      f = filters ? JSON.parse(filters) : {};
    } catch {
      throw new EngineError('INVALID_ARGUMENT', `invalid filters: ${filters}`);
    }
    const vals = (k: string) => (Array.isArray(f[k]) ? (f[k] as string[]) : Object.keys(f[k] ?? {}));
    const stars = Math.max(0, ...vals('stars').map(Number).filter(Number.isFinite));
    const official = vals('is-official')[0];
    const automated = vals('is-automated')[0];
    sendJson(
      res,
      200,
      results.filter(
        (x) =>
          x.star_count >= stars &&
          (official === undefined || x.is_official === (official === 'true')) &&
          (automated === undefined || x.is_automated === (automated === 'true')),
      ),
    );
  });
}
