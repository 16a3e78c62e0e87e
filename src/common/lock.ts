import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { EngineError, errnoCode } from './errors.ts';
import { isAlive } from './proc.ts';

/**
 * An exclusive, process-lifetime lock on a state root: flock(2) on the lock
 * file, held by this process's open descriptor. The kernel drops it when the
 * process dies however it dies (`kill -9` included), so there is no stale
 * lock to detect and no takeover to race: of two daemons started at once on
 * one root exactly one gets it. The file also holds the owner's pid, only
 * for the message the loser prints.
 *
 * Node has no flock call; util-linux's flock(1) locks a descriptor it
 * inherits (the shell idiom `flock -n 9`), and the lock belongs to the open
 * file description it shares with this process, so it outlives the child.
 */
export class RootLock {
  readonly file: string;
  private fd: number | undefined;

  private constructor(file: string, fd: number) {
    this.file = file;
    this.fd = fd;
  }

  static acquire(file: string, what: string, flockPath = 'flock'): RootLock {
    // libuv opens with O_CLOEXEC: conmon and other children never inherit (and so never hold) the lock.
    const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    let r;
    try {
      r = spawnSync(flockPath, ['--nonblock', '--exclusive', '--conflict-exit-code', '75', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], timeout: 10_000 });
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    if (r.status !== 0) {
      fs.closeSync(fd);
      if (r.error && errnoCode(r.error) === 'ENOENT')
        throw new EngineError('UNAVAILABLE', `cannot lock ${what}: ${flockPath} is missing (install the Debian package util-linux)`);
      if (r.status !== 75) throw new EngineError('INTERNAL', `cannot lock ${what}: flock failed: ${String(r.stderr ?? r.error ?? r.signal).trim()}`);
      const owner = lockOwner(file);
      const who = owner > 0 ? `process ${owner}` : 'another process';
      throw new EngineError('CONFLICT', `${what} is in use by ${who} (lock ${file}); stop it or choose another root`);
    }
    // Ours now: record the pid for the next contender's message.
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, String(process.pid), 0);
    return new RootLock(file, fd);
  }

  /** Drops the lock (closing the descriptor is what releases it); the file stays, so no contender locks an unlinked inode. */
  release(): void {
    if (this.fd === undefined) return;
    try {
      fs.ftruncateSync(this.fd, 0);
    } catch {
      // the pid is only informative
    }
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * The pid the holder wrote. A holder writes it just after it gets the lock,
 * so the file may still name the previous holder (one killed with -9 leaves
 * its pid): look again for a moment until it names a live process.
 */
function lockOwner(file: string): number {
  let owner = 0;
  for (let i = 0; i < 50; i++) {
    owner = Number(readOr(file, ''));
    if (owner > 0 && isAlive(owner)) return owner;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
  }
  return owner;
}

function readOr(file: string, dflt: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return dflt;
  }
}

/**
 * Serializes async work per key inside one process (e.g. one container's
 * lifecycle operations, or one layer's unpack).
 */
export class KeyedMutex {
  private tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    try {
      // the previous holder's failure is its caller's: this one only waits for its turn
      await prev.catch(() => {});
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/**
 * Many holders of the shared side, or one of the exclusive side (image
 * garbage collection against the pulls, loads and creates that add
 * references to layers and blobs before anything records them). The shared
 * side never waits for a waiting exclusive holder, so shared sections may
 * nest; an exclusive waiter runs as soon as no shared holder is left.
 */
export class SharedLock {
  private shared = 0;
  private exclusiveHeld: Promise<void> | undefined;
  private idle: (() => void)[] = [];

  async withShared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.exclusiveHeld) await this.exclusiveHeld;
    this.shared++;
    try {
      return await fn();
    } finally {
      if (--this.shared === 0) for (const wake of this.idle.splice(0)) wake();
    }
  }

  async withExclusive<T>(fn: () => Promise<T>): Promise<T> {
    for (;;) {
      while (this.exclusiveHeld) await this.exclusiveHeld;
      if (this.shared === 0) break;
      await new Promise<void>((r) => this.idle.push(r));
    }
    let done!: () => void;
    this.exclusiveHeld = new Promise((r) => (done = r));
    try {
      return await fn();
    } finally {
      this.exclusiveHeld = undefined;
      done();
    }
  }
}
