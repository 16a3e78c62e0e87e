/**
 * One attached container session, shared by `run`, `start -a` and
 * `attach`: hijack the attach stream, hold a wait open, start, relay stdio,
 * and return the exit status, in the docker CLI's order (attach → wait →
 * start, with the wait's 200 headers in hand before start so a fast exit is
 * never missed).
 */
import type http from 'node:http';
import type net from 'node:net';
import { EngineError } from '../common/errors.ts';
import { type ApiClient, readAll } from './client.ts';
import { currentSize, hijack, relay } from './hijack.ts';

export interface SessionOptions {
  id: string;
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  detachKeys: Buffer;
  detachKeysRaw?: string;
  /** Forward SIGINT/SIGTERM to the container. */
  sigProxy: boolean;
  /** wait?condition=removed (run --rm) instead of next-exit. */
  removed?: boolean;
  /** Start the container (run, start -a); attach alone doesn't. */
  start: boolean;
}

export interface SessionResult {
  detached: boolean;
  status: number;
  /** Set when start failed: the daemon's message. */
  startError?: EngineError;
}

/**
 * docker's run exit codes for a failed start: 127 the command was not
 * found, 126 it could not be executed, else 125. keel's daemon says which
 * by the error's code; another daemon only in the message, which is read
 * as docker's CLI reads it (cli/command/container/run.go).
 */
export function startErrorStatus(e: EngineError): number {
  if (e.code === 'COMMAND_NOT_FOUND') return 127;
  if (e.code === 'CANNOT_EXECUTE') return 126;
  const message = e.message;
  if (/executable file not found|no such file or directory|system cannot find the file specified/.test(message)) return 127;
  if (/permission denied|is a directory/.test(message)) return 126;
  return 125;
}

export async function resize(client: ApiClient, kind: 'containers' | 'exec', id: string, h: number, w: number): Promise<void> {
  try {
    const res = await client.request('POST', `/${kind}/${id}/resize`, { query: { h, w } });
    res.resume();
  } catch {
    // a resize racing the process's exit is harmless
  }
}

/** `start -a`/`attach`: the container's Config decides TTY and whether stdin can be attached. */
export async function containerConfig(
  client: ApiClient,
  name: string,
): Promise<{ Id: string; Config: { Tty: boolean; OpenStdin: boolean }; State: { Running: boolean; Paused: boolean; Restarting: boolean; Status: string } }> {
  return client.json('GET', `/containers/${encodeURIComponent(name)}/json`);
}

export async function runSession(client: ApiClient, o: SessionOptions): Promise<SessionResult> {
  const attachAny = o.stdin || o.stdout || o.stderr;
  const attachP: Promise<net.Socket | undefined> = attachAny
    ? hijack(client, `/containers/${o.id}/attach`, {
        query: { stream: 1, stdin: o.stdin ? 1 : undefined, stdout: o.stdout ? 1 : undefined, stderr: o.stderr ? 1 : undefined, detachKeys: o.detachKeysRaw },
      })
    : Promise.resolve(undefined);
  const waitP: Promise<http.IncomingMessage> = client.request('POST', `/containers/${o.id}/wait`, {
    query: { condition: o.removed ? 'removed' : 'next-exit' },
  });
  // both must be in place before start; an early failure of either must not go unhandled
  const [socket, waitRes] = await Promise.all([attachP, waitP.catch((e: unknown) => e as Error)]).catch(async (e: unknown) => {
    (await waitP.catch(() => undefined))?.destroy();
    throw e;
  });
  if (waitRes instanceof Error) {
    socket?.destroy();
    throw waitRes;
  }
  const waitBody = readAll(waitRes).catch(() => '');
  const session = socket
    ? relay(socket, { tty: o.tty, stdin: o.stdin, detachKeys: o.detachKeys, onResize: (h, w) => void resize(client, 'containers', o.id, h, w) })
    : undefined;
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const forward = (sig: string) =>
    void client.request('POST', `/containers/${o.id}/kill`, { query: { signal: sig } }).then(
      (r) => r.resume(),
      () => undefined,
    );
  // docker forwards signals in TTY sessions too (a raw terminal raises none itself; `kill` still can)
  const proxies = o.sigProxy ? signals.map((s) => [s, () => forward(s)] as const) : [];
  for (const [s, h] of proxies) process.on(s, h);
  try {
    if (o.start) {
      try {
        const res = await client.request('POST', `/containers/${o.id}/start`);
        res.resume();
      } catch (e) {
        if (!(e instanceof EngineError)) throw e;
        session?.stop();
        if (o.removed) await Promise.race([waitBody, new Promise((r) => setTimeout(r, 2000))]);
        waitRes.destroy();
        return { detached: false, status: startErrorStatus(e), startError: e };
      }
    }
    if (o.tty) {
      const size = currentSize();
      // attaching to a running shell: docker resizes to h+1,w+1 and back so the shell redraws its prompt
      if (size && !o.start) await resize(client, 'containers', o.id, size[0] + 1, size[1] + 1);
      if (size) await resize(client, 'containers', o.id, size[0], size[1]);
    }
    const ended = session ? await session.done : { detached: false };
    if (ended.detached) {
      waitRes.destroy();
      return { detached: true, status: 0 };
    }
    const text = await waitBody;
    let status = 0;
    try {
      const w = JSON.parse(text) as { StatusCode: number; Error?: { Message?: string } | null };
      if (w.Error?.Message) throw new EngineError('INTERNAL', w.Error.Message);
      status = w.StatusCode;
    } catch (e) {
      if (e instanceof EngineError) throw e;
      throw new EngineError('INTERNAL', `unexpected wait answer from the daemon: ${text.slice(0, 200)}`);
    }
    return { detached: false, status };
  } finally {
    for (const [s, h] of proxies) process.off(s, h);
  }
}
