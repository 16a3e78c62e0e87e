import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { run, type TestDaemon } from '../helpers/daemon.ts';
import { daemonWithBusybox, ok } from './helpers.ts';

let d: TestDaemon;
before(async () => {
  d = await daemonWithBusybox('keel-cli-life');
});
after(() => d.cleanup());

const status = async (name: string) => {
  const lines = (await ok(d, ['ps', '-a', '--format', '{{.Names}}|{{.Status}}'])).trim().split('\n');
  return lines.find((l) => l.startsWith(`${name}|`))?.slice(name.length + 1) ?? '';
};

describe('container lifecycle through the keel CLI', () => {
  test('ps shows docker columns; stop, start, restart, pause, unpause, kill, wait, rename, rm', async () => {
    await ok(d, ['run', '-d', '--name', 'life', '-p', '127.0.0.1:18601:80', 'busybox:local', 'sleep', '600']);
    const ps = (await ok(d, ['ps'])).split('\n');
    assert.match(ps[0]!, /^CONTAINER ID   IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/);
    assert.match(ps[1]!, /^[0-9a-f]{12}   busybox:local   "sleep 600"\s+.* ago\s+Up .*127\.0\.0\.1:18601->80\/tcp\s+life$/);
    assert.equal(await ok(d, ['port', 'life']), '80/tcp -> 127.0.0.1:18601\n');
    assert.equal(await ok(d, ['port', 'life', '80']), '127.0.0.1:18601\n');
    const top = await ok(d, ['top', 'life']);
    assert.match(top, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD\n.*sleep 600\n$/);
    assert.equal(await ok(d, ['pause', 'life']), 'life\n');
    assert.match(await status('life'), /^Up .*\(Paused\)$/);
    assert.equal(await ok(d, ['unpause', 'life']), 'life\n');
    assert.equal(await ok(d, ['stop', '-t', '1', 'life']), 'life\n');
    assert.match(await status('life'), /^Exited \(\d+\) .* ago$/);
    assert.equal(await ok(d, ['start', 'life']), 'life\n');
    assert.equal(await ok(d, ['restart', '-t', '0', 'life']), 'life\n');
    assert.match(await status('life'), /^Up /);
    assert.equal(await ok(d, ['rename', 'life', 'life2']), '');
    assert.equal(await ok(d, ['kill', 'life2']), 'life2\n');
    assert.equal(await ok(d, ['wait', 'life2']), '137\n');
    assert.match(await status('life2'), /^Exited \(137\) .* ago$/);
    assert.equal(await ok(d, ['container', 'rm', 'life2']), 'life2\n');
    assert.equal(await ok(d, ['ps', '-aq']), '');
  });

  test('errors name the object and exit 1', async () => {
    const rm = await d.keel(['rm', 'nosuch']);
    assert.equal(rm.code, 1);
    assert.equal(rm.stderr, 'Error response from daemon: No such container: nosuch\n');
    const stop = await d.keel(['stop', 'nosuch']);
    assert.equal(stop.code, 1);
    const insp = await d.keel(['inspect', 'nosuch']);
    assert.equal(insp.code, 1);
    assert.equal(insp.stdout, '[]\n');
    assert.equal(insp.stderr, 'Error: No such object: nosuch\n');
    await ok(d, ['run', '-d', '--name', 'busy', 'busybox:local', 'sleep', '600']);
    const rmRunning = await d.keel(['rm', 'busy']);
    assert.equal(rmRunning.code, 1);
    assert.match(rmRunning.stderr, /running container/i);
    const conflict = await d.keel(['create', '--name', 'busy', 'busybox:local']);
    assert.equal(conflict.code, 1);
    assert.match(conflict.stderr, /^Error response from daemon: .*already in use/);
    assert.equal(await ok(d, ['rm', '-f', 'busy']), 'busy\n');
  });

  test('inspect falls back to images; --type and -f', async () => {
    await ok(d, ['create', '--name', 'ins', 'busybox:local', 'true']);
    assert.equal(await ok(d, ['inspect', '-f', '{{.Config.Image}}', 'ins']), 'busybox:local\n');
    const both = JSON.parse(await ok(d, ['inspect', 'ins', 'busybox:local']));
    assert.equal(both.length, 2);
    assert.equal(both[1].RepoTags[0], 'busybox:local');
    const typed = await d.keel(['inspect', '--type', 'image', 'ins']);
    assert.equal(typed.code, 1);
    assert.match(typed.stderr, /No such image: ins/);
    await ok(d, ['rm', 'ins']);
  });

  test('ps filters, formats, -q, -n, -l, --no-trunc; container ls alias', async () => {
    await ok(d, ['create', '--name', 'p1', '-l', 'k=v', 'busybox:local', 'sh', '-c', 'echo a very long command line that gets cut']);
    await ok(d, ['create', '--name', 'p2', 'busybox:local', 'true']);
    assert.equal(await ok(d, ['ps', '-a', '--filter', 'label=k=v', '--format', '{{.Names}}']), 'p1\n');
    assert.equal(await ok(d, ['ps', '-l', '--format', '{{.Names}}']), 'p2\n');
    assert.equal((await ok(d, ['ps', '-n', '2', '-q'])).split('\n').filter(Boolean).length, 2);
    assert.equal(await ok(d, ['container', 'ls', '-a', '--filter', 'name=p1', '--format', '{{.Command}}']), '"sh -c echo a very l…"\n');
    assert.match(await ok(d, ['ps', '-a', '--no-trunc', '-q', '--filter', 'name=p1']), /^[0-9a-f]{64}\n$/);
    const tbl = await ok(d, ['ps', '-a', '--filter', 'name=p2', '--format', 'table {{.ID}}\t{{.Status}}']);
    assert.match(tbl, /^CONTAINER ID   STATUS\n[0-9a-f]{12}   Created\n$/);
    const json = JSON.parse(await ok(d, ['ps', '-a', '--filter', 'name=p2', '--format', 'json']));
    assert.equal(json.Names, 'p2');
    const pruned = await ok(d, ['container', 'prune', '-f']);
    assert.match(pruned, /^Deleted Containers:\n[0-9a-f]{64}\n[0-9a-f]{64}\n\nTotal reclaimed space: /);
  });

  test('stats --no-stream, update, diff, commit, export', async () => {
    await ok(d, ['run', '-d', '--name', 'st', 'busybox:local', 'sh', '-c', 'touch /newfile; exec sleep 600']);
    const stats = (await ok(d, ['stats', '--no-stream'])).split('\n');
    assert.match(stats[0]!, /^CONTAINER ID   NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/);
    assert.match(stats[1]!, /^[0-9a-f]{12}   st\s+\d+\.\d\d%\s+[\d.]+[KMG]?i?B \/ [\d.]+[KMGT]?i?B\s+\d+\.\d\d%\s+\S+ \/ \S+\s+\S+ \/ \S+\s+1$/);
    assert.match(await ok(d, ['stats', '--no-stream', '--format', '{{.Name}}: {{.PIDs}}', 'st']), /^st: 1\n$/);
    assert.equal(await ok(d, ['update', '-m', '128m', '--pids-limit', '99', 'st']), 'st\n');
    assert.equal(await ok(d, ['inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}', 'st']), `${128 * 1024 * 1024} 99\n`);
    const badUpdate = await d.keel(['update', '-m', 'lots', 'st']);
    assert.equal(badUpdate.code, 125);
    assert.match(badUpdate.stderr, /invalid argument "lots" for "-m, --memory" flag/);
    assert.match(await ok(d, ['diff', 'st']), /^A \/newfile$/m);
    const img = (await ok(d, ['commit', '-m', 'snap', '-c', 'ENV SNAP=1', 'st', 'snap:1'])).trim();
    assert.match(img, /^sha256:[0-9a-f]{64}$/);
    assert.equal(await ok(d, ['run', '--rm', 'snap:1', 'sh', '-c', 'ls /newfile; echo $SNAP']), '/newfile\n1\n');
    const tar = path.join(d.dir, 'st.tar');
    await ok(d, ['export', '-o', tar, 'st']);
    const list = await run(['tar', '-tf', tar]);
    assert.match(list.stdout, /^\.?\/?newfile$/m);
    assert.match(list.stdout, /^\.?\/?bin\/busybox$/m);
    assert.ok(fs.statSync(tar).size > 1_000_000);
    await ok(d, ['rm', '-f', 'st']);
  });
});
