/**
 * The builder: receives the context, parses the Dockerfile, picks the
 * stages the target needs, and runs them step by step, printing what
 * docker's legacy builder prints. Whatever happens (a failed step, a
 * client that goes away) the context, mounts, snapshots and containers of
 * the build are released; only images of completed steps (the cache) stay.
 */
import { EngineError, invalid } from '../common/errors.ts';
import { log } from '../common/log.ts';
import { hostPlatform, parsePlatform } from '../oci/types.ts';
import { familiarName, parseReference } from '../oci/reference.ts';
import { readContextFile, receiveContext } from './context.ts';
import type { Dockerfile, RawInstruction, Stage } from './dockerfile/types.ts';
import { scratchImage, stepImageOf, type StepImage } from './image.ts';
import { BuildSession, type BuilderDeps, type StageState } from './session.ts';
import { runStep } from './steps.ts';
import { runStages } from './parallel.ts';
import type { BuildOutput, BuildRequest, BuildResult } from './types.ts';

export async function build(deps: BuilderDeps, req: BuildRequest, out: BuildOutput): Promise<BuildResult> {
  if (req.signal?.aborted) throw new EngineError('CANCELLED', 'build cancelled');
  const t0 = performance.now();
  const o = { maxBytes: req.maxContextBytes, signal: req.signal };
  const ctx = deps.contexts ? await deps.contexts.receive(req.context, o) : await receiveContext(deps.dataRoot, req.context, o);
  log.debug('build context received', { bytes: ctx.size, ms: Math.round(performance.now() - t0) });
  try {
    const dfName = req.dockerfile || 'Dockerfile';
    const text = await readContextFile(ctx.dir, dfName);
    if (text === undefined) throw new EngineError('INVALID_ARGUMENT', `Cannot locate specified Dockerfile: ${dfName}`);
    const df = deps.frontend.parseDockerfile(text, { file: dfName });
    const ignoreText = (await readContextFile(ctx.dir, `${dfName}.dockerignore`)) ?? (await readContextFile(ctx.dir, '.dockerignore'));
    const ignored = ignoreText ? deps.frontend.ignoreMatcher(deps.frontend.parseDockerignore(ignoreText)) : undefined;
    const s = new BuildSession(deps, req, out, ctx, df, ignored);
    return await runBuild(s);
  } finally {
    await ctx.release();
  }
}

/** The platform args BuildKit predefines (native platform only). */
function platformArgs(): Record<string, string> {
  const p = hostPlatform();
  const plat = `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
  return {
    TARGETPLATFORM: plat,
    TARGETOS: p.os,
    TARGETARCH: p.architecture,
    TARGETVARIANT: p.variant ?? '',
    BUILDPLATFORM: plat,
    BUILDOS: p.os,
    BUILDARCH: p.architecture,
    BUILDVARIANT: p.variant ?? '',
  };
}

function checkPlatform(p: string | undefined): void {
  if (!p) return;
  const want = parsePlatform(p);
  const host = hostPlatform();
  if (want.os !== host.os || want.architecture !== host.architecture) {
    throw invalid(`platform ${p} is not supported: keel builds for the native platform only (${host.os}/${host.architecture})`);
  }
}

async function runBuild(s: BuildSession): Promise<BuildResult> {
  const { frontend } = s.deps;
  const df = s.df;
  if (!df.stages.length) throw invalid('the Dockerfile has no FROM instruction (file with no instructions?)');
  for (const [k, v] of Object.entries(platformArgs())) s.metaArgs.set(k, v);
  for (const raw of df.metaArgs) {
    const inst = frontend.compileInstruction(raw, s.metaLookup, s.escape);
    if (inst.kind !== 'ARG') continue;
    let redo = false;
    for (const a of inst.args) {
      const given = s.hasBuildArg(a.name);
      if (given) s.consumed.add(a.name);
      const v = given ? s.buildArg(a.name) : redo && a.rawDefault !== undefined ? frontend.expand(a.rawDefault, s.metaLookup, s.escape) : a.default;
      redo ||= given;
      s.metaArgs.set(a.name, v);
    }
  }
  const froms = df.stages.map((st) => frontend.compileFrom(st.from, s.metaLookup));
  for (const f of froms) checkPlatform(f.platform);
  let target = df.stages[df.stages.length - 1]!;
  if (s.req.target) {
    const t = df.stages.find((x) => x.name === s.req.target!.toLowerCase());
    if (!t) throw invalid(`failed to reach build target ${s.req.target} in Dockerfile`);
    target = t;
  }
  const deps = reachable(
    s,
    df,
    target,
    froms.map((f) => f.image),
  );
  const run = df.stages.filter((x) => deps.has(x.index));
  s.total = run.reduce((n, x) => n + 1 + x.instructions.length, 0) + (s.req.labels && Object.keys(s.req.labels).length ? 1 : 0);
  const st = await runStages(s, run, deps, (sub, stage) => runStage(sub, stage, froms[stage.index]!.image));
  if (s.req.labels && Object.keys(s.req.labels).length) {
    const line = `LABEL ${Object.entries(s.req.labels)
      .map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`)
      .join(' ')}`;
    s.step++;
    s.say(`Step ${s.step}/${s.total} : ${line}`);
    s.say('\n');
    await runStep(s, st, { kind: 'LABEL', loc: { line: 0, endLine: 0 }, original: line, pairs: Object.entries(s.req.labels) });
  }
  const rec = st.img.record;
  if (!rec) throw invalid('No image was generated. Is your Dockerfile empty?');
  const unused = Object.keys(s.req.buildArgs ?? {})
    .filter((k) => !s.consumed.has(k) && !isPredefined(k))
    .sort();
  if (unused.length) s.say(`[Warning] One or more build-args [${unused.join(' ')}] were not consumed\n`);
  s.out.aux({ ID: rec.id });
  if (s.quiet) s.out.stream(`${rec.id}\n`);
  s.say(`Successfully built ${rec.id.slice(7, 19)}\n`);
  const tags: string[] = [];
  for (const t of s.req.tags ?? []) {
    // A name that already points at the image is left alone: a no-op rebuild writes nothing.
    if (s.deps.images.store.tryResolve(t)?.id !== rec.id) await s.deps.tag(rec.id, t);
    tags.push(t);
    s.say(`Successfully tagged ${familiarTagged(t)}\n`);
  }
  return { id: rec.id, tags };
}

function isPredefined(k: string): boolean {
  return k === 'SOURCE_DATE_EPOCH' || /^(HTTP_PROXY|HTTPS_PROXY|FTP_PROXY|NO_PROXY|ALL_PROXY)$/i.test(k) || k in platformArgs();
}

/** Stages the target needs (itself, the stages its FROM, COPY --from and RUN --mount from= name, recursively), each with the stages it uses. */
function reachable(s: BuildSession, df: Dockerfile, target: Stage, fromImages: string[]): Map<number, number[]> {
  const byRef = (ref: string, before: number): number | undefined => {
    const r = ref.toLowerCase();
    const named = df.stages.find((x) => x.name === r && x.index < before);
    if (named) return named.index;
    if (/^\d+$/.test(r) && Number(r) < before) return Number(r);
    return undefined;
  };
  const out = new Map<number, number[]>();
  const visit = (st: Stage) => {
    if (out.has(st.index)) return;
    const uses: number[] = [];
    out.set(st.index, uses);
    const refs = [fromImages[st.index]!];
    for (const raw of st.instructions) refs.push(...fromRefs(raw).map((r) => s.deps.frontend.expand(r, s.metaLookup, s.escape)));
    for (const r of refs) {
      const i = byRef(r, st.index);
      if (i === undefined) continue;
      uses.push(i);
      visit(df.stages[i]!);
    }
  };
  visit(target);
  return out;
}

function fromRefs(raw: RawInstruction): string[] {
  const out: string[] = [];
  for (const f of raw.flags) {
    if (f.name === 'from' && f.value) out.push(f.value);
    if (f.name === 'mount' && f.value) {
      const m = /(?:^|,)from=([^,]+)/.exec(f.value);
      if (m) out.push(m[1]!);
    }
  }
  return out;
}

async function runStage(s: BuildSession, stage: Stage, image: string): Promise<StageState> {
  s.step++;
  s.say(`Step ${s.step}/${s.total} : ${stage.from.original}`);
  s.say('\n');
  const img = await baseImage(s, stage, image);
  const st: StageState = { stage, img, args: new Map(), cmdSet: false };
  if (img.record) s.say(` ---> ${img.record.id.slice(7, 19)}\n`);
  // ONBUILD triggers of the base image run right after FROM, and are not inherited further.
  const triggers = img.config.config?.OnBuild ?? [];
  if (triggers.length) {
    s.say(`# Executing ${triggers.length} build trigger${triggers.length > 1 ? 's' : ''}\n`);
    st.img = { ...img, config: { ...img.config, config: { ...img.config.config, OnBuild: null } } };
    for (const t of triggers) {
      const raw = s.deps.frontend.parseInstruction(t, s.escape);
      if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(raw.keyword)) throw invalid(`${raw.keyword} isn't allowed as an ONBUILD trigger`);
      await runStep(s, st, s.deps.frontend.compileInstruction(raw, s.lookup(st), s.escape));
    }
  }
  for (const raw of stage.instructions) {
    s.signal?.throwIfAborted();
    s.step++;
    s.say(`Step ${s.step}/${s.total} : ${raw.original}`);
    s.say('\n');
    const inst = s.deps.frontend.compileInstruction(raw, s.lookup(st), s.escape);
    const t0 = performance.now();
    await runStep(s, st, inst);
    log.debug('build step', { step: s.step, instruction: raw.original.slice(0, 80), ms: Math.round(performance.now() - t0) });
  }
  return st;
}

async function baseImage(s: BuildSession, stage: Stage, image: string): Promise<StepImage> {
  if (image.toLowerCase() === 'scratch') return scratchImage();
  const lower = image.toLowerCase();
  const named = s.df.stages.find((x) => x.name === lower && x.index < stage.index);
  const idx = named ? named.index : /^\d+$/.test(image) && Number(image) < stage.index ? Number(image) : undefined;
  if (idx !== undefined) {
    const r = s.results.get(idx);
    if (!r) throw invalid(`stage ${image} has not been built`);
    return r;
  }
  let rec = s.req.pull ? undefined : s.deps.images.store.tryResolve(image);
  if (!rec) rec = await s.deps.pull(image, { auth: s.authFor(image), signal: s.signal, onProgress: (m) => s.out.progress(m) });
  return stepImageOf(s.deps.images, rec);
}

/** `name:tag` as docker prints a tag it applied (`foo` -> `foo:latest`). */
function familiarTagged(t: string): string {
  return familiarName(parseReference(t, { defaultTag: true }));
}
