import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readLog } from '../../src/runtime/index.ts';
import { fixture, prepare, removeCgroupParent, uniqueId, type Fixture } from './helpers.ts';

/**
 * keel's default filter, seen from inside a container: a static C program
 * (compiled here, busybox cannot make these calls) runs each syscall that
 * keel's rules decide differently from the 2022 containers-common profile
 * and prints the errno the process got.
 */
let f: Fixture;
before(() => {
  f = fixture();
  const src = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/sysprobe.c');
  execFileSync('gcc', ['-static', '-O1', '-o', path.join(f.rootfs, 'bin/sysprobe'), src]);
});
after(async () => {
  await removeCgroupParent();
  f.cleanup();
});

const CALLS = [
  'socket_alg',
  'socket_vsock',
  'socket_inet',
  'socket_unix',
  'keyctl',
  'add_key',
  'request_key',
  'pivot_root',
  'unshare_user',
  'setns',
  'mount',
  'clone3',
  'vmsplice',
  'io_pgetevents',
  'kexec_load',
  'getpid',
];

async function probe(capAdd: string[] = []): Promise<Record<string, number>> {
  const id = uniqueId('sc');
  const b = await prepare(f, id, { args: ['/bin/sysprobe', ...CALLS], capAdd });
  const logPath = path.join(f.dir, `${id}.log`);
  await f.driver.create(id, b, { logPath });
  await f.driver.start(id);
  const exit = await f.driver.wait(id);
  await f.driver.delete(id);
  let out = '';
  for await (const e of readLog(logPath)) out += e.line.toString();
  assert.equal(exit.exitCode, 0, out);
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([k, v]) => [k!, Number(v)]),
  );
}

const EPERM = 1;
const ENOSYS = 38;

test('default caps: AF_ALG/AF_VSOCK sockets, the keyring and namespace calls get EPERM; unlisted syscalls EPERM, not ENOSYS', async () => {
  const r = await probe();
  assert.equal(r.socket_alg, EPERM);
  assert.equal(r.socket_vsock, EPERM);
  assert.equal(r.socket_inet, 0);
  assert.equal(r.socket_unix, 0);
  assert.equal(r.keyctl, EPERM);
  assert.equal(r.add_key, EPERM, 'no rule names add_key: the default errno must be EPERM');
  assert.equal(r.request_key, EPERM);
  assert.equal(r.pivot_root, EPERM);
  assert.equal(r.unshare_user, EPERM);
  assert.equal(r.setns, EPERM);
  assert.equal(r.mount, EPERM);
  assert.equal(r.clone3, ENOSYS);
  assert.equal(r.kexec_load, EPERM);
  // Allowed by moby's profile, refused by the 2022 one: the kernel answers (bad fd / bad context).
  assert.notEqual(r.vmsplice, EPERM);
  assert.notEqual(r.io_pgetevents, EPERM);
  assert.equal(r.getpid, 0);
});

test('CAP_SYS_ADMIN opens the namespace and mount calls, not the keyring or AF_ALG', async () => {
  const r = await probe(['SYS_ADMIN']);
  assert.equal(r.setns, 9, 'EBADF from the kernel');
  assert.notEqual(r.mount, EPERM);
  assert.equal(r.unshare_user, 0);
  assert.notEqual(r.clone3, ENOSYS);
  assert.equal(r.keyctl, EPERM);
  assert.equal(r.socket_alg, EPERM);
  assert.equal(r.pivot_root, EPERM);
});
