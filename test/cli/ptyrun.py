#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal (30x100), types the given input after
a short delay, prints everything the terminal showed to stdout (raw bytes),
and exits with the command's status. Usage: ptyrun.py INPUT-HEX CMD [ARG...]
INPUT-HEX is the bytes to type, hex-encoded, split in chunks by ',': the
first is typed 0.3 s after the command's first output, the others 0.4 s
apart."""
import fcntl, os, pty, select, struct, sys, termios, time

chunks = [bytes.fromhex(c) for c in sys.argv[1].split(',') if c]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', 30, 100, 0, 0))
out = b''
deadline = time.time() + 30
next_at = None
while time.time() < deadline:
    if chunks and next_at is not None and time.time() >= next_at:
        os.write(fd, chunks.pop(0))
        next_at = time.time() + 0.4
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        if next_at is None:
            next_at = time.time() + 0.3
        out += data
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status) if hasattr(os, 'waitstatus_to_exitcode') else status >> 8)
