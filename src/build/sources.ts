/**
 * COPY/ADD sources: matching the source words against a root (the build
 * context, or another stage's or image's filesystem), walking what they
 * name, and the digest of exactly what will be copied. The digest covers
 * each entry's destination path, type, mode (after --chmod), owner (after
 * --chown), content and link target, never mtimes: the same files give the
 * same cache key in any clone of a project and after a daemon restart.
 *
 * Paths never leave the root: `..` above it is an error, and in the context
 * a symlink that points outside (absolute, or climbing out) is an error too;
 * in a stage's rootfs absolute links resolve against that rootfs.
 */
import type { ModeFn } from './chmod.ts';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { invalid } from '../common/errors.ts';

export interface SourceRoot {
  dir: string;
  /** The build context (links leaving it are errors) vs a stage's rootfs (links resolve inside it). */
  isContext: boolean;
  /** .dockerignore (context only) and --exclude: excluded paths look absent. */
  excluded?: (rel: string, isDir: boolean) => boolean;
  /** --exclude patterns: matched against the full path and the path below the matched source. */
  exclude?: (rel: string, isDir: boolean) => boolean;
}

/** One thing to copy: a file, directory, or link, with where it lands (relative to the destination). */
export interface PlanEntry {
  /** Absolute host path to read (under the root). */
  abs: string;
  /** Path under the destination ('' = the destination itself). */
  dest: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  size: number;
  mtime: Date;
  linkTarget?: string;
  /** Identity of a file read from an image's layers (inode, size, mtime, ctime): its content hash is remembered by it. */
  stamp?: string;
}

const GLOB = /[*?[\\]/;

/** Go's filepath.Match for one path component. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) throw invalid(`syntax error in pattern ${JSON.stringify(pattern)}`);
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = '^' + cls.slice(1);
      re += `[${cls.replace(/\\(.)/g, '\\$1')}]`;
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, 's');
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function outside(src: string, root: SourceRoot): Error {
  return invalid(root.isContext ? `forbidden path outside the build context: ${src}` : `forbidden path outside the source filesystem: ${src}`);
}

/**
 * Resolves a cleaned relative path to an absolute one inside root,
 * following symlinks in every component (scoped); returns undefined if it
 * does not exist.
 */
export function resolveInRoot(root: SourceRoot, rel: string, src: string, followFinal = true): string | undefined {
  const queue = rel.split('/').filter((c) => c && c !== '.');
  const stack: string[] = [];
  let links = 0;
  while (queue.length) {
    const c = queue.shift()!;
    if (c === '..') {
      if (!stack.length) throw outside(src, root);
      stack.pop();
      continue;
    }
    stack.push(c);
    const abs = path.join(root.dir, ...stack);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch {
      return undefined;
    }
    if (!st.isSymbolicLink() || (!queue.length && !followFinal)) continue;
    if (++links > 40) throw invalid(`too many levels of symbolic links: ${src}`);
    const target = fs.readlinkSync(abs, 'utf8');
    stack.pop();
    if (target.startsWith('/')) {
      if (root.isContext)
        throw invalid(`${src}: symlink ${JSON.stringify(stack.concat(c).join('/'))} -> ${JSON.stringify(target)} points outside the build context`);
      stack.length = 0;
    } else {
      // A relative link that climbs above the root leaves it.
      const depth = stack.length;
      let d = depth;
      for (const p of target.split('/')) {
        if (p === '..') d--;
        else if (p && p !== '.') d++;
        if (d < 0 && root.isContext)
          throw invalid(`${src}: symlink ${JSON.stringify(stack.concat(c).join('/'))} -> ${JSON.stringify(target)} points outside the build context`);
      }
    }
    queue.unshift(...target.split('/'));
  }
  return path.join(root.dir, ...stack);
}

/** Expands one source word (globs allowed) to relative paths in the root, sorted. */
export function matchSource(root: SourceRoot, src: string): string[] {
  const clean = path.posix.normalize('/' + src).slice(1);
  if (src.split('/').includes('..') && path.posix.normalize(src).startsWith('..')) throw outside(src, root);
  if (!GLOB.test(clean)) {
    const rel = clean.replace(/\/$/, '');
    const abs = resolveInRoot(root, rel, src);
    if (abs === undefined) return [];
    const isDir = fs.statSync(abs).isDirectory();
    if (rel && (root.excluded?.(rel, isDir) || root.exclude?.(rel, isDir))) return [];
    return [rel];
  }
  let cur = [''];
  for (const comp of clean.split('/').filter(Boolean)) {
    const next: string[] = [];
    const re = GLOB.test(comp) ? globToRegExp(comp) : undefined;
    for (const base of cur) {
      const dir = resolveInRoot(root, base, src);
      if (!dir) continue;
      let names: string[];
      try {
        names = fs.readdirSync(dir).sort();
      } catch {
        continue;
      }
      for (const n of re ? names.filter((x) => re.test(x)) : names.filter((x) => x === comp)) next.push(base ? `${base}/${n}` : n);
    }
    cur = next;
  }
  return cur.filter((rel) => {
    const abs = resolveInRoot(root, rel, src);
    if (abs === undefined) return false;
    const isDir = fs.statSync(abs).isDirectory();
    return !root.excluded?.(rel, isDir) && !root.exclude?.(rel, isDir);
  });
}

/**
 * The entries a matched source copies: a file is itself; a directory is its
 * contents, recursively (symlinks inside are copied as links).
 */
export function walkSource(root: SourceRoot, rel: string, src: string, destBase: string, out: PlanEntry[]): void {
  const abs = resolveInRoot(root, rel, src)!;
  const st = fs.statSync(abs);
  if (st.isDirectory()) {
    out.push(entry(abs, destBase, st, root));
    walkDir(root, abs, rel, '', destBase, out);
  } else if (st.isFile()) out.push(entry(abs, destBase, st, root));
  else throw invalid(`${src} is not a regular file or directory`);
}

function walkDir(root: SourceRoot, absDir: string, relDir: string, below: string, destDir: string, out: PlanEntry[]): void {
  for (const name of fs.readdirSync(absDir).sort()) {
    const abs = path.join(absDir, name);
    const rel = relDir ? `${relDir}/${name}` : name;
    const sub = below ? `${below}/${name}` : name;
    const st = fs.lstatSync(abs);
    if (root.excluded?.(rel, st.isDirectory())) continue;
    if (root.exclude && (root.exclude(rel, st.isDirectory()) || root.exclude(sub, st.isDirectory()))) continue;
    const dest = destDir ? `${destDir}/${name}` : name;
    if (st.isDirectory()) {
      out.push(entry(abs, dest, st, root));
      walkDir(root, abs, rel, sub, dest, out);
    } else if (st.isFile() || st.isSymbolicLink()) out.push(entry(abs, dest, st, root));
    // sockets, fifos and devices are not copied
  }
}

function entry(abs: string, dest: string, st: fs.Stats, root: SourceRoot): PlanEntry {
  const type = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'file';
  const stamp = type === 'file' && !root.isContext ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : undefined;
  return {
    abs,
    dest,
    type,
    mode: st.mode & 0o7777,
    size: st.size,
    mtime: st.mtime,
    ...(type === 'symlink' ? { linkTarget: fs.readlinkSync(abs, 'utf8') } : {}),
    ...(stamp ? { stamp } : {}),
  };
}

/** Content hashes of files under `root`, by absolute path, valid while the tree does not change (a kept context). */
export interface HashMemo {
  root: string;
  map: Map<string, string>;
}

/** sha256 over the plan: path, type, mode, owner, link target, and each file's content hash. */
export function planDigest(plan: PlanEntry[], owner: string, chmod: ModeFn | undefined, memo?: HashMemo): string {
  const h = createHash('sha256');
  h.update(`owner=${owner}\n`);
  for (const e of plan) {
    const mode = chmod ? chmod(e.mode, e.type === 'dir') : e.mode;
    h.update(`${e.type} ${JSON.stringify(e.dest)} ${mode.toString(8)} ${e.linkTarget ?? ''} ${e.size}\n`);
    if (e.type !== 'file') continue;
    const cacheable = memo && e.abs.startsWith(memo.root + '/');
    let fh = cacheable ? memo.map.get(e.abs) : e.stamp ? layerHashes.get(e.stamp) : undefined;
    if (fh === undefined) {
      fh = fileHash(e.abs);
      if (cacheable) memo.map.set(e.abs, fh);
      else if (e.stamp) remember(e.stamp, fh);
    }
    h.update(fh);
  }
  return h.digest('hex');
}

const buf = Buffer.allocUnsafe(1 << 20);

/**
 * Content hashes of files read through an image's mount (COPY --from), by
 * inode, size, mtime and ctime: a committed layer's files never change, so
 * the same file seen again (a rebuild whose source stage changed elsewhere)
 * is not read again. A rewritten file, or another file on a reused inode,
 * has another ctime.
 */
const layerHashes = new Map<string, string>();
const MAX_LAYER_HASHES = 200_000;

function remember(stamp: string, hash: string): void {
  if (layerHashes.size >= MAX_LAYER_HASHES) layerHashes.delete(layerHashes.keys().next().value!);
  layerHashes.set(stamp, hash);
}

function fileHash(abs: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    let n: number;
    while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}
