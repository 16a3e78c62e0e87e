/**
 * Entry-name cleaning for archives (cleanEntryPath, used by apply and walk),
 * and ScopedRoot, a path-string resolver scoped to a root directory (like
 * containerd's fs.RootPath / filepath-securejoin).
 *
 * ScopedRoot checks each parent component with lstat and uses the path
 * later, so it is only sound where nothing else can change the tree between
 * the check and the use. The archive code no longer uses it: it works on
 * pinned descriptors with the kernel refusing escapes (rootdir.ts), which
 * holds whoever writes beside it. It remains for volumes/setup.ts (mount
 * destinations resolved before the container's first process runs, and
 * under a frozen container for cp's volume views).
 *
 * Symlinks met on the way are expanded as if `root` were `/`: absolute
 * targets restart at root and `..` stops at root. The final component is
 * never followed. Verified directories are cached; forget() drops a removed
 * path and everything below it.
 */
import fs from 'node:fs';
import { invalid } from '../common/errors.ts';

const MAX_SYMLINKS = 255;

/**
 * Lexically cleans an entry name into components: leading `/` and `./` are
 * dropped (absolute names are relative to root), `..` pops a component and is
 * refused when it would climb above the root.
 */
export function cleanEntryPath(name: string, what = 'entry'): string[] {
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) throw invalid(`layer ${what} ${JSON.stringify(name)} climbs above the root with '..'`);
      out.pop();
    } else out.push(c);
  }
  return out;
}

export class ScopedRoot {
  readonly root: string;
  /** Verified real directories; the value says keel made it during this apply (so it held nothing else). */
  private readonly dirs = new Map<string, boolean>([['', false]]);
  /** Every path this apply created (entries and implied parents). */
  readonly created = new Set<string>();
  /** Mode for parent directories a layer implies but does not list. */
  private readonly implicitDirMode = 0o755;

  constructor(root: string) {
    this.root = root;
  }

  abs(rel: string): string {
    return rel === '' ? this.root : this.root + '/' + rel;
  }

  isKnownDir(rel: string): boolean {
    return this.dirs.has(rel);
  }

  addDir(rel: string, fresh: boolean): void {
    this.dirs.set(rel, fresh);
    if (fresh) this.created.add(rel);
  }

  /** Drops `rel` and everything below it from the cache (call after removing it). */
  forget(rel: string): void {
    if (!this.dirs.delete(rel) && rel !== '') {
      // Only directories have children in the cache; a non-directory has none.
      return;
    }
    const prefix = rel + '/';
    for (const d of this.dirs.keys()) if (d.startsWith(prefix)) this.dirs.delete(d);
  }

  /**
   * Resolves components to a real directory inside root, following symlinks
   * scoped to root. With create, missing directories are made (0755, like
   * containerd); otherwise a missing component returns null. A component that
   * exists but is not a directory (nor a symlink to one) is refused.
   */
  resolveDir(components: readonly string[], create: boolean, entry: string): string | null {
    const stack: string[] = [];
    const queue = [...components];
    let links = 0;
    while (queue.length > 0) {
      const c = queue.shift()!;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        stack.pop();
        continue;
      }
      stack.push(c);
      const rel = stack.join('/');
      if (this.dirs.has(rel)) continue;
      let st: fs.Stats | undefined;
      try {
        st = fs.lstatSync(this.abs(rel));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      if (st === undefined) {
        if (!create) return null;
        fs.mkdirSync(this.abs(rel), this.implicitDirMode);
        this.addDir(rel, true);
      } else if (st.isDirectory()) {
        this.addDir(rel, false);
      } else if (st.isSymbolicLink()) {
        if (++links > MAX_SYMLINKS) throw invalid(`too many levels of symbolic links resolving layer entry ${JSON.stringify(entry)}`);
        const target = fs.readlinkSync(this.abs(rel), 'utf8');
        stack.pop();
        if (target.startsWith('/')) stack.length = 0;
        queue.unshift(...target.split('/'));
      } else {
        throw invalid(`layer entry ${JSON.stringify(entry)}: parent ${JSON.stringify('/' + rel)} is not a directory`);
      }
    }
    return stack.join('/');
  }

  /**
   * lstat of a path whose parent is resolved; undefined when absent. In a
   * directory keel made during this apply only keel's own creations can
   * exist, which saves an lstat per entry when unpacking into a fresh dir.
   */
  lstat(rel: string, parent?: string): fs.Stats | undefined {
    if (parent !== undefined && this.dirs.get(parent) === true && !this.created.has(rel)) return undefined;
    try {
      return fs.lstatSync(this.abs(rel));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** Removes whatever is at rel (no symlink is followed; fs.rmSync uses lstat). */
  remove(rel: string, st: fs.Stats): void {
    if (rel === '') throw invalid('a layer cannot remove the root directory');
    if (st.isDirectory()) fs.rmSync(this.abs(rel), { recursive: true, force: true });
    else fs.unlinkSync(this.abs(rel));
    this.forget(rel);
    this.created.delete(rel);
  }
}

export function join(parent: string, base: string): string {
  return parent === '' ? base : parent + '/' + base;
}
