import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import tarStream from 'tar-stream';
import { tarDirectory } from '../archive/index.ts';
import { withFile } from './compose-backend.ts';

test('an inline Dockerfile is appended to the build context tar', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ctx-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.txt'), 'hello');
    const tar = await withFile(tarDirectory(dir), '.inline.Dockerfile', 'FROM scratch\n');
    const extract = tarStream.extract();
    const seen: Record<string, string> = {};
    extract.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c) => chunks.push(c as Buffer));
      stream.on('end', () => {
        seen[h.name.replace(/^\.\//, '')] = Buffer.concat(chunks).toString();
        next();
      });
    });
    await new Promise((res, rej) => {
      extract.on('finish', () => res(undefined));
      extract.on('error', rej);
      tar.pipe(extract as unknown as NodeJS.WritableStream);
    });
    assert.equal(seen['a.txt'], 'hello');
    assert.equal(seen['.inline.Dockerfile'], 'FROM scratch\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
