import { EngineError } from '../common/errors.ts';
import type { ExecConfig } from '../containers/exec.ts';
import { hijack, isUpgrade, readUpgradeBody } from './containers-stream.ts';
import { qInt, readJsonBody, type Router, sendJson } from './router.ts';
import { pump } from './pump.ts';

/** docker exec: create, start (hijacked or detached), inspect, resize. */
export function execRoutes(r: Router): void {
  r.add('POST', '/containers/{id}/exec', async ({ req, res, engine, params }) => {
    const body = await readJsonBody<ExecConfig>(req);
    if (!body) throw new EngineError('INVALID_ARGUMENT', 'exec config must be given');
    const e = engine.createExec(params[0]!, body);
    sendJson(res, 201, { Id: e.id });
  });

  r.add('POST', '/exec/{id}/start', async ({ req, res, engine, params }) => {
    const e = engine.exec(params[0]!);
    const body =
      (isUpgrade(req)
        ? await readUpgradeBody<{ Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] }>(req)
        : await readJsonBody<{ Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] }>(req)) ?? {};
    const tty = body.Tty ?? !!e.config.Tty;
    const cs =
      Array.isArray(body.ConsoleSize) && body.ConsoleSize[0]! > 0 && body.ConsoleSize[1]! > 0
        ? { height: body.ConsoleSize[0]!, width: body.ConsoleSize[1]! }
        : undefined;
    if (e.started) throw new EngineError('CONFLICT', `Error: Exec command ${e.id} has already run`);
    const c = engine.container(e.containerId);
    if (c.state.Status !== 'running') throw new EngineError('CONFLICT', `Container ${c.id} is not running`);
    if (body.Detach) {
      await engine.startExec(e.id, { detach: true, tty });
      res.writeHead(200, { 'Content-Length': 0 });
      res.end();
      return;
    }
    const h = hijack(req, res, tty);
    let session;
    try {
      session = await engine.startExec(e.id, { tty, consoleSize: cs });
    } catch (err) {
      // After the upgrade the only way to report is the stream (dockerd does the same); inspect has the exit code.
      h.write(1, Buffer.from(`OCI runtime exec failed: ${(err as Error).message}\r\n`));
      h.end();
      return;
    }
    // The CLI reads the exit code from inspect right after the stream ends: record it first.
    const exited = session.exitCode.catch(() => -1);
    const r = await pump(h, {
      stdout: session.stdout,
      stderr: session.stderr,
      wantStdout: e.config.AttachStdout !== false,
      wantStderr: e.config.AttachStderr !== false,
      stdin: session.stdin,
    });
    if (r === 'ended') await Promise.race([exited, h.closed]);
    h.end();
  });

  r.add('GET', '/exec/{id}/json', ({ res, engine, params }) => {
    const e = engine.exec(params[0]!);
    const cmd = e.config.Cmd ?? [];
    sendJson(res, 200, {
      CanRemove: false,
      ContainerID: e.containerId,
      DetachKeys: e.config.DetachKeys ?? '',
      ExitCode: e.exitCode,
      ID: e.id,
      OpenStderr: !!e.config.AttachStderr,
      OpenStdin: !!e.config.AttachStdin,
      OpenStdout: !!e.config.AttachStdout,
      ProcessConfig: { arguments: cmd.slice(1), entrypoint: cmd[0] ?? '', privileged: !!e.config.Privileged, tty: !!e.config.Tty, user: e.config.User ?? '' },
      Running: e.running,
      Pid: e.pid,
    });
  });

  r.add('POST', '/exec/{id}/resize', ({ res, engine, params, query }) => {
    engine.resizeExec(params[0]!, { height: qInt(query, 'h') ?? 0, width: qInt(query, 'w') ?? 0 });
    res.writeHead(200, { 'Content-Length': 0 });
    res.end();
  });
}
