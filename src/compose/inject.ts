/**
 * secrets and configs that are not files on the host (`environment:` and
 * `content:` sources) reach a container as docker compose puts them there
 * for a local project (pkg/compose/secrets.go): before each start of the
 * container (up, start, run), a one-file tar goes through the engine's
 * archive upload (`docker cp`'s PUT archive), the file mode 0444 unless the
 * long syntax gives `mode`, owned by its `uid`/`gid` (root by default).
 * Nothing is written on the host, so there is nothing for `down` to clean;
 * a started container gets the current content. File sources stay
 * read-only bind mounts (convert.ts).
 */
import { Readable } from 'node:stream';
import { EngineError } from '../common/errors.ts';
import type { ComposeBackend } from './backend.ts';
import type { FileObject, Project, Service, ServiceFileRef } from './types.ts';

export interface InjectedFile {
  /** Absolute, in the container. */
  path: string;
  content: string;
  mode: number;
  uid: number;
  gid: number;
}

type Kind = 'secrets' | 'configs';

/** Where a service's secret or config lands: /run/secrets/<name> and /<name> by default, a relative target under them. */
export function fileTarget(kind: Kind, r: ServiceFileRef): string {
  const base = kind === 'secrets' ? '/run/secrets/' : '/';
  if (!r.target) return `${base}${r.source}`;
  return r.target.startsWith('/') ? r.target : `${base}${r.target}`;
}

/** A top-level secret or config whose content is not a host file (environment or content), else undefined. */
function inlineContent(p: Project, kind: Kind, key: string, obj: FileObject): string | undefined {
  if (obj.content !== undefined && obj.content !== '') return obj.content;
  if (obj.environment) {
    const v = p.environment[obj.environment];
    if (v === undefined)
      throw new EngineError('INVALID_ARGUMENT', `environment variable "${obj.environment}" required by ${kind.slice(0, -1)} "${key}" is not set`);
    return v;
  }
  return undefined;
}

/** Whether the object is given inline (environment or content), not as a file: such objects are copied in, not mounted. */
export function isInline(obj: FileObject): boolean {
  return !obj.file && (obj.environment !== undefined || obj.content !== undefined);
}

function id(v: string | undefined, what: string, s: Service): number {
  if (v === undefined || v === '') return 0;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new EngineError('INVALID_ARGUMENT', `service "${s.name}": ${what} "${v}" is not a numeric id`);
  return n;
}

/** The files a service's container gets copied in before each start. */
export function injectedFiles(p: Project, s: Service): InjectedFile[] {
  const out: InjectedFile[] = [];
  for (const kind of ['secrets', 'configs'] as const) {
    for (const r of s[kind] ?? []) {
      const obj = p[kind][r.source];
      if (!obj || !isInline(obj)) continue;
      const content = inlineContent(p, kind, r.source, obj);
      // an empty value gives no file, as in docker compose
      if (!content) continue;
      if (s.read_only)
        throw new EngineError(
          'INVALID_ARGUMENT',
          `cannot create ${kind.slice(0, -1)} "${r.source}" in read-only service ${s.name}: \`file\` is the sole supported option`,
        );
      out.push({ path: fileTarget(kind, r), content, mode: r.mode ?? 0o444, uid: id(r.uid, 'uid', s), gid: id(r.gid, 'gid', s) });
    }
  }
  return out;
}

/** What docker compose warns of a service's file sources: their uid, gid and mode are not applied to a bind mount. */
export function fileRefWarnings(p: Project, s: Service): string[] {
  const out: string[] = [];
  for (const kind of ['secrets', 'configs'] as const) {
    const ignored = (s[kind] ?? []).some((r) => p[kind][r.source]?.file && (r.uid !== undefined || r.gid !== undefined || r.mode !== undefined));
    if (ignored) out.push(`${kind === 'secrets' ? 'secrets' : 'config'} \`uid\`, \`gid\` and \`mode\` are not supported, they will be ignored`);
  }
  return out;
}

/** A tar of the files, named relative to `/`. */
export async function filesTar(files: InjectedFile[]): Promise<Buffer> {
  const tarStream = (await import('tar-stream')).default;
  const pack = tarStream.pack();
  const now = new Date();
  for (const f of files) {
    pack.entry({ name: f.path.replace(/^\/+/, ''), mode: f.mode, uid: f.uid, gid: f.gid, mtime: now, type: 'file' }, f.content);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Copies the service's inline secrets and configs into a created container. */
export async function injectFiles(b: ComposeBackend, p: Project, s: Service, id: string): Promise<void> {
  const files = injectedFiles(p, s);
  if (!files.length) return;
  await b.copyToContainer(id, '/', Readable.from([await filesTar(files)]));
}
