/**
 * `compose up`'s flags: their values as commander gives them, and the
 * checks docker compose makes of them together (validateFlags).
 */
import { Option } from 'commander';
import { EngineError } from '../../common/errors.ts';
import { collect } from '../context.ts';

export const intArg = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new EngineError('INVALID_ARGUMENT', `invalid number "${v}"`);
  return n;
};

export interface UpFlags {
  // commander names a --no-X flag X (false when given)
  detach?: boolean;
  build?: boolean;
  forceRecreate?: boolean;
  recreate: boolean;
  deps: boolean;
  scale: string[];
  wait?: boolean;
  waitTimeout?: string;
  removeOrphans?: boolean;
  abortOnContainerExit?: boolean;
  exitCodeFrom?: string;
  timeout?: string;
  pull?: string;
  start: boolean;
  color: boolean;
  logPrefix: boolean;
  watch?: boolean;
  attach: string[];
  noAttach: string[];
  attachDependencies?: boolean;
  abortOnContainerFailure?: boolean;
  timestamps?: boolean;
  quietPull?: boolean;
  quietBuild?: boolean;
  alwaysRecreateDeps?: boolean;
  renewAnonVolumes?: boolean;
  yes?: boolean;
}

/**
 * `--no-attach SERVICE` is an option of its own, not the negation of
 * `--attach` that commander makes of a `--no-` name.
 */
export function noAttachOption(): Option {
  const o = new Option('--no-attach <service>', 'do not attach (stream logs) to the specified services').argParser(collect).default([]);
  o.negate = false;
  o.attributeName = () => 'noAttach';
  return o;
}

/** Whether `up` stops the project when a container exits: --abort-on-container-exit, or --exit-code-from without --abort-on-container-failure. */
export const cascadeStop = (o: UpFlags): boolean => o.abortOnContainerExit || (!!o.exitCodeFrom && !o.abortOnContainerFailure);

/** docker compose's validateFlags for `up`. */
export function validateUpFlags(o: UpFlags): void {
  const fail = (m: string) => {
    throw new EngineError('INVALID_ARGUMENT', m);
  };
  if (o.waitTimeout !== undefined && intArg(o.waitTimeout) < 0) fail('--wait-timeout must be a non-negative integer');
  const cascade = cascadeStop(o);
  if (cascade && o.abortOnContainerFailure) fail('--abort-on-container-failure cannot be combined with --abort-on-container-exit');
  if (o.wait && (o.attachDependencies || cascade || o.attach.length))
    fail('--wait cannot be combined with --abort-on-container-exit, --attach or --attach-dependencies');
  if ((o.detach || o.wait) && (o.attachDependencies || cascade || o.abortOnContainerFailure || o.attach.length || o.watch))
    fail(
      `--${o.wait ? 'wait' : 'detach'} cannot be combined with --abort-on-container-exit, --abort-on-container-failure, --attach, --attach-dependencies or --watch`,
    );
  if (o.renewAnonVolumes && o.recreate === false) fail('--no-recreate and --renew-anon-volumes are incompatible');
  if (o.forceRecreate && o.recreate === false) fail('--force-recreate and --no-recreate are incompatible');
  if (o.alwaysRecreateDeps && o.recreate === false) fail('--always-recreate-deps and --no-recreate are incompatible');
  if (o.build === false && o.watch) fail('--no-build and --watch are incompatible');
  if (o.attach.length && o.attachDependencies) fail('cannot combine --attach and --attach-dependencies');
}
