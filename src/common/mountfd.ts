/**
 * Bind mounts made by descriptor with the new mount API (open_tree and
 * move_mount, Linux 5.2; mount_setattr, 5.12; a move_mount target inside
 * a detached tree needs a recent kernel: this VM's 6.18 has it): the source
 * is cloned from an fd the caller opened, and the clone is attached onto an
 * fd the caller resolved, so nothing is looked up
 * again by path string between the check and the mount. mount(8) on a path
 * follows whatever symlink was swapped into that path meanwhile.
 *
 * Every fd returned here is O_CLOEXEC. A detached tree (and everything
 * attached inside it) is freed by the kernel when its last fd is closed:
 * no unmount, nothing in any mount table, nothing left by a crash.
 */
import koffi from 'koffi';
import { AT_EMPTY_PATH, fail, O_CLOEXEC } from './openat2.ts';

const libc = koffi.load('libc.so.6');
// The unified syscall table (every architecture): open_tree 428, move_mount 429, mount_setattr 442.
const SYS_open_tree = 428;
const SYS_move_mount = 429;
const SYS_mount_setattr = 442;
const sysOpenTree = libc.func('syscall', 'long', ['long', 'int', 'str', 'uint32']);
const sysMoveMount = libc.func('syscall', 'long', ['long', 'int', 'str', 'int', 'str', 'uint32']);
const sysMountSetattr = libc.func('syscall', 'long', ['long', 'int', 'str', 'uint32', 'void *', 'size_t']);

const OPEN_TREE_CLONE = 1;
const AT_RECURSIVE = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH = 0x40;
const MOUNT_ATTR_RDONLY = 0x1;

/**
 * A detached clone of the mount at what `fd` is (any fd, O_PATH included):
 * a bind of that directory or file, with the mounts below it when recursive.
 */
export function cloneTree(fd: number, opts: { recursive?: boolean } = {}): number {
  const tree = sysOpenTree(SYS_open_tree, fd, '', OPEN_TREE_CLONE | O_CLOEXEC | AT_EMPTY_PATH | (opts.recursive ? AT_RECURSIVE : 0)) as number;
  if (tree < 0) fail('open_tree');
  return tree;
}

const attr = Buffer.alloc(32); // struct mount_attr: attr_set, attr_clr, propagation, userns_fd

/** Makes a detached mount read-only (it and the mounts below it when recursive). */
export function setReadonly(tree: number, opts: { recursive?: boolean } = {}): void {
  attr.fill(0);
  attr.writeBigUInt64LE(BigInt(MOUNT_ATTR_RDONLY), 0);
  if ((sysMountSetattr(SYS_mount_setattr, tree, '', AT_EMPTY_PATH | (opts.recursive ? AT_RECURSIVE : 0), attr, 32) as number) < 0) fail('mount_setattr');
}

/** Attaches the detached mount `tree` onto what `targetFd` is (O_PATH is enough). */
export function moveMount(tree: number, targetFd: number): void {
  if ((sysMoveMount(SYS_move_mount, tree, '', targetFd, '', MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) as number) < 0) fail('move_mount');
}
