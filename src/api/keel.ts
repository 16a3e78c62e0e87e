import { EngineError } from '../common/errors.ts';
import { qBool, qInt, readJsonBody, type Router, sendJson, sendNoContent } from './router.ts';

/**
 * keel's extensions of the Docker API: clones and warm pools (EXTENSIONS.md
 * documents them). Paths docker never uses, so docker clients are unaffected.
 */
export function keelRoutes(r: Router): void {
  r.add('POST', '/containers/{id}/clone', async ({ req, res, engine, params, query, signal }) => {
    const body = (await readJsonBody<{ PortBindings?: Record<string, { HostIp?: string; HostPort?: string }[]> }>(req, 1 << 20)) ?? {};
    if (body.PortBindings !== undefined && (typeof body.PortBindings !== 'object' || body.PortBindings === null || Array.isArray(body.PortBindings))) {
      throw new EngineError('INVALID_ARGUMENT', 'PortBindings must be an object of "port/proto" → [{HostIp, HostPort}]');
    }
    const out = await engine.cloneContainer(params[0]!, {
      count: qInt(query, 'count') ?? 1,
      name: query.get('name') ?? undefined,
      namePrefix: query.get('name-prefix') ?? undefined,
      pause: qBool(query, 'pause'),
      strict: qBool(query, 'strict'),
      portBindings: body.PortBindings,
      signal,
    });
    // start=1: one request (and one CLI process) where docker run takes one too; the clones start at once.
    if (qBool(query, 'start')) {
      const started = await Promise.allSettled(out.clones.map((c) => engine.startContainer(c.id)));
      const failed = started.findIndex((s) => s.status === 'rejected');
      if (failed >= 0) {
        const e = (started[failed] as PromiseRejectedResult).reason;
        const code = e instanceof EngineError ? e.code : 'INTERNAL';
        throw new EngineError(code, `clone ${out.clones[failed]!.name} was created but did not start: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    sendJson(res, 201, { Clones: out.clones.map((c) => ({ Id: c.id, Name: c.name })), Warnings: out.warnings });
  });

  r.add('GET', '/keel/pools', ({ res, engine }) => sendJson(res, 200, engine.listPools()));

  r.add('POST', '/keel/pools', async ({ req, res, engine }) => {
    const b = await readJsonBody<{ Name?: string; From?: string; Size?: number; Ready?: string }>(req, 1 << 16);
    if (!b || typeof b.Name !== 'string' || typeof b.From !== 'string')
      throw new EngineError('INVALID_ARGUMENT', 'a pool needs Name and From (the source container)');
    sendJson(
      res,
      201,
      await engine.createPool({ name: b.Name, from: b.From, size: Number(b.Size), ready: typeof b.Ready === 'string' && b.Ready ? b.Ready : undefined }),
    );
  });

  r.add('POST', '/keel/pools/{id}/take', async ({ res, engine, params, query, signal }) => {
    const t = qInt(query, 'timeout');
    const out = await engine.takeFromPool(params[0]!, { timeoutMs: t === undefined ? undefined : t * 1000, signal });
    sendJson(res, 200, { Id: out.id, Name: out.name, Ports: out.ports, WaitedMs: out.waitedMs });
  });

  r.add('DELETE', '/keel/pools/{id}', async ({ res, engine, params }) => {
    await engine.removePool(params[0]!);
    sendNoContent(res);
  });
}
