import { EngineError } from '../common/errors.ts';
import { logsReadable } from '../containers/logconfig.ts';
import { parseTime } from '../containers/logs.ts';
import { parseFilters } from '../engine/filters.ts';
import type { LogEntry } from '../runtime/index.ts';
import { containerFsRoutes } from './containers-fs.ts';
import { decodeCreateContainer } from './decode-container.ts';
import { frame, hijack, isUpgrade, readUpgradeBody } from './containers-stream.ts';
import { encodeContainerInspect, encodeContainerSummary } from './encode-containers.ts';
import { execRoutes } from './exec.ts';
import { qBool, qInt, readJsonBody, type Router, sendJson, sendNoContent } from './router.ts';
import { writeOrWait } from './stream.ts';
import { pump } from './pump.ts';

/** Docker's RFC3339Nano in UTC (trailing zeros of the fraction trimmed). */
export function formatTimeNs(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, frac ? `.${frac}Z` : 'Z');
}

function logChunk(e: LogEntry, timestamps: boolean): Buffer {
  return timestamps ? Buffer.concat([Buffer.from(`${formatTimeNs(e.timeNs)} `), e.line]) : e.line;
}

/** Container endpoints (registered before the image routes' catch-alls). */
export function containerRoutes(r: Router): void {
  r.add('GET', '/containers/json', async ({ res, engine, query }) => {
    const views = engine.listContainers({
      all: qBool(query, 'all'),
      limit: qInt(query, 'limit'),
      filters: parseFilters(query.get('filters')),
    });
    const withSize = qBool(query, 'size');
    const out = [];
    for (const v of views)
      out.push(encodeContainerSummary(v, engine.containerImageName(v.record), withSize ? await engine.containerSizes(v.record) : undefined));
    sendJson(res, 200, out);
  });

  r.add('POST', '/containers/create', async ({ req, res, engine, query, version }) => {
    const spec = decodeCreateContainer(await readJsonBody<unknown>(req), query.get('name') ?? undefined, version);
    const { id, warnings } = await engine.createContainer(spec);
    sendJson(res, 201, { Id: id, Warnings: warnings });
  });

  r.add('POST', '/containers/prune', async ({ res, engine, query }) => {
    const { deleted, reclaimed } = await engine.pruneContainers(parseFilters(query.get('filters')));
    sendJson(res, 200, { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
  });

  r.add('GET', '/containers/{id}/json', async ({ res, engine, params, query }) => {
    const v = engine.inspectContainer(params[0]!);
    const size = qBool(query, 'size') ? await engine.containerSizes(v.record) : undefined;
    sendJson(res, 200, encodeContainerInspect(v, v.execIds, '', size));
  });

  r.add('POST', '/containers/{id}/start', async ({ res, engine, params }) => {
    await engine.startContainer(params[0]!);
    sendNoContent(res);
  });

  r.add('POST', '/containers/{id}/stop', async ({ res, engine, params, query }) => {
    await engine.stopContainer(params[0]!, qInt(query, 't'));
    sendNoContent(res);
  });

  r.add('POST', '/containers/{id}/restart', async ({ res, engine, params, query }) => {
    await engine.restartContainer(params[0]!, qInt(query, 't'));
    sendNoContent(res);
  });

  r.add('POST', '/containers/{id}/kill', async ({ res, engine, params, query }) => {
    await engine.killContainer(params[0]!, query.get('signal') || 'KILL');
    sendNoContent(res);
  });

  r.add('POST', '/containers/{id}/pause', async ({ res, engine, params }) => {
    await engine.pauseContainer(params[0]!);
    sendNoContent(res);
  });

  r.add('POST', '/containers/{id}/unpause', async ({ res, engine, params }) => {
    await engine.unpauseContainer(params[0]!);
    sendNoContent(res);
  });

  r.add('POST', '/containers/{id}/rename', async ({ res, engine, params, query }) => {
    await engine.renameContainer(params[0]!, query.get('name') ?? '');
    sendNoContent(res);
  });

  r.add('DELETE', '/containers/{id}', async ({ res, engine, params, query }) => {
    await engine.removeContainer(params[0]!, { force: qBool(query, 'force'), volumes: qBool(query, 'v') });
    sendNoContent(res);
  });

  r.add('POST', '/containers/{id}/resize', async ({ res, engine, params, query }) => {
    const h = qInt(query, 'h') ?? 0;
    const w = qInt(query, 'w') ?? 0;
    await engine.resizeContainer(params[0]!, { height: h, width: w });
    res.writeHead(200, { 'Content-Length': 0 });
    res.end();
  });

  // The CLI calls start only after it has the headers: send them at once.
  r.add('POST', '/containers/{id}/wait', async ({ res, engine, params, query, signal }) => {
    const p = engine.waitContainer(params[0]!, query.get('condition') ?? '', signal);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    try {
      const code = await p;
      res.end(JSON.stringify({ Error: null, StatusCode: code }) + '\n');
    } catch (e) {
      if (!signal.aborted) res.end(JSON.stringify({ Error: { Message: (e as Error).message }, StatusCode: -1 }) + '\n');
    }
  });

  r.add('GET', '/containers/{id}/logs', async ({ res, engine, params, query, signal }) => {
    const c = engine.container(params[0]!);
    const stdout = qBool(query, 'stdout');
    const stderr = qBool(query, 'stderr');
    if (!stdout && !stderr) throw new EngineError('INVALID_ARGUMENT', 'You must choose at least one stream');
    const tailQ = query.get('tail');
    const tail = tailQ === null || tailQ === '' || tailQ === 'all' ? undefined : Number(tailQ);
    if (tail !== undefined && !Number.isInteger(tail)) throw new EngineError('INVALID_ARGUMENT', `invalid value for tail: ${tailQ}`);
    const timestamps = qBool(query, 'timestamps');
    const entries = engine.containerLogs(c.id, {
      stdout,
      stderr,
      follow: qBool(query, 'follow'),
      tail: tail !== undefined && tail >= 0 ? tail : undefined,
      since: parseTime(query.get('since'), 'since'),
      until: parseTime(query.get('until'), 'until'),
      signal,
    });
    res.writeHead(200, { 'Content-Type': 'application/vnd.docker.raw-stream' });
    res.flushHeaders();
    try {
      for await (const e of entries) {
        const data = logChunk(e, timestamps);
        if (!(await writeOrWait(res, c.config.Tty ? data : frame(e.stream === 'stdout' ? 1 : 2, data), signal))) break;
      }
    } catch (e) {
      if (!signal.aborted) throw e;
    }
    res.end();
  });

  r.add('POST', '/containers/{id}/attach', async ({ req, res, engine, params, query, signal }) => {
    const c = engine.container(params[0]!);
    const wantIn = qBool(query, 'stdin');
    const wantOut = qBool(query, 'stdout');
    const wantErr = qBool(query, 'stderr');
    await dropAttachBody(req);
    const h = hijack(req, res, c.config.Tty);
    if (qBool(query, 'logs') && logsReadable(c.hostConfig)) {
      for await (const e of engine.containerLogs(c.id, { stdout: wantOut, stderr: wantErr, signal })) {
        if (!h.write(e.stream === 'stdout' ? 1 : 2, e.line)) await h.drained();
        if (h.isClosed) break;
      }
    }
    if (!qBool(query, 'stream')) return h.end();
    const session = await engine.attachContainer(c, h.closed);
    if (!session) return h.end();
    if (h.isClosed) return session.close();
    await pump(h, { stdout: session.stdout, stderr: session.stderr, wantStdout: wantOut, wantStderr: wantErr, stdin: wantIn ? session.stdin : undefined });
    session.close();
    h.end();
  });

  containerFsRoutes(r);
  execRoutes(r);
}

/**
 * A client may send attach's options as a JSON body too (dockerode does:
 * `{"stream":true,"stdin":true,...}`). That body is not stdin: read it and
 * drop it, as exec start does, so the container's stdin starts with what the
 * client types. After an upgrade the body is the first Content-Length bytes
 * on the socket; on a plain POST it is the body only when it is JSON.
 */
async function dropAttachBody(req: import('node:http').IncomingMessage): Promise<void> {
  if (isUpgrade(req)) {
    if (Number(req.headers['content-length'] ?? 0) > 0)
      await readUpgradeBody(req).catch((e: unknown) => {
        if (!(e instanceof EngineError) || !/invalid JSON/.test(e.message)) throw e;
      });
    return;
  }
  if (/^application\/json/.test(req.headers['content-type'] ?? '')) await readJsonBody(req).catch(() => undefined);
}
