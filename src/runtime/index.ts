/**
 * runtime/ — keel's OCI runtime layer: runc + conmon, nothing about images or
 * container records. Give it a rootfs path and a process description; it
 * runs it.
 *
 *   const spec = buildSpec({ rootfs, args: ['sh', '-c', 'echo hi'], cgroupsPath: `/keel/${id}`,
 *                            namespaces: { network: { path: '/run/netns/x' } }, resources: { memory: 64 << 20 } });
 *   const rt = new RuntimeDriver({ runcRoot: '/run/keel/runc', stateDir: '/run/keel/containers' });
 *   await rt.writeBundle(bundleDir, spec);            // bundleDir/config.json
 *   const { pid } = await rt.create(id, bundleDir, { logPath, stdin: false, tty: false });
 *   await rt.start(id);
 *   const exit = await rt.wait(id);                   // { exitCode, oomKilled, finishedAt, recorded }
 *   for await (const e of readLog(logPath)) ...       // { stream: 'stdout'|'stderr', line: Buffer, timeNs, partial }
 *   await rt.delete(id, { force: true });             // removes runc state, conmon dir, cgroup, sockets
 *
 * Containers outlive the process that created them: each has its own
 * detached conmon (records the exit in <stateDir>/<id>/exit and an `oom`
 * file there on OOM kill; <stateDir>/exits/<id> too). A new process with the
 * same runcRoot/stateDir sees them through state(), exitInfo(), wait().
 *
 * Attach: rt.attach(id) → { stdin: Writable, stdout, stderr: PassThrough, done, close() }
 * (stdin.end() closes the container's stdin unless leaveStdinOpen). With a
 * TTY all output is stdout; rt.resize(id, { height, width }).
 * Exec: execInContainer(rt, id, process, { tty, stdin, detach }) → ExecSession
 * with stdio streams and exitCode: Promise<number>; execCollect() for the
 * simple case. Build the exec Process with execProcess(spec.process, {...}).
 */
export type * from './spec-types.ts';
export { buildSpec, specToJson, DEFAULT_INIT_BINARY, INIT_PATH_IN_CONTAINER, DEFAULT_PATH_ENV } from './spec.ts';
export type { RuntimeSpecOptions, ResourceOptions, NamespaceMode, SeccompOption } from './spec.ts';
export { bindMount, tmpfsMount, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, validateSysctls, RLIM_INFINITY } from './defaults.ts';
export { DEFAULT_CAPS, ALL_CAPS, hostBoundingSet, resolveCaps, normalizeCap, capsToMask } from './caps.ts';
export { defaultSeccomp, loadProfile, resolveProfile, DEFAULT_PROFILE_PATH } from './seccomp.ts';
export { RuntimeDriver, removeCgroup } from './driver.ts';
export type { OciRuntime } from './oci-runtime.ts';
export type { RuntimeDriverOptions, CreateOptions, ContainerState, ContainerStatus, ExitInfo } from './driver.ts';
export { execInContainer, execCollect, killProcessTree, processStartTime } from './exec.ts';
export type { ExecOptions, ExecSession } from './exec.ts';
export { execProcess } from './process.ts';
export type { AttachSession } from './attach.ts';
export { readLog, parseLogLine } from './logs.ts';
export type { LogEntry, ReadLogOptions } from './logs.ts';
export { runcVersion, runcAdvisories, normalizeSignal, signalNumber, DEFAULT_RUNC, parseRuncFailure, RuntimeError, isNotRunning } from './runc.ts';
export type { RuncVersion, RuncFailure } from './runc.ts';
export { conmonVersion, DEFAULT_CONMON } from './conmon.ts';
