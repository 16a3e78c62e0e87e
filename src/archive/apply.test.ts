import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import zlib from 'node:zlib';
import { getAttributeSync } from '@napi-rs/xattr';
import { isEngineError } from '../common/errors.ts';
import { applyLayer, type ApplyOptions } from './apply.ts';
import { cleanEntryPath } from './resolve.ts';
import { packTar, rawBlock, rawTar, type TestEntry } from './testtar.ts';

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-archive-unit-'));
after(() => fs.rmSync(base, { recursive: true, force: true }));
let n = 0;

/** A fresh sandbox: `dest` to apply into and `outside`, a sibling that must never change. */
function sandbox() {
  const dir = path.join(base, String(n++));
  const dest = path.join(dir, 'dest');
  const outside = path.join(dir, 'outside');
  fs.mkdirSync(dest, { recursive: true });
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'victim'), 'original');
  return { dir, dest, outside };
}

const apply = (dest: string, tar: Buffer, opts?: ApplyOptions) => applyLayer(dest, Readable.from([tar]), opts);
const tar = (entries: TestEntry[]) => packTar(entries);

async function refuses(p: Promise<unknown>, match: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isEngineError(e, 'INVALID_ARGUMENT'), `expected INVALID_ARGUMENT, got ${String(e)}`);
    assert.match((e as Error).message, match);
    return true;
  });
}

function untouched(outside: string) {
  assert.deepEqual(fs.readdirSync(outside), ['victim']);
  assert.equal(fs.readFileSync(path.join(outside, 'victim'), 'utf8'), 'original');
}

test('cleanEntryPath drops ./ and leading /, pops .. and refuses climbing above root', () => {
  assert.deepEqual(cleanEntryPath('/abs/x'), ['abs', 'x']);
  assert.deepEqual(cleanEntryPath('./a/./b/../c/'), ['a', 'c']);
  assert.throws(() => cleanEntryPath('../x'), /climbs above the root/);
  assert.throws(() => cleanEntryPath('a/../../x'), /climbs above the root/);
});

test('applies files, dirs, symlinks, hardlinks with modes, times and a correct diff_id', async () => {
  const { dest } = sandbox();
  const t = await tar([
    { name: 'etc/', type: 'directory', mode: 0o750, mtime: new Date(1_500_000_000_000) },
    { name: 'etc/passwd', body: 'root:x:0:0\n', mode: 0o644 },
    { name: 'usr/bin/su', body: 'su', mode: 0o4755 },
    { name: 'bin', type: 'symlink', linkname: 'usr/bin' },
    { name: 'etc/passwd-', type: 'link', linkname: 'etc/passwd' },
  ]);
  const r = await apply(dest, t);
  assert.equal(r.diffId, 'sha256:' + createHash('sha256').update(t).digest('hex'));
  assert.equal(r.size, t.length);
  assert.equal(r.entries, 5);
  assert.equal(fs.readFileSync(path.join(dest, 'etc/passwd'), 'utf8'), 'root:x:0:0\n');
  assert.equal(fs.statSync(path.join(dest, 'etc')).mode & 0o7777, 0o750);
  assert.equal(fs.statSync(path.join(dest, 'etc')).mtimeMs, 1_500_000_000_000);
  assert.equal(fs.statSync(path.join(dest, 'usr/bin/su')).mode & 0o7777, 0o4755);
  assert.equal(fs.readlinkSync(path.join(dest, 'bin')), 'usr/bin');
  assert.equal(fs.statSync(path.join(dest, 'etc/passwd-')).ino, fs.statSync(path.join(dest, 'etc/passwd')).ino);
});

test('gzip and zstd layers are detected and give the diff_id of the uncompressed tar', async () => {
  const t = await tar([{ name: 'a', body: 'x'.repeat(10000) }]);
  const want = 'sha256:' + createHash('sha256').update(t).digest('hex');
  for (const z of [zlib.gzipSync(t), zlib.zstdCompressSync(t)]) {
    const { dest } = sandbox();
    assert.equal((await apply(dest, z)).diffId, want);
    assert.equal(fs.readFileSync(path.join(dest, 'a'), 'utf8').length, 10000);
  }
});

test('refuses an entry whose .. climbs above the root, naming it', async () => {
  const { dest, outside } = sandbox();
  await refuses(apply(dest, await tar([{ name: '../outside/victim', body: 'pwned' }])), /"\.\.\/outside\/victim".*climbs above the root/);
  await refuses(apply(dest, await tar([{ name: 'a/../../outside/x', body: 'pwned' }])), /climbs above the root/);
  untouched(outside);
});

test('refuses hardlinks whose target climbs above the root', async () => {
  const { dest, outside } = sandbox();
  await refuses(apply(dest, await tar([{ name: 'h', type: 'link', linkname: '../outside/victim' }])), /hardlink target.*climbs above the root/);
  untouched(outside);
});

test('refuses whiteouts naming . or .. and whiteouts that escape', async () => {
  const { dest, outside } = sandbox();
  await refuses(apply(dest, await tar([{ name: 'a/.wh...' }])), /whiteout "a\/\.wh\.\.\." names "\.\."/);
  await refuses(apply(dest, await tar([{ name: '.wh..' }])), /names "\."/);
  await refuses(apply(dest, await tar([{ name: '../.wh.outside' }])), /climbs above the root/);
  untouched(outside);
});

test('refuses non-tar data, empty and truncated archives', async () => {
  const { dest } = sandbox();
  await refuses(apply(dest, Buffer.from('this is not a tar archive, just some text'.repeat(20))), /not a tar archive/);
  await refuses(apply(dest, Buffer.alloc(0)), /empty/);
  const t = await tar([{ name: 'big', body: Buffer.alloc(5000, 1) }]);
  await refuses(apply(dest, t.subarray(0, 2048)), /truncated inside "big"/);
  await refuses(apply(dest, t.subarray(0, 512 * 11)), /truncated/);
  await refuses(apply(dest, zlib.gzipSync(t).subarray(0, 100)), /not valid gzip|truncated/);
});

test('refuses oversized PAX headers and sparse entries', async () => {
  const { dest } = sandbox();
  const big = 2 * 1024 * 1024;
  const t = Buffer.concat([rawBlock('PaxHeader/x', 'x', big), Buffer.alloc(big), Buffer.alloc(1024)]);
  await refuses(apply(dest, t), /extended tar header of 2097152 bytes.*exceeds/);
  await refuses(apply(dest, Buffer.concat([rawBlock('sparse', 'S', 0), Buffer.alloc(1024)])), /sparse file "sparse"/);
  await refuses(apply(dest, await tar([{ name: 's', pax: { 'GNU.sparse.major': '1' } }])), /sparse/);
});

test('refuses decompression bombs and entries declaring sizes past the limit', async () => {
  const { dest } = sandbox();
  const t = await tar([{ name: 'zeros', body: Buffer.alloc(4 * 1024 * 1024) }]);
  const bomb = zlib.gzipSync(t);
  assert.ok(bomb.length < 10_000);
  await refuses(apply(dest, bomb, { maxUncompressedBytes: 1024 * 1024 }), /"zeros" declares 4194304 bytes, over the layer size limit/);
  // A header claiming a terabyte (as a sparse/hostile entry would) is refused before any data is read.
  const huge = Buffer.concat([rawBlock('huge', '0', 0), Buffer.alloc(1024)]);
  huge.fill(0, 124, 136);
  huge[124] = 0x80; // GNU base-256 size: 2^40
  huge[130] = 0x01;
  huge.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += huge[i]!;
  huge.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  await refuses(apply(dest, huge), /"huge" declares 1099511627776 bytes/);
  // Many small entries: the byte counter itself trips.
  const many = await tar(Array.from({ length: 300 }, (_, i) => ({ name: `f${i}`, body: 'x' })));
  await refuses(apply(dest, zlib.gzipSync(many), { maxUncompressedBytes: 64 * 1024 }), /larger than 65536 bytes|over the layer size limit/);
  await refuses(apply(dest, many, { maxEntries: 100 }), /more than 100 entries/);
});

test('absolute names and absolute symlink targets stay inside dest', async () => {
  const { dest, outside } = sandbox();
  await apply(
    dest,
    await tar([
      { name: '/etc/hostname', body: 'abs' },
      { name: 'esc', type: 'symlink', linkname: outside },
      { name: 'esc/victim', body: 'pwned' },
      { name: 'esc/new', body: 'new' },
    ]),
  );
  untouched(outside);
  assert.equal(fs.readFileSync(path.join(dest, 'etc/hostname'), 'utf8'), 'abs');
  assert.equal(fs.readFileSync(path.join(dest, outside, 'victim'), 'utf8'), 'pwned');
  assert.equal(fs.readFileSync(path.join(dest, outside, 'new'), 'utf8'), 'new');
  assert.equal(fs.readlinkSync(path.join(dest, 'esc')), outside); // stored verbatim, resolved in-container
});

test('relative symlinks that climb out are clamped at the root for writes through them', async () => {
  const { dest, outside } = sandbox();
  await apply(
    dest,
    await tar([
      { name: 'sub/', type: 'directory' },
      { name: 'sub/up', type: 'symlink', linkname: '../../../../../../outside' },
      { name: 'sub/up/victim', body: 'pwned' },
      { name: 'loop1', type: 'symlink', linkname: 'loop2' },
      { name: 'loop2', type: 'symlink', linkname: 'loop1' },
    ]),
  );
  untouched(outside);
  assert.equal(fs.readFileSync(path.join(dest, 'outside/victim'), 'utf8'), 'pwned');
  await refuses(apply(dest, await tar([{ name: 'loop1/x', body: '' }])), /too many levels of symbolic links/);
});

test('a directory replaced by a symlink mid-layer: later writes and dir times stay inside', async () => {
  const { dest, outside } = sandbox();
  const before = fs.statSync(outside).mtimeMs;
  await apply(
    dest,
    await tar([
      { name: 'd/', type: 'directory', mtime: new Date(1000) },
      { name: 'd/a', body: 'a' },
      { name: 'd', type: 'symlink', linkname: outside },
      { name: 'd/victim', body: 'pwned' },
      { name: 'd/', type: 'directory', mode: 0o777, mtime: new Date(2000) },
    ]),
  );
  untouched(outside);
  assert.equal(fs.statSync(outside).mtimeMs, before);
  assert.equal(fs.statSync(outside).mode & 0o777, 0o755);
  assert.equal(fs.readFileSync(path.join(dest, outside, 'victim'), 'utf8'), 'pwned');
});

test('hardlinks with absolute targets or through symlinks resolve inside dest', async () => {
  const { dest, outside } = sandbox();
  await apply(
    dest,
    await tar([
      { name: 'f', body: 'inside' },
      { name: 'abs', type: 'link', linkname: '/f' },
      { name: 'root', type: 'symlink', linkname: '/' },
      { name: 'via', type: 'link', linkname: 'root/f' },
      { name: 'out', type: 'symlink', linkname: outside },
    ]),
  );
  const ino = fs.statSync(path.join(dest, 'f')).ino;
  assert.equal(fs.statSync(path.join(dest, 'abs')).ino, ino);
  assert.equal(fs.statSync(path.join(dest, 'via')).ino, ino);
  await refuses(apply(dest, await tar([{ name: 'h', type: 'link', linkname: 'out/victim' }])), /target not found/);
  await refuses(apply(dest, await tar([{ name: 'h', type: 'link', linkname: outside + '/victim' }])), /target not found/);
  untouched(outside);
});

test('device entries are skipped, FIFOs are created', async () => {
  const { dest } = sandbox();
  await apply(
    dest,
    await tar([
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 },
      { name: 'run/fifo', type: 'fifo', mode: 0o600 },
    ]),
  );
  assert.deepEqual(fs.readdirSync(path.join(dest, 'dev')), []);
  assert.ok(fs.lstatSync(path.join(dest, 'run/fifo')).isFIFO());
});

test('GNU long names, PAX paths and binary PAX xattrs; trusted.* xattrs are never applied', async () => {
  const { dest } = sandbox();
  const long = 'd'.repeat(120) + '/' + 'f'.repeat(150);
  const bin = Buffer.from([0xff, 0x00, 0x80, 0x41]);
  const t = rawTar([
    { name: long, body: Buffer.from('long') },
    {
      name: 'x',
      body: Buffer.from('x'),
      xattrs: new Map([
        ['user.bin', bin],
        ['trusted.overlay.opaque', Buffer.from('y')],
        ['security.selinux', Buffer.from('s0')],
      ]),
    },
  ]);
  await apply(dest, t);
  assert.equal(fs.readFileSync(path.join(dest, long), 'utf8'), 'long');
  assert.deepEqual(getAttributeSync(path.join(dest, 'x'), 'user.bin'), bin);
  assert.equal(getAttributeSync(path.join(dest, 'x'), 'trusted.overlay.opaque'), null);
  assert.equal(getAttributeSync(path.join(dest, 'x'), 'security.selinux'), null);
  // GNU ././@LongLink form, as GNU tar writes it
  const { dest: d2 } = sandbox();
  const gnuName = 'g'.repeat(200);
  const name = Buffer.from(gnuName + '\0');
  const gnu = Buffer.concat([
    rawBlock('././@LongLink', 'L', name.length),
    name,
    Buffer.alloc(512 - name.length),
    rawBlock('short', '0', 2),
    Buffer.from('hi'),
    Buffer.alloc(510),
    Buffer.alloc(1024),
  ]);
  await apply(d2, gnu);
  assert.equal(fs.readFileSync(path.join(d2, gnuName), 'utf8'), 'hi');
});

test('an entry replacing a path of another type removes the old one first', async () => {
  const { dest } = sandbox();
  await apply(
    dest,
    await tar([
      { name: 'x/', type: 'directory' },
      { name: 'x/child', body: 'c' },
      { name: 'y', body: 'file' },
    ]),
  );
  await apply(
    dest,
    await tar([
      { name: 'x', body: 'now a file' },
      { name: 'y/', type: 'directory' },
      { name: 'y/z', body: 'z' },
    ]),
  );
  assert.equal(fs.readFileSync(path.join(dest, 'x'), 'utf8'), 'now a file');
  assert.equal(fs.readFileSync(path.join(dest, 'y/z'), 'utf8'), 'z');
});

test('whiteouts applied to a flat tree remove lower files; opaque keeps only this layer', async () => {
  const { dest } = sandbox();
  await apply(
    dest,
    await tar([
      { name: 'a', body: 'a' },
      { name: 'd/old', body: 'o' },
      { name: 'd/sub/deep', body: 'x' },
      { name: 'keep', body: 'k' },
    ]),
  );
  await apply(dest, await tar([{ name: '.wh.a' }, { name: 'd/.wh..wh..opq' }, { name: 'd/new', body: 'n' }, { name: '.wh.missing' }]), {
    overlayWhiteouts: false,
  });
  assert.deepEqual(fs.readdirSync(dest).sort(), ['d', 'keep']);
  assert.deepEqual(fs.readdirSync(path.join(dest, 'd')), ['new']);
});

test('an aborted signal cancels the apply', async () => {
  const { dest } = sandbox();
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(apply(dest, await tar([{ name: 'a', body: 'a' }]), { signal: ac.signal }), (e: unknown) => isEngineError(e, 'CANCELLED'));
});

test('replacements, whiteouts and hardlinks over existing names inside subdirectories (cached parents stay valid)', async () => {
  const { dest } = sandbox();
  await apply(
    dest,
    await tar([
      { name: 'p/q/x/', type: 'directory' },
      { name: 'p/q/x/child', body: 'c' },
      { name: 'p/q/y', body: 'file' },
      { name: 'p/q/w', body: 'gone' },
      { name: 'p/q/t', body: 'target' },
      { name: 'p/q/l', body: 'old' },
    ]),
  );
  const ov = fs.mkdtempSync(path.join(base, 'ov-'));
  await apply(
    ov,
    await tar([
      { name: 'p/q/w', body: 'w' },
      { name: 'p/q/after-w', body: 'a' },
    ]),
  );
  await apply(ov, await tar([{ name: 'p/q/.wh.w' }, { name: 'p/q/after', body: 'after' }]));
  assert.ok(fs.lstatSync(path.join(ov, 'p/q/w')).isCharacterDevice(), 'an overlay whiteout device');
  assert.equal(fs.readFileSync(path.join(ov, 'p/q/after'), 'utf8'), 'after');
  await apply(
    dest,
    await tar([
      { name: 'p/q/x', body: 'now a file' },
      { name: 'p/q/x2', body: 'same dir after' },
      { name: 'p/q/y/', type: 'directory' },
      { name: 'p/q/y/z', body: 'z' },
      { name: 'p/q/after-y', body: 'y' },
      { name: 'p/q/l', type: 'link', linkname: 'p/q/t' },
      { name: 'p/q/after-l', body: 'l' },
    ]),
  );
  assert.equal(fs.readFileSync(path.join(dest, 'p/q/x'), 'utf8'), 'now a file');
  assert.equal(fs.readFileSync(path.join(dest, 'p/q/x2'), 'utf8'), 'same dir after');
  assert.equal(fs.readFileSync(path.join(dest, 'p/q/y/z'), 'utf8'), 'z');
  assert.equal(fs.statSync(path.join(dest, 'p/q/l')).ino, fs.statSync(path.join(dest, 'p/q/t')).ino);
  assert.equal(fs.readFileSync(path.join(dest, 'p/q/after-l'), 'utf8'), 'l');
});

test('a copy (docker cp) is not a layer: .wh. names are files, no opaque deletes, no file over a directory', async () => {
  const { dest } = sandbox();
  await apply(
    dest,
    await tar([
      { name: 'd/lower', body: 'l' },
      { name: 'f', body: 'f' },
      { name: 'g', body: 'g' },
    ]),
  );
  const copy = { copy: {} };
  await apply(
    dest,
    await tar([
      { name: '.wh.f', body: 'w' },
      { name: 'd/.wh..wh..opq', body: '' },
      { name: 'd/new', body: 'n' },
    ]),
    copy,
  );
  assert.deepEqual(fs.readdirSync(dest).sort(), ['.wh.f', 'd', 'f', 'g']);
  assert.deepEqual(fs.readdirSync(path.join(dest, 'd')).sort(), ['.wh..wh..opq', 'lower', 'new']);
  await refuses(apply(dest, await tar([{ name: 'd', body: 'file' }]), copy), /cannot overwrite directory "d"/);
  await refuses(apply(dest, await tar([{ name: 'd', type: 'symlink', linkname: '/' }]), copy), /cannot overwrite directory/);
  assert.deepEqual(fs.readdirSync(path.join(dest, 'd')).sort(), ['.wh..wh..opq', 'lower', 'new']);
  await refuses(apply(dest, await tar([{ name: 'f/', type: 'directory' }]), { copy: { noOverwriteDirNonDir: true } }), /cannot overwrite non-directory "f"/);
  await apply(
    dest,
    await tar([
      { name: 'g/', type: 'directory' },
      { name: 'g/in', body: 'i' },
    ]),
    copy,
  );
  assert.equal(fs.readFileSync(path.join(dest, 'g/in'), 'utf8'), 'i');
  // The destination directory itself keeps its mode (docker skips '.').
  fs.chmodSync(dest, 0o751);
  await apply(
    dest,
    await tar([
      { name: './', type: 'directory', mode: 0o700 },
      { name: 'h', body: 'h' },
    ]),
    copy,
  );
  assert.equal(fs.statSync(dest).mode & 0o777, 0o751);
});
