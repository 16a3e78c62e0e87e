/**
 * RUN: a real container on runc through the containers layer, on an overlay
 * snapshot of the previous step's image. Its output goes to the build
 * stream as it comes; its upper directory becomes the step's layer. The
 * container is removed on every path unless the client asked to keep it
 * (rm=false); a cancelled build kills it first.
 */
import fs from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { EngineError } from '../common/errors.ts';
import { log } from '../common/log.ts';
import type { ContainerService } from '../containers/service.ts';
import type { MountOption, ResourcesSpec } from '../containers/spec.ts';
import type { BuildOutput } from './types.ts';

export interface RunStepOptions {
  image: string;
  argv: string[];
  env: string[];
  user?: string;
  workdir?: string;
  networkMode: string;
  extraHosts?: string[];
  resources?: ResourcesSpec;
  mounts: MountOption[];
  /** Keep the container after the step (rm=false). */
  keep: boolean;
  quiet: boolean;
  out: BuildOutput;
  signal?: AbortSignal;
}

export interface RunStepResult {
  containerId: string;
  code: number;
  /** Removes the container (after its upper dir was committed). */
  release(): Promise<void>;
  upperDir: string;
}

/** Runs the command to its exit. The caller commits `upperDir`, then calls release(). */
export async function runContainer(containers: ContainerService, o: RunStepOptions): Promise<RunStepResult> {
  const { id } = await containers.create({
    image: o.image,
    cmd: o.argv,
    entrypoint: [''],
    env: o.env,
    user: o.user ?? '',
    workingDir: o.workdir ?? '',
    attachStdout: true,
    attachStderr: true,
    labels: { 'io.keel.build': '' },
    networkMode: o.networkMode,
    ...(o.extraHosts?.length ? { extraHosts: o.extraHosts } : {}),
    ...(o.mounts.length ? { mounts: o.mounts.map((mount) => ({ kind: 'mount' as const, mount })) } : {}),
    ...(o.resources ? { resources: o.resources } : {}),
  });
  const release = async () => {
    if (o.keep) return;
    await containers.remove(id, { force: true, volumes: true }).catch((e) => log.warn('removing a build container failed', { id, error: String(e) }));
  };
  try {
    if (!o.quiet) o.out.stream(` ---> Running in ${id.slice(0, 12)}\n`);
    o.signal?.throwIfAborted();
    const rec = containers.find(id);
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const exited = containers.wait(id, 'next-exit', ac.signal);
      // awaited below; this only keeps a rejection (the abort) from being unhandled before then
      exited.catch(() => {});
      const session = containers.attach(rec);
      await containers.start(id);
      const s = await session;
      const pump = (stream: NodeJS.ReadableStream | undefined) =>
        new Promise<void>((resolve) => {
          if (!stream) return resolve();
          const dec = new StringDecoder('utf8');
          stream.on('data', (b: Buffer) => {
            if (!o.quiet) {
              const t = dec.write(b);
              if (t) o.out.stream(t);
            }
          });
          stream.on('end', () => {
            const t = dec.end();
            if (t && !o.quiet) o.out.stream(t);
            resolve();
          });
          stream.on('error', () => resolve());
        });
      const pumped = Promise.all([pump(s?.stdout), pump(s?.stderr)]);
      let code: number;
      try {
        code = await exited;
      } catch (e) {
        // Cancelled: the client went away. Kill the command; release() removes the container.
        s?.close();
        await containers.kill(id, 'KILL').catch(() => {});
        throw o.signal?.aborted ? new EngineError('CANCELLED', 'build cancelled') : e;
      }
      await Promise.race([pumped, new Promise((r) => setTimeout(r, 2000))]);
      s?.close();
      return { containerId: id, code, release, upperDir: containers.upperDir(id) };
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
    }
  } catch (e) {
    // undoing a failed RUN: its own error is the one to report; the builder sweeps build containers at start
    if (!o.keep) await containers.remove(id, { force: true, volumes: true }).catch(() => {});
    throw e;
  }
}

/**
 * Drops what the runtime made in the upper dir only to mount things there:
 * an empty file or directory at a mount target (RUN --mount, /etc/hosts...)
 * that the image below did not have. docker keeps those in an init layer.
 */
export function dropMountStubs(upperDir: string, targets: string[], existsBelow: (p: string) => boolean): void {
  for (const t of targets) {
    const rel = path.posix.normalize(t).replace(/^\/+/, '');
    if (!rel || rel.startsWith('..')) continue;
    if (existsBelow('/' + rel)) continue;
    const abs = path.join(upperDir, rel);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch {
      continue;
    }
    try {
      if (st.isDirectory() && fs.readdirSync(abs).length === 0) fs.rmdirSync(abs);
      else if (st.isFile() && st.size === 0) fs.unlinkSync(abs);
    } catch {
      // leave it
    }
  }
}
