/**
 * The one pump between a container's stdio and a hijacked client (attach
 * and exec start use it alike). It honours backpressure both ways:
 * - output: when the client's socket is full, every output source is
 *   paused until the socket drains, so a client that stops reading
 *   (`docker attach c | sleep 120`) holds one socket buffer of the daemon's
 *   memory, not the container's whole output;
 * - input: client bytes go to the container's stdin no faster than it
 *   takes them.
 * When the client goes away, the sources are drained into nothing (the
 * process keeps running, as with docker, and must not block on us) and the
 * container's stdin is ended.
 */
import type { Readable, Writable } from 'node:stream';

/** The client side of a hijacked connection, as the pump needs it. */
export interface PumpClient {
  /** Client → container bytes; paused until the pump reads it. */
  input: Readable;
  /** Writes one chunk of a stream; false when the client's buffer is full. */
  write(stream: 1 | 2, data: Buffer): boolean;
  /** Resolves when the client's buffer has room again (or the client is gone). */
  drained(): Promise<void>;
  closed: Promise<void>;
  readonly isClosed: boolean;
}

export interface PumpOptions {
  /** Output sources: 1 = stdout, 2 = stderr; undefined or not wanted = drained into nothing. */
  stdout?: Readable;
  stderr?: Readable;
  wantStdout?: boolean;
  wantStderr?: boolean;
  /** The container's stdin, if the client's input goes there. */
  stdin?: Writable;
}

/**
 * Runs until both outputs end or the client goes away; returns which. The
 * caller ends the client connection and closes the session after.
 */
export async function pump(client: PumpClient, o: PumpOptions): Promise<'ended' | 'client-gone'> {
  const sources = (
    [
      [o.stdout, 1, o.wantStdout !== false],
      [o.stderr, 2, o.wantStderr !== false],
    ] as const
  ).filter((s): s is [Readable, 1 | 2, boolean] => !!s[0]);
  let waiting = false;
  const onOutput = (id: 1 | 2, want: boolean) => (b: Buffer) => {
    if (!want || client.isClosed) return;
    if (client.write(id, b) || waiting) return;
    waiting = true;
    for (const [s] of sources) s.pause();
    void client.drained().then(() => {
      waiting = false;
      for (const [s] of sources) s.resume();
    });
  };
  const ends = sources.map(([s, id, want]) => {
    s.on('data', onOutput(id, want));
    return new Promise<void>((resolve) => {
      s.once('end', resolve);
      s.once('close', resolve);
      s.on('error', () => resolve());
    });
  });
  pumpInput(client, o.stdin);
  const r = await Promise.race([Promise.all(ends).then(() => 'ended' as const), client.closed.then(() => 'client-gone' as const)]);
  if (r === 'client-gone') {
    // Nobody reads any more: keep the process's output flowing into nothing.
    waiting = false;
    for (const [s] of sources) s.resume();
  }
  return r;
}

function pumpInput(client: PumpClient, stdin: Writable | undefined): void {
  const input = client.input;
  if (!stdin) {
    // Read and drop whatever the client sends, so its writes never block.
    input.resume();
    return;
  }
  stdin.on('error', () => input.resume());
  input.on('data', (b: Buffer) => {
    if (stdin.destroyed || stdin.writableEnded) return;
    if (!stdin.write(b)) {
      input.pause();
      stdin.once('drain', () => input.resume());
    }
  });
  const endStdin = () => {
    if (!stdin.writableEnded && !stdin.destroyed) stdin.end();
  };
  input.once('end', endStdin);
  void client.closed.then(endStdin);
  input.resume();
}
