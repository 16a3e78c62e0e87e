import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJsonLines, renderProgress } from './progress.ts';

function sink(isTTY: boolean): NodeJS.WriteStream & { text: string } {
  const s = {
    text: '',
    isTTY,
    write(c: string) {
      s.text += c;
      return true;
    },
  };
  return s as unknown as NodeJS.WriteStream & { text: string };
}

async function* from(msgs: object[]) {
  yield* msgs;
}

const pull = [
  { status: 'Pulling from apires/built', id: '1' },
  { status: 'Already exists', progressDetail: {}, id: 'aaa' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'bbb' },
  { status: 'Downloading', progressDetail: { current: 5, total: 10 }, progress: '[=====>    ] 5B/10B', id: 'bbb' },
  { status: 'Download complete', progressDetail: {}, id: 'bbb' },
  { status: 'Pull complete', progressDetail: {}, id: 'bbb' },
  { status: 'Digest: sha256:abc' },
  { status: 'Status: Downloaded newer image for x:1' },
];

test('plain output drops progress bars, like the docker CLI', async () => {
  const out = sink(false);
  await renderProgress(from(pull), out);
  assert.equal(
    out.text,
    '1: Pulling from apires/built\naaa: Already exists\nbbb: Pulling fs layer\nbbb: Download complete\nbbb: Pull complete\nDigest: sha256:abc\nStatus: Downloaded newer image for x:1\n',
  );
});

test('a terminal gets one line per layer redrawn in place', async () => {
  const out = sink(true);
  await renderProgress(from(pull), out);
  assert.ok(out.text.includes('\x1b[1A\x1b[2K\rbbb: Downloading [=====>    ] 5B/10B\r\x1b[1B'));
  assert.ok(out.text.endsWith('Digest: sha256:abc\nStatus: Downloaded newer image for x:1\n'));
});

test('quiet prints nothing; an error message throws', async () => {
  const out = sink(false);
  await renderProgress(from(pull), out, { quiet: true });
  assert.equal(out.text, '');
  await assert.rejects(renderProgress(from([{ status: 'x' }, { errorDetail: { message: 'boom' }, error: 'boom' }]), sink(false)), { message: 'boom' });
});

test('JSON lines parsing across chunk boundaries', async () => {
  async function* chunks() {
    yield Buffer.from('{"status":"a"}\r\n{"sta');
    yield Buffer.from('tus":"b"}\r\n');
  }
  const got = [];
  for await (const m of parseJsonLines(chunks())) got.push(m);
  assert.deepEqual(got, [{ status: 'a' }, { status: 'b' }]);
});
