import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ContainerStore } from './store.ts';
import { type ContainerRecord, ZERO_TIME } from './types.ts';

function rec(id: string): ContainerRecord {
  return {
    id,
    name: `c${id.slice(0, 4)}`,
    created: ZERO_TIME,
    imageId: `sha256:${'f'.repeat(64)}` as ContainerRecord['imageId'],
    path: 'sh',
    args: [],
    config: { Labels: {}, Image: 'img' } as unknown as ContainerRecord['config'],
    hostConfig: { NetworkMode: 'default' } as ContainerRecord['hostConfig'],
    state: { Status: 'created', Pid: 0, ExitCode: 0, Error: '', StartedAt: ZERO_TIME, FinishedAt: ZERO_TIME, OOMKilled: false },
    restartCount: 0,
    manuallyStopped: false,
    hasBeenStarted: false,
  };
}

test('saves of one record land in order: the file ends with the newest state', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-store-'));
  try {
    const s = new ContainerStore(dir);
    await s.load();
    const r = rec('a'.repeat(64));
    // Records grow as they are used (endpoints, mounts): older states are larger here, so they take longer to write.
    r.config.Labels = Object.fromEntries(Array.from({ length: 4000 }, (_, i) => [`k${i}`, 'v'.repeat(50)]));
    await s.add(r);
    for (let round = 0; round < 30; round++) {
      const saves: Promise<void>[] = [];
      for (let i = 0; i < 6; i++) {
        r.restartCount = round * 6 + i;
        if (i === 5) r.config.Labels = {};
        saves.push(s.save(r));
      }
      await Promise.all(saves);
      const onDisk = JSON.parse(fs.readFileSync(path.join(dir, r.id, 'config.json'), 'utf8')) as ContainerRecord;
      assert.equal(onDisk.restartCount, round * 6 + 5, `round ${round}`);
      r.config.Labels = Object.fromEntries(Array.from({ length: 4000 }, (_, i) => [`k${i}`, 'v'.repeat(50)]));
    }
    // A save queued behind a removal does not bring the record back.
    const gone = s.save(r);
    await s.remove(r);
    await gone;
    assert.equal(fs.existsSync(path.join(dir, r.id)), false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a record is fsynced before it is renamed into place, and its directory after', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-store-'));
  try {
    const store = fileURLToPath(new URL('./store.ts', import.meta.url));
    const script = `import { ContainerStore } from ${JSON.stringify(store)};
      const s = new ContainerStore(${JSON.stringify(dir)}); await s.load();
      await s.add(${JSON.stringify(rec('b'.repeat(64)))});`;
    const trace = path.join(dir, 'trace');
    const r = spawnSync('strace', [
      '-f',
      '-y',
      '-e',
      'trace=fsync,fdatasync,rename,renameat,renameat2',
      '-o',
      trace,
      process.execPath,
      '--input-type=module',
      '-e',
      script,
    ]);
    assert.equal(r.status, 0, String(r.stderr));
    const lines = fs
      .readFileSync(trace, 'utf8')
      .split('\n')
      .filter((l) => l.includes('config.json') || l.includes(`${'b'.repeat(64)}>`));
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    const fsyncTmp = at(/fsync\(\d+<[^>]*\.config\.json\.[0-9a-f]+\.tmp>\)\s+= 0/);
    const rename = at(/rename(at2?)?\(.*\.config\.json\.[0-9a-f]+\.tmp.*config\.json.*= 0/);
    const fsyncDir = lines.findIndex((l, i) => i > rename && new RegExp(`fsync\\(\\d+<${dir}/${'b'.repeat(64)}>\\)\\s+= 0`).test(l));
    assert.ok(fsyncTmp >= 0 && rename > fsyncTmp && fsyncDir > rename, lines.join('\n'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
