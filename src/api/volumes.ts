/**
 * Docker API volume endpoints: GET /volumes, POST /volumes/create,
 * GET /volumes/{name}, DELETE /volumes/{name}, POST /volumes/prune, with
 * dockerd 20.10's JSON shapes (shared/reference/docker-api-1.41/vol-*.log).
 */
import { invalid } from '../common/errors.ts';
import { parseFilters } from '../engine/filters.ts';
import type { VolumeRecord } from '../volumes/index.ts';
import { qBool, readJsonBody, type Router, sendJson, sendNoContent } from './router.ts';

/** The Volume object as dockerd shows it; UsageData only for system df. */
export function encodeVolume(v: VolumeRecord, mountpoint: string, usage?: { size: number; refCount: number }): Record<string, unknown> {
  return {
    CreatedAt: v.createdAt,
    Driver: v.driver,
    Labels: v.labels,
    Mountpoint: mountpoint,
    Name: v.name,
    Options: v.options,
    Scope: 'local',
    ...(usage ? { UsageData: { Size: usage.size, RefCount: usage.refCount } } : {}),
  };
}

interface CreateBody {
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

function stringMap(v: unknown, what: string): Record<string, string> | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(`${what} must be an object of strings`);
  for (const x of Object.values(v)) if (typeof x !== 'string') throw invalid(`${what} must be an object of strings`);
  return v as Record<string, string>;
}

export function volumeRoutes(r: Router): void {
  r.add('GET', '/volumes', async ({ res, engine, query }) => {
    const list = await engine.listVolumes(parseFilters(query.get('filters')));
    sendJson(res, 200, { Volumes: list.map((v) => encodeVolume(v, engine.volumeMountpoint(v.name))), Warnings: null });
  });

  r.add('POST', '/volumes/create', async ({ req, res, engine }) => {
    const body = (await readJsonBody<CreateBody>(req, 1 << 20)) ?? {};
    if (typeof body !== 'object' || Array.isArray(body)) throw invalid('invalid volume create request: expected a JSON object');
    if (body.Name !== undefined && body.Name !== null && typeof body.Name !== 'string') throw invalid('volume Name must be a string');
    const v = await engine.createVolume(body.Name || undefined, {
      driver: body.Driver || 'local',
      options: stringMap(body.DriverOpts, 'DriverOpts'),
      labels: stringMap(body.Labels, 'Labels'),
    });
    sendJson(res, 201, encodeVolume(v, engine.volumeMountpoint(v.name)));
  });

  r.add('POST', '/volumes/prune', async ({ res, engine, query }) => {
    const { deleted, reclaimed } = await engine.pruneVolumes(parseFilters(query.get('filters')));
    sendJson(res, 200, { VolumesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
  });

  r.add('GET', '/volumes/{id}', async ({ res, engine, params }) => {
    const v = await engine.inspectVolume(params[0]!);
    sendJson(res, 200, encodeVolume(v, engine.volumeMountpoint(v.name)));
  });

  r.add('DELETE', '/volumes/{id}', async ({ res, engine, params, query }) => {
    await engine.removeVolume(params[0]!, { force: qBool(query, 'force') });
    sendNoContent(res);
  });
}
