import type { IncomingMessage } from 'node:http';
import { parsePlatform } from '../oci/types.ts';
import { decodeAuthHeader } from '../registry/index.ts';
import { EngineError } from '../common/errors.ts';
import { parseFilters } from '../engine/filters.ts';
import { encodeImageInspect, encodeImageSummary } from './encode-images.ts';
import { JsonStream, qBool, type Router, sendJson } from './router.ts';
import { sendStream } from './stream.ts';

/** Image endpoints; registered last because `/images/{name}/…` captures slashes. */
export function imageRoutes(r: Router): void {
  r.add('GET', '/images/json', async ({ res, engine, query }) => {
    const views = await engine.listImages({ all: qBool(query, 'all'), filters: parseFilters(query.get('filters')) });
    // Newest first, like dockerd; the ID breaks ties so the order is stable across restarts.
    views.sort((a, b) => (b.config.created ?? '').localeCompare(a.config.created ?? '') || a.record.id.localeCompare(b.record.id));
    sendJson(res, 200, views.map(encodeImageSummary));
  });

  r.add('POST', '/images/load', async ({ req, res, engine, signal }) => {
    const out = new JsonStream(res);
    let result;
    try {
      result = await engine.loadImages(req, signal);
    } catch (e) {
      if (res.headersSent) return (out.fail(e), out.end());
      // Drain what the client is still sending so it sees the answer.
      req.resume();
      throw e;
    }
    for (const m of result.messages) out.write({ stream: `${m}\n` });
    out.end();
  });

  r.add('GET', '/images/get', async ({ res, engine, query, signal }) => {
    const names = query.getAll('names');
    await sendStream(res, engine.saveImages(names, signal), signal, { 'Content-Type': 'application/x-tar' });
  });

  r.add('POST', '/images/prune', async ({ res, engine, query }) => {
    const filters = parseFilters(query.get('filters'));
    const dangling = filters.dangling?.[0];
    delete filters.dangling;
    const { deleted, reclaimed } = await engine.pruneImages({ all: dangling === 'false' || dangling === '0', filters });
    const items = [...deleted.untagged.map((u) => ({ Untagged: u })), ...deleted.deleted.map((d) => ({ Deleted: d }))];
    sendJson(res, 200, { ImagesDeleted: items.length ? items : null, SpaceReclaimed: reclaimed });
  });

  r.add('POST', '/images/create', async ({ req, res, engine, query, signal }) => {
    const fromSrc = query.get('fromSrc');
    if (fromSrc === null) {
      const from = query.get('fromImage');
      if (!from) throw new EngineError('INVALID_ARGUMENT', 'fromImage or fromSrc must be given');
      const tag = query.get('tag');
      const ref = tag ? (tag.startsWith('sha256:') ? `${from}@${tag}` : `${from}:${tag}`) : from;
      const platform = query.get('platform');
      const out = new JsonStream(res);
      try {
        await engine.pullImage(ref, {
          auth: decodeAuthHeader(header(req, 'x-registry-auth')),
          platform: platform ? parsePlatform(platform) : undefined,
          allTags: !tag,
          signal,
          onProgress: (m) => out.write(m),
        });
      } catch (e) {
        if (!res.headersSent) throw e;
        out.fail(e);
      }
      return out.end();
    }
    if (fromSrc !== '-') throw new EngineError('INVALID_ARGUMENT', 'import from a URL is not supported: pipe the archive in with "-"');
    const repo = query.get('repo') ?? '';
    const tag = query.get('tag') ?? '';
    const ref = repo ? (tag ? `${repo}:${tag}` : repo) : undefined;
    const rec = await engine.importImage(req, { ref, changes: query.getAll('changes'), message: query.get('message') ?? undefined, signal });
    const out = new JsonStream(res);
    out.write({ status: rec.id });
    out.end();
  });

  r.add('POST', '/images/{name}/push', async ({ req, res, engine, params, query, signal }) => {
    const tag = query.get('tag');
    const ref = tag ? `${params[0]}:${tag}` : params[0]!;
    const out = new JsonStream(res);
    try {
      await engine.pushImage(ref, { auth: decodeAuthHeader(header(req, 'x-registry-auth')), allTags: !tag, signal, onProgress: (m) => out.write(m) });
    } catch (e) {
      if (!res.headersSent) throw e;
      out.fail(e);
    }
    out.end();
  });

  r.add('GET', '/images/{name}/json', async ({ res, engine, params }) => {
    sendJson(res, 200, encodeImageInspect(await engine.inspectImage(params[0]!), engine.dataRoot));
  });

  r.add('GET', '/images/{name}/history', async ({ res, engine, params }) => {
    const h = await engine.imageHistory(params[0]!);
    sendJson(
      res,
      200,
      h.map((e) => ({ Comment: e.comment, Created: e.created, CreatedBy: e.createdBy, Id: e.id, Size: e.size, Tags: e.tags.length ? e.tags : null })),
    );
  });

  r.add('GET', '/images/{name}/get', async ({ res, engine, params, signal }) => {
    await sendStream(res, engine.saveImages([params[0]!], signal), signal, { 'Content-Type': 'application/x-tar' });
  });

  r.add('POST', '/images/{name}/tag', async ({ res, engine, params, query }) => {
    const repo = query.get('repo');
    if (!repo) throw new EngineError('INVALID_ARGUMENT', 'repository name must be given (repo=)');
    const tag = query.get('tag');
    await engine.tagImage(params[0]!, tag ? `${repo}:${tag}` : repo);
    res.writeHead(201);
    res.end();
  });

  r.add('DELETE', '/images/{name}', async ({ res, engine, params, query }) => {
    const r = await engine.removeImage(params[0]!, { force: qBool(query, 'force'), noPrune: qBool(query, 'noprune') });
    const { familiarName, parseReference } = await import('../oci/reference.ts');
    sendJson(res, 200, [...r.untagged.map((u) => ({ Untagged: familiarName(parseReference(u)) })), ...r.deleted.map((d) => ({ Deleted: d }))]);
  });
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
