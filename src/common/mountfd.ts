/**
 * Bind mounts made and removed by descriptor (the new mount API, Linux 5.12+
 * for mount_setattr): open_tree clones the source into a detached mount,
 * mount_setattr makes it read-only before anyone can see it, and move_mount
 * attaches it onto a target *fd* the caller resolved inside a root with
 * openIn. Nothing is resolved again from a path string between the check and
 * the mount, so a directory swapped for a symlink meanwhile cannot redirect
 * the mount (mount(8) on a path would follow the symlink).
 */
import koffi from 'koffi';
import { fail } from './openat2.ts';

const libc = koffi.load('libc.so.6');
// Unified syscall numbers (every architecture): open_tree 428, move_mount 429, mount_setattr 442.
const SYS_open_tree = 428;
const SYS_move_mount = 429;
const SYS_mount_setattr = 442;
const sysOpenTree = libc.func('syscall', 'long', ['long', 'int', 'str', 'uint32']);
const sysMoveMount = libc.func('syscall', 'long', ['long', 'int', 'str', 'int', 'str', 'uint32']);
const sysMountSetattr = libc.func('syscall', 'long', ['long', 'int', 'str', 'uint32', 'void *', 'size_t']);
const cUmount2 = libc.func('int umount2(str, int)');

const AT_FDCWD = -100;
const AT_EMPTY_PATH = 0x1000;
const OPEN_TREE_CLONE = 1;
const OPEN_TREE_CLOEXEC = 0o2000000;
const MOVE_MOUNT_F_EMPTY_PATH = 0x04;
const MOVE_MOUNT_T_EMPTY_PATH = 0x40;
const MOUNT_ATTR_RDONLY = 0x1;
export const MNT_DETACH = 0x2;

/** A detached, non-recursive clone of the mount tree at `source` (a host path, followed like mount --bind does). */
export function openTree(source: string): number {
  const fd = sysOpenTree(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC) as number;
  if (fd < 0) fail('open_tree', source);
  return fd;
}

/** Makes the (detached) mount `treeFd` read-only. */
export function setReadonly(treeFd: number): void {
  const attr = Buffer.alloc(32); // struct mount_attr: attr_set, attr_clr, propagation, userns_fd
  attr.writeBigUInt64LE(BigInt(MOUNT_ATTR_RDONLY), 0);
  if ((sysMountSetattr(SYS_mount_setattr, treeFd, '', AT_EMPTY_PATH, attr, 32) as number) < 0) fail('mount_setattr');
}

/** Attaches the detached mount `treeFd` onto what `targetFd` (O_PATH is enough) is. */
export function moveMount(treeFd: number, targetFd: number): void {
  const r = sysMoveMount(SYS_move_mount, treeFd, '', targetFd, '', MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) as number;
  if (r < 0) fail('move_mount');
}

export function umount2(target: string, flags: number): void {
  if (cUmount2(target, flags) !== 0) fail('umount2', target);
}
