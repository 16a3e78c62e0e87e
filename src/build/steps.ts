/**
 * Running one compiled instruction of a stage: look the step up in the
 * cache, else do it (a metadata change, a RUN container, a COPY into a
 * snapshot) and register the resulting image. Every step prints what
 * docker's legacy builder prints for it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BuildCache } from './cache.ts';
import { EngineError } from '../common/errors.ts';
import { log } from '../common/log.ts';
import type { ImageRecord } from '../images/store.ts';
import type { Instruction } from './dockerfile/types.ts';
import { commitStep, stepImageOf } from './image.ts';
import { applyMeta, argvOf, metaText, nopCreatedBy, shellOf } from './meta.ts';
import { dropMountStubs, runContainer } from './run.ts';
import { copyStep } from './copystep.ts';
import { workdirStep } from './workdir.ts';
import { type BuildSession, envMap, PROXY_ARGS, RunFailedError, type StageState } from './session.ts';
import { runMounts } from './mounts.ts';
import { fromCacheSources, type StepIdentity } from './cachefrom.ts';

/** What the runtime creates in a rootfs only to mount over it (docker keeps these in an init layer). */
const RUNTIME_STUBS = ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname', '/dev/pts', '/dev/shm', '/dev/mqueue', '/dev/console', '/dev', '/proc', '/sys'];

/** Runs one instruction; on return `st.img` is the step's image. */
export async function runStep(s: BuildSession, st: StageState, inst: Instruction): Promise<void> {
  s.signal?.throwIfAborted();
  switch (inst.kind) {
    case 'RUN':
      return runInstruction(s, st, inst);
    case 'COPY':
    case 'ADD':
      return copyStep(s, st, inst);
    case 'WORKDIR':
      return workdirStep(s, st, inst);
    case 'ARG': {
      // A default is expanded with the line's earlier args at their final values (BuildKit): when one of
      // those came from a build-arg, the parser's expansion (with the defaults) is redone.
      let redo = false;
      const outer = s.lookup(st);
      for (const a of inst.args) {
        let v: string | undefined = a.default;
        if (s.hasBuildArg(a.name)) {
          v = s.buildArg(a.name);
          s.consumed.add(a.name);
          redo = true;
        } else if (a.default === undefined && s.metaArgs.has(a.name)) v = s.metaArgs.get(a.name);
        else if (redo && a.rawDefault !== undefined) v = s.deps.frontend.expand(a.rawDefault, (n) => (st.args.has(n) ? st.args.get(n) : outer(n)), s.escape);
        st.args.set(a.name, v);
      }
      return metaStep(s, st, inst);
    }
    default:
      return metaStep(s, st, inst);
  }
}

/** Cache lookup: prints docker's ` ---> Using cache` and moves the stage on when the image is still there. */
export async function fromCache(s: BuildSession, st: StageState, key: string, step?: StepIdentity): Promise<boolean> {
  if (s.req.noCache) return false;
  const hit = await s.deps.cache.get(key);
  let rec = hit && s.deps.images.store.get(hit.image);
  if (!rec && step) {
    rec = await fromCacheSources(s, st, step);
    if (rec) await s.deps.cache.put(key, rec.id);
  }
  if (!rec) return false;
  s.say(' ---> Using cache\n');
  await advance(s, st, rec);
  return true;
}

export async function advance(s: BuildSession, st: StageState, rec: ImageRecord): Promise<void> {
  st.img = await stepImageOf(s.deps.images, rec);
  s.say(` ---> ${rec.id.slice(7, 19)}\n`);
}

/** The key's parent part: the image, and SOURCE_DATE_EPOCH (a reproducible build makes other images). */
export function parentId(s: BuildSession, st: StageState): string {
  const id = st.img.record?.id ?? 'scratch';
  return s.epoch === undefined ? id : `${id}@${s.epoch}`;
}

/** Strips source positions: a key depends on what an instruction does, not where it is written. */
export function keyOf(inst: Instruction): unknown {
  const { loc: _loc, original: _orig, ...rest } = inst as Instruction & Record<string, unknown>;
  return rest;
}

async function metaStep(s: BuildSession, st: StageState, inst: Instruction): Promise<void> {
  const key = BuildCache.key([parentId(s, st), keyOf(inst)]);
  const r = applyMeta(inst, st.img.config.config ?? {}, st.cmdSet);
  st.cmdSet = r.cmdSet;
  const createdBy = nopCreatedBy(shellOf(st.img.config.config), metaText(inst));
  if (await fromCache(s, st, key, { createdBy, runConfig: r.config, layer: false })) return;
  // The legacy builder commits metadata steps through a container it never starts; it shows as one.
  const cid = randomBytes(32).toString('hex');
  s.say(` ---> Running in ${cid.slice(0, 12)}\n`);
  const rec = await commitStep(s.deps.images, st.img, { runConfig: r.config, createdBy, signal: s.signal, sourceDateEpoch: s.epoch });
  if (r.author) await setAuthor(s, rec, r.author);
  await s.deps.cache.put(key, rec.id);
  if (s.req.rm !== false) s.say(`Removing intermediate container ${cid.slice(0, 12)}\n`);
  await advance(s, st, rec);
}

async function setAuthor(_s: BuildSession, _rec: ImageRecord, _author: string): Promise<void> {
  // MAINTAINER is deprecated; its value is kept in history text only.
}

/** The RUN's environment: the image's ENV, then declared ARGs with values, then proxy args given. */
function runEnv(s: BuildSession, st: StageState): { env: string[]; argPairs: string[] } {
  const env = envMap(st.img.config.config?.Env);
  const argPairs: string[] = [];
  for (const [k, v] of st.args) if (v !== undefined && !env.has(k)) argPairs.push(`${k}=${v}`);
  const extra: string[] = [];
  for (const p of PROXY_ARGS) if (s.hasBuildArg(p) && !st.args.has(p)) extra.push(`${p}=${s.buildArg(p)}`);
  return { env: [...argPairs, ...extra], argPairs };
}

async function runInstruction(s: BuildSession, st: StageState, inst: Extract<Instruction, { kind: 'RUN' }>): Promise<void> {
  const shell = shellOf(st.img.config.config);
  // Heredocs are already in the compiled command (or in pipeFile for a `#!` script).
  const argv = argvOf(inst.command, shell);
  const { env, argPairs } = runEnv(s, st);
  const network = inst.network && inst.network !== 'default' ? inst.network : s.req.networkMode || 'default';
  const mountKey = [...inst.mounts.map((m) => (m.type === 'secret' ? { type: 'secret', id: m.id, target: m.target, env: m.env } : m)), inst.pipeFile ?? null];
  const key = BuildCache.key([parentId(s, st), 'RUN', argv, argPairs.sort(), network, mountKey]);
  const createdBy = `${argPairs.length ? `|${argPairs.length} ${argPairs.join(' ')} ` : ''}${argv.join(' ')}`;
  if (await fromCache(s, st, key, { createdBy, runConfig: st.img.config.config ?? {}, layer: true })) return;
  // docker needs an image to create the container from: scratch gets an empty one.
  if (!st.img.record)
    st.img = await stepImageOf(
      s.deps.images,
      await commitStep(s.deps.images, st.img, { runConfig: st.img.config.config ?? {}, createdBy: '', signal: s.signal }),
    );
  const mounts = await runMounts(s, st, inst.mounts, inst.pipeFile);
  try {
    const keep = s.req.rm === false;
    const tRun = performance.now();
    const r = await runContainer(s.deps.containers, {
      image: st.img.record!.id,
      argv,
      env: [...env, ...mounts.env],
      user: st.img.config.config?.User,
      workdir: st.img.config.config?.WorkingDir,
      networkMode: network === 'default' ? 'bridge' : network,
      extraHosts: s.req.extraHosts,
      resources: s.req.resources,
      mounts: mounts.specs,
      keep,
      quiet: s.quiet,
      out: s.out,
      signal: s.signal,
    });
    let released = false;
    try {
      if (r.code !== 0) {
        const text = argv.join(' ');
        throw new RunFailedError(`The command '${text}' returned a non-zero code: ${r.code}`, r.code);
      }
      const layers = st.img.record!.chainIds.map((c) => s.deps.images.snapshots.layerDir(c));
      const below = (p: string) => layers.some((l) => fs.existsSync(path.join(l, p)));
      dropMountStubs(r.upperDir, [...mounts.specs.map((m) => m.target).reverse(), ...RUNTIME_STUBS], below);
      const tCommit = performance.now();
      const rec = await commitStep(s.deps.images, st.img, {
        runConfig: st.img.config.config ?? {},
        createdBy,
        upperDir: r.upperDir,
        adoptUpper: !keep,
        signal: s.signal,
        sourceDateEpoch: s.epoch,
      });
      log.debug('build run', { runMs: Math.round(tCommit - tRun), commitMs: Math.round(performance.now() - tCommit) });
      await s.deps.cache.put(key, rec.id);
      await r.release();
      released = true;
      if (!keep) s.say(`Removing intermediate container ${r.containerId.slice(0, 12)}\n`);
      await advance(s, st, rec);
    } finally {
      // forcerm, or a failure: docker keeps a failed container unless forcerm; keel leaves nothing behind unless rm=false.
      if (!released) await r.release();
    }
  } finally {
    await mounts.release();
  }
}

export function stepError(e: unknown): never {
  if (e instanceof EngineError) throw e;
  throw new EngineError('INTERNAL', (e as Error).message ?? String(e), { cause: e });
}
