/**
 * `logs -f` across rotations, without losing a file to a slow reader.
 *
 * conmon rotates a k8s-file log by writing a new file and renaming it over
 * the log path (ctr_logging.c reopen_k8s_file: it closes the old file
 * first, so once a new inode is at the path the old one is final). A
 * follower that only looks at the path when it has read its current file
 * to the end misses every file that lived and was replaced while its
 * reader was busy (a client reading slowly, a stalled pipe).
 *
 * So the files are tracked by inode, apart from the reader: from the
 * moment the log is opened, a directory watch (and a poll, as fs.watch
 * can miss events under load) opens each new file that appears at the
 * path and queues its descriptor. The reader reads its file to the end,
 * then goes on with the next queued one: an open descriptor keeps a
 * replaced, renamed, gzipped-and-removed or pruned file readable, so no
 * line is lost however long the reader stalls. What it holds is bounded:
 * at most `maxQueued` files wait (the log's max-file); past that the
 * oldest waiting one is let go, so a reader stalled for more rotations
 * than the log keeps cannot pin more than twice the log's disk bound.
 * A file that lived and was replaced between two looks of the watcher
 * (faster than the event loop turns) is not seen; the rotation keeper
 * (containers/logrotate.ts) does not see it either.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { log } from '../common/log.ts';

interface Opened {
  fh: fsp.FileHandle;
  ino: number;
}

export class LogSuccessors {
  private readonly queue: Opened[] = [];
  private newest: number;
  private watcher?: fs.FSWatcher;
  private readonly timer: NodeJS.Timeout;
  private looking?: Promise<void>;
  private again = false;
  private closed = false;
  private wake?: () => void;
  /** Files let go because the queue was full (a reader behind by more than the log keeps). */
  dropped = 0;

  private readonly logPath: string;
  private readonly maxQueued: number;

  constructor(logPath: string, currentIno: number, maxQueued: number, pollMs: number) {
    this.logPath = logPath;
    this.maxQueued = maxQueued;
    this.newest = currentIno;
    const base = path.basename(logPath);
    try {
      this.watcher = fs.watch(path.dirname(logPath), (ev, name) => {
        if (name !== base) return;
        if (ev === 'rename') this.look();
        this.wake?.(); // new data in the file being read, or a new file
      });
      this.watcher.on('error', () => {});
    } catch {
      // the poll below still looks
    }
    this.timer = setInterval(() => this.look(), pollMs);
    this.timer.unref();
    this.look();
  }

  /** The next file after the one being read, if one has appeared. */
  shift(): Opened | undefined {
    return this.queue.shift();
  }

  /** Puts a file back at the head (the reader found more in its current file). */
  unshift(o: Opened): void {
    this.queue.unshift(o);
  }

  /** Resolves on a change in the log's directory, after `ms`, or when `signal` aborts. */
  changed(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  /** Looks at the path now and resolves once what it found is queued. */
  async settle(): Promise<void> {
    this.look();
    while (this.looking) await this.looking;
  }

  /** Opens what is at the path now if it is a file not seen yet. */
  private look(): void {
    if (this.closed) return;
    if (this.looking) {
      this.again = true;
      return;
    }
    this.looking = (async () => {
      try {
        do {
          this.again = false;
          // Opened first and identified by the descriptor: a stat, then an open, could see two different files.
          const fh = await fsp.open(this.logPath, 'r').catch(() => undefined);
          if (!fh) continue;
          const ino = (await fh.stat()).ino;
          if (ino === this.newest || this.closed) {
            await fh.close();
            continue;
          }
          this.newest = ino;
          this.queue.push({ fh, ino });
          while (this.queue.length > this.maxQueued) {
            if (!this.dropped++)
              log.warn('a log follower is more rotated files behind than the log keeps: skipping the oldest', { log: this.logPath, files: this.maxQueued });
            await this.queue.shift()!.fh.close();
          }
          this.wake?.();
        } while (this.again && !this.closed);
      } finally {
        this.looking = undefined;
      }
      // a stat or close failing on a log that is going away: the next change of the path looks again
    })().catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.watcher?.close();
    this.wake?.();
    // closing: a file already closed or gone has nothing left to release
    for (const o of this.queue.splice(0)) await o.fh.close().catch(() => {});
  }
}
