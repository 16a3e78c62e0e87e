/**
 * Stages that do not depend on each other run at the same time. The
 * stream stays the one a sequential build prints: each stage writes to its
 * own buffer, and buffers are passed to the client in stage order (the
 * earliest unfinished stage streams live). Step numbers are fixed up front.
 * The first stage to fail cancels the others.
 */
import { isEngineError } from '../common/errors.ts';
import type { Stage } from './dockerfile/types.ts';
import type { BuildSession, StageState } from './session.ts';
import type { BuildOutput } from './types.ts';

type Msg = ['stream', string] | ['aux', unknown] | ['progress', object];

class OrderedOutput {
  private readonly out: BuildOutput;
  private readonly buffers: Msg[][];
  private readonly finished: boolean[];
  private current = 0;

  constructor(out: BuildOutput, n: number) {
    this.out = out;
    this.buffers = Array.from({ length: n }, () => []);
    this.finished = Array<boolean>(n).fill(false);
  }

  private emit(m: Msg): void {
    if (m[0] === 'stream') this.out.stream(m[1]);
    else if (m[0] === 'aux') this.out.aux(m[1]);
    else this.out.progress(m[1]);
  }

  private put(k: number, m: Msg): void {
    if (k === this.current) this.emit(m);
    else this.buffers[k]!.push(m);
  }

  stage(k: number): BuildOutput {
    return {
      stream: (t) => this.put(k, ['stream', t]),
      aux: (v) => this.put(k, ['aux', v]),
      progress: (m) => this.put(k, ['progress', m]),
    };
  }

  finish(k: number): void {
    this.finished[k] = true;
    while (this.current < this.finished.length && this.finished[this.current]) {
      this.current++;
      if (this.current < this.buffers.length) {
        for (const m of this.buffers[this.current]!) this.emit(m);
        this.buffers[this.current] = [];
      }
    }
  }
}

/** A view of the session for one stage: its own output, step counter and (cancellable) signal. */
function stageSession(s: BuildSession, out: BuildOutput, step: number, signal: AbortSignal): BuildSession {
  const sub = Object.create(s) as BuildSession;
  Object.defineProperty(sub, 'out', { value: out });
  Object.defineProperty(sub, 'req', { value: { ...s.req, signal } });
  sub.step = step;
  return sub;
}

/** Runs the stages (in file order, `deps` by stage index); resolves with the last one's state. */
export async function runStages(
  s: BuildSession,
  stages: Stage[],
  deps: Map<number, number[]>,
  runStage: (s: BuildSession, stage: Stage) => Promise<StageState>,
): Promise<StageState> {
  const ac = new AbortController();
  const signal = s.signal ? AbortSignal.any([s.signal, ac.signal]) : ac.signal;
  const outs = new OrderedOutput(s.out, stages.length);
  const promises: Promise<StageState>[] = [];
  let step = s.step;
  for (const [k, stage] of stages.entries()) {
    const start = step;
    step += 1 + stage.instructions.length;
    const p = (async () => {
      for (const d of deps.get(stage.index) ?? []) await s.stages.get(d);
      const st = await runStage(stageSession(s, outs.stage(k), start, signal), stage);
      s.results.set(stage.index, st.img);
      return st;
    })();
    s.stages.set(stage.index, p);
    p.catch(() => ac.abort()).finally(() => outs.finish(k));
    promises.push(p);
  }
  s.step = step;
  const settled = await Promise.allSettled(promises);
  const failures = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
  if (failures.length) throw failures.find((e) => !isEngineError(e, 'CANCELLED')) ?? failures[0];
  return (settled[settled.length - 1] as PromiseFulfilledResult<StageState>).value;
}
