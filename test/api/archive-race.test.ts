/**
 * `GET /containers/{id}/archive` on a created container mounts its rootfs
 * for the stream and unmounts it after. A client that stops reading once it
 * has the tar (the docker CLI closes as soon as it has the archive) and
 * goes straight on to HEAD/PUT archive or start must find the rootfs as
 * those need it: the unmount happens under the container's lock.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { TestDaemon } from '../helpers/daemon.ts';

const d = new TestDaemon('keel-arace');
before(async () => {
  await d.start();
  await d.importBusybox('bb:1');
});
after(() => d.cleanup());

/** GET archive, drop the connection with the headers in hand. */
function grabAndGo(id: string): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(d.socket, () => s.write(`GET /v1.41/containers/${id}/archive?path=/bin HTTP/1.1\r\nHost: keel\r\n\r\n`));
    s.once('data', () => {
      s.destroy();
      resolve();
    });
    s.on('error', () => resolve());
  });
}

function request(method: string, p: string, body?: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(d.socket, () => {
      s.write(
        `${method} ${p} HTTP/1.1\r\nHost: keel\r\nConnection: close\r\nContent-Length: ${body?.length ?? 0}\r\n${body ? 'Content-Type: application/x-tar\r\n' : ''}\r\n`,
      );
      if (body) s.write(body);
    });
    let got = '';
    s.on('data', (b) => (got += b.toString('latin1')));
    s.on('error', reject);
    s.on('end', () => resolve(Number(got.split(' ')[1])));
  });
}

test('archive GET then at once HEAD, PUT and start on a created container', async () => {
  const tar = Buffer.alloc(2048); // an empty tar: two zero blocks
  for (let i = 0; i < 12; i++) {
    const id = (await d.docker(['create', 'bb:1', 'sh', '-c', 'test -x /bin/busybox && echo ok'])).stdout.trim();
    await grabAndGo(id);
    assert.equal(await request('HEAD', `/v1.41/containers/${id}/archive?path=/bin/sh`), 200, `HEAD, round ${i}`);
    await grabAndGo(id);
    assert.equal(await request('PUT', `/v1.41/containers/${id}/archive?path=/tmp`, tar), 200, `PUT, round ${i}`);
    await grabAndGo(id);
    const start = await request('POST', `/v1.41/containers/${id}/start`);
    assert.equal(start, 204, `start, round ${i}`);
    const w = await d.docker(['wait', id]);
    assert.equal(w.stdout.trim(), '0', `round ${i}: ${(await d.docker(['logs', id])).stderr}`);
    assert.equal((await d.docker(['logs', id])).stdout, 'ok\n');
    await d.docker(['rm', '-f', id]);
  }
});
