import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadProject } from './load.ts';

function load(yaml: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-consistency-'));
  try {
    fs.writeFileSync(path.join(dir, 'compose.yaml'), yaml);
    return loadProject({ cwd: dir, projectName: 'p', env: {}, onWarning: () => {} });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test("one value given two ways differently is refused in compose-go's words; the same value twice is fine", () => {
  assert.throws(
    () => load('services:\n  a:\n    image: x\n    mem_limit: 1g\n    deploy: {resources: {limits: {memory: 512m}}}\n'),
    /services\.a: can't set distinct values on 'mem_limit' and 'deploy\.resources\.limits\.memory'/,
  );
  assert.throws(
    () => load('services:\n  a:\n    image: x\n    cpus: 0.5\n    deploy: {resources: {limits: {cpus: "1"}}}\n'),
    /can't set distinct values on 'cpus' and 'deploy\.resources\.limits\.cpus'/,
  );
  assert.throws(
    () => load('services:\n  a:\n    image: x\n    pids_limit: 10\n    deploy: {resources: {limits: {pids: 20}}}\n'),
    /can't set distinct values on 'pids_limit'/,
  );
  assert.throws(
    () => load('services:\n  a:\n    image: x\n    mem_reservation: 10m\n    deploy: {resources: {reservations: {memory: 20m}}}\n'),
    /can't set distinct values on 'mem_reservation'/,
  );
  assert.equal(load('services:\n  a:\n    image: x\n    mem_limit: 1g\n    deploy: {resources: {limits: {memory: 1024m}}}\n').services.a!.mem_limit, 1 << 30);
});

test('negative replicas, two mounts on one target, a secret without a source are refused', () => {
  assert.throws(() => load('services:\n  a:\n    image: x\n    deploy: {replicas: -1}\n'), /services\.a\.deploy\.replicas: must be greater than or equal to 0/);
  assert.throws(() => load('services:\n  a:\n    image: x\n    scale: -2\n'), /services\.a\.scale: must be greater than or equal to 0/);
  assert.throws(
    () => load('services:\n  a:\n    image: x\n    volumes: ["/srv:/data", "/tmp:/data/"]\n'),
    /services\.a\.volumes\[1\]: target \/data already mounted as services\.a\.volumes\[0\]/,
  );
  assert.throws(
    () => load('services:\n  a:\n    image: x\n    tmpfs: ["/run:size=1m"]\n    volumes: ["/srv:/run"]\n'),
    /services\.a\.volumes\[0\]: target \/run already mounted as services\.a\.tmpfs\[0\]/,
  );
  assert.throws(() => load('services:\n  a:\n    image: x\nsecrets:\n  s: {name: x}\n'), /secret "s" must declare either `file` or `environment`/);
  assert.equal(load('services:\n  a:\n    image: x\nsecrets:\n  s: {external: true}\n').secrets.s!.external, true);
});
