import { EngineError } from '../common/errors.ts';
import type { StatsSample } from '../containers/stats.ts';
import { isRunning } from '../containers/types.ts';
import { decodeUpdateContainer } from './decode-container.ts';
import { qBool, readJsonBody, type Router, sendJson } from './router.ts';
import { sendStream, sleepUnlessGone, writeOrWait } from './stream.ts';

const statHeader = (s: object) => Buffer.from(JSON.stringify(s)).toString('base64');

/** cp, export, commit, diff, top, stats, update. */
export function containerFsRoutes(r: Router): void {
  r.add('HEAD', '/containers/{id}/archive', async ({ res, engine, params, query }) => {
    const st = await engine.statContainerPath(params[0]!, query.get('path'));
    res.writeHead(200, { 'X-Docker-Container-Path-Stat': statHeader(st), 'Content-Type': 'application/json' });
    res.end();
  });

  r.add('GET', '/containers/{id}/archive', async ({ res, engine, params, query, signal }) => {
    const { stat, tar } = await engine.getContainerArchive(params[0]!, query.get('path'));
    await sendStream(res, tar, signal, { 'X-Docker-Container-Path-Stat': statHeader(stat), 'Content-Type': 'application/x-tar' });
  });

  r.add('PUT', '/containers/{id}/archive', async ({ req, res, engine, params, query, signal }) => {
    try {
      await engine.putContainerArchive(params[0]!, query.get('path'), req, { noOverwriteDirNonDir: qBool(query, 'noOverwriteDirNonDir'), signal });
    } catch (e) {
      req.resume();
      throw e;
    }
    res.writeHead(200, { 'Content-Length': 0 });
    res.end();
  });

  r.add('GET', '/containers/{id}/export', async ({ res, engine, params, signal }) => {
    await sendStream(res, await engine.exportContainer(params[0]!), signal, { 'Content-Type': 'application/x-tar' });
  });

  r.add('GET', '/containers/{id}/changes', async ({ res, engine, params }) => {
    sendJson(res, 200, await engine.containerChanges(params[0]!));
  });

  r.add('POST', '/commit', async ({ req, res, engine, query }) => {
    const container = query.get('container');
    if (!container) throw new EngineError('INVALID_ARGUMENT', 'container must be given: ?container=<name or id>');
    const body = await readJsonBody<Record<string, unknown>>(req);
    const repo = query.get('repo') ?? '';
    const tag = query.get('tag') ?? '';
    const img = await engine.commitContainer(container, {
      ref: repo ? (tag ? `${repo}:${tag}` : repo) : undefined,
      comment: query.get('comment') ?? undefined,
      author: query.get('author') ?? undefined,
      changes: query
        .getAll('changes')
        .flatMap((c) => c.split('\n'))
        .filter(Boolean),
      pause: qBool(query, 'pause', true),
      config: body ?? null,
    });
    sendJson(res, 201, { Id: img.id });
  });

  r.add('GET', '/containers/{id}/top', async ({ res, engine, params, query }) => {
    sendJson(res, 200, await engine.topContainer(params[0]!, query.get('ps_args') || '-ef'));
  });

  r.add('POST', '/containers/{id}/update', async ({ req, res, engine, params }) => {
    const spec = decodeUpdateContainer(await readJsonBody<unknown>(req));
    sendJson(res, 200, await engine.updateContainer(params[0]!, spec));
  });

  r.add('GET', '/containers/{id}/stats', async ({ res, engine, params, query, signal }) => {
    const c = engine.container(params[0]!);
    const stream = qBool(query, 'stream', true);
    const oneShot = qBool(query, 'one-shot');
    const sample = () => engine.containerStats(c);
    const shape = (cur: StatsSample, pre: StatsSample | undefined) => ({
      ...cur,
      preread: pre?.read ?? '0001-01-01T00:00:00Z',
      precpu_stats: pre?.cpu_stats ?? {
        cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
        system_cpu_usage: 0,
        online_cpus: 0,
        throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
      },
      name: `/${c.name}`,
      id: c.id,
    });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    if (!stream) {
      let pre: StatsSample | undefined;
      if (!oneShot && isRunning(c)) {
        // docker's --no-stream shows CPU % over a short interval, so it takes two samples.
        pre = sample();
        await new Promise((r) => setTimeout(r, 250));
      }
      res.end(JSON.stringify(shape(sample(), pre)) + '\n');
      return;
    }
    res.flushHeaders();
    let pre: StatsSample | undefined;
    while (!signal.aborted) {
      const cur = sample();
      if (!(await writeOrWait(res, JSON.stringify(shape(cur, pre)) + '\n', signal))) break;
      pre = cur;
      if (!isRunning(c) && !engine.containerExists(c.id)) break;
      await sleepUnlessGone(1000, signal);
    }
    res.end();
  });
}
