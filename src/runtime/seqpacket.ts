/**
 * A client AF_UNIX SOCK_SEQPACKET socket as a Node net.Socket, so it can be
 * paused: conmon's attach socket is SEQPACKET, and a reader that stops
 * reading must make conmon stop too (its write to us blocks, the
 * container's pipe fills, the container waits), not make the daemon buffer.
 *
 * Node's public API cannot open SEQPACKET (`new net.Socket({ fd })` refuses
 * it: libuv's uv_guess_handle only classifies stream sockets), but libuv's
 * stream code works on it unchanged: uv_pipe_open takes any socket fd, each
 * read(2) returns exactly one packet (the 64 KiB read buffer is larger than
 * any packet conmon sends: 8 KiB of data + 1 stream byte), each write(2) is
 * one packet, shutdown(SHUT_WR) is the half-close conmon reads as the end of
 * stdin, and readStop() when the stream is paused stops reading at once.
 * So the socket is made and connected here with socket(2)/connect(2)
 * through koffi (as common/openat2 calls libc) and its fd is opened as a
 * libuv pipe handle (`process.binding('pipe_wrap')`, the handle net.Socket
 * is built on), then wrapped in a net.Socket.
 *
 * Packet boundaries hold as long as the socket is used as here: read by
 * 'data' events (a paused Readable keeps the chunks apart and gives them
 * back one per event; never read() without a size, which concatenates),
 * and written one chunk at a time, each after the previous one's callback
 * (queued writes would go out as one writev, i.e. one packet).
 */
import net from 'node:net';
import util from 'node:util';
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');
const cSocket = libc.func('int socket(int, int, int)');
const cConnect = libc.func('int connect(int, void *, uint32)');
const cClose = libc.func('int close(int)');

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SUN_PATH_MAX = 108;

interface PipeHandle {
  open(fd: number): number;
}
interface PipeWrap {
  Pipe: new (type: number) => PipeHandle;
  constants: { SOCKET: number };
}

let pipeWrap: PipeWrap | undefined;
function pipeBinding(): PipeWrap {
  // process.binding is deprecated for new uses (DEP0111, documentation-only); pipe_wrap stays on its allow-list.
  pipeWrap ??= (process as unknown as { binding(name: string): PipeWrap }).binding('pipe_wrap');
  return pipeWrap;
}

/**
 * Connects to the SEQPACKET socket at `sockPath` (at most 107 bytes: use a
 * /proc/self/fd/N/name alias for longer ones). Returns the connected fd,
 * non-blocking; throws a Node-style error (ENOENT, ECONNREFUSED, EAGAIN for
 * a full backlog) otherwise.
 */
export function connectSeqpacketFd(sockPath: string): number {
  const name = Buffer.from(sockPath);
  if (name.length >= SUN_PATH_MAX) throw Object.assign(new Error(`socket path too long: ${sockPath}`), { code: 'ENAMETOOLONG' });
  const addr = Buffer.alloc(2 + SUN_PATH_MAX);
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, 2);
  const fd = cSocket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number;
  if (fd < 0) throw errnoError(-koffi.errno(), 'socket');
  if ((cConnect(fd, addr, 2 + name.length + 1) as number) !== 0) {
    const err = errnoError(-koffi.errno(), 'connect', sockPath);
    cClose(fd);
    throw err;
  }
  return fd;
}

/** A Node-style error (code, errno, syscall) for a negative errno (libuv's convention). */
function errnoError(errno: number, syscall: string, path?: string): NodeJS.ErrnoException {
  const code = util.getSystemErrorName(errno);
  const err = new Error(`${code}: ${util.getSystemErrorMessage(errno)}, ${syscall}${path ? ` '${path}'` : ''}`) as NodeJS.ErrnoException;
  Object.assign(err, { code, errno, syscall, ...(path ? { path } : {}) });
  return err;
}

/** A connected SEQPACKET fd as a net.Socket (which owns the fd from then on). */
export function seqpacketSocket(fd: number): net.Socket {
  const { Pipe, constants } = pipeBinding();
  const handle = new Pipe(constants.SOCKET);
  const err = handle.open(fd);
  if (err) {
    cClose(fd);
    throw errnoError(err, 'uv_pipe_open');
  }
  return new net.Socket({ handle, readable: true, writable: true } as unknown as net.SocketConstructorOpts);
}

/**
 * Connects, retrying while the listener's backlog is full (EAGAIN), until
 * `timeoutMs`. The socket is ready for reads and writes when this resolves.
 */
export async function connectSeqpacket(sockPath: string, timeoutMs: number): Promise<net.Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return seqpacketSocket(connectSeqpacketFd(sockPath));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() >= deadline) throw e;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
