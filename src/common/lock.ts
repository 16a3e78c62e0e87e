import fs from 'node:fs';
import { EngineError, errnoCode } from './errors.ts';
import { isAlive } from './proc.ts';

/**
 * An exclusive, process-lifetime lock on a state root: a file holding the
 * owner's pid, created with O_EXCL. A lock whose owner is dead is stale and
 * taken over, so a `kill -9` of the owner never wedges the root.
 */
export class RootLock {
  readonly file: string;

  private constructor(file: string) {
    this.file = file;
  }

  static acquire(file: string, what: string): RootLock {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = fs.openSync(file, 'wx', 0o600);
        fs.writeSync(fd, String(process.pid));
        fs.closeSync(fd);
        return new RootLock(file);
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw e;
      }
      const owner = Number(readOr(file, ''));
      if (owner && owner !== process.pid && isAlive(owner)) {
        throw new EngineError('CONFLICT', `${what} is in use by process ${owner} (lock ${file}); stop it or choose another root`);
      }
      fs.rmSync(file, { force: true });
    }
    throw new EngineError('CONFLICT', `could not take the lock ${file}`);
  }

  release(): void {
    if (Number(readOr(this.file, '')) === process.pid) fs.rmSync(this.file, { force: true });
  }
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
      await prev.catch(() => {});
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
