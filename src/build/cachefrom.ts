/**
 * `--cache-from` images (e.g. pulled from a registry on a fresh CI machine)
 * as cache, the way docker's legacy builder uses them: a candidate matches
 * a step when its layers and history begin with the current image's, and
 * its next history entry was made by the same instruction (`created_by`).
 * The step's image is then made from the candidate's layers up to that
 * point, with the step's config: no command runs. Once a candidate
 * matched, the build sticks to it, as docker does.
 */
import type { ImageRecord } from '../images/store.ts';
import type { ContainerConfig, ImageConfig } from '../oci/types.ts';
import type { BuildSession, StageState } from './session.ts';

export interface StepIdentity {
  createdBy: string;
  runConfig: ContainerConfig;
  /** The step adds a layer (RUN, COPY, ADD). */
  layer: boolean;
}

interface Candidate {
  rec: ImageRecord;
  config: ImageConfig;
}

const sources = new WeakMap<BuildSession, Candidate[]>();

async function candidates(s: BuildSession): Promise<Candidate[]> {
  let c = sources.get(s);
  if (c) return c;
  c = [];
  for (const ref of s.req.cacheFrom ?? []) {
    const rec = s.deps.images.store.tryResolve(ref);
    if (rec) c.push({ rec, config: await s.deps.images.config(rec) });
  }
  sources.set(s, c);
  return c;
}

/** An image for this step made from a --cache-from image, or undefined. */
export async function fromCacheSources(s: BuildSession, st: StageState, step: StepIdentity): Promise<ImageRecord | undefined> {
  if (!s.req.cacheFrom?.length) return undefined;
  const list = await candidates(s);
  const parent = st.img.config;
  const ph = parent.history ?? [];
  const pd = parent.rootfs.diff_ids;
  for (const cand of list) {
    const th = cand.config.history ?? [];
    const td = cand.config.rootfs.diff_ids;
    if (th.length <= ph.length || td.length < pd.length) continue;
    if (pd.some((d, i) => td[i] !== d)) continue;
    if (ph.some((h, i) => (th[i]?.created_by ?? '') !== (h.created_by ?? ''))) continue;
    const next = th[ph.length]!;
    if ((next.created_by ?? '') !== step.createdBy || !!next.empty_layer === step.layer) continue;
    const layers = pd.length + (step.layer ? 1 : 0);
    if (td.length < layers) continue;
    const config: ImageConfig = {
      architecture: cand.config.architecture,
      os: cand.config.os,
      created: next.created ?? cand.config.created,
      config: step.runConfig,
      rootfs: { type: 'layers', diff_ids: td.slice(0, layers) },
      history: th.slice(0, ph.length + 1),
    };
    const rec = await s.deps.images.register({
      config: Buffer.from(JSON.stringify(config)),
      layers: cand.rec.layers.slice(0, layers),
      parent: st.img.record?.id,
      signal: s.signal,
    });
    sources.set(s, [cand]);
    return rec;
  }
  return undefined;
}
