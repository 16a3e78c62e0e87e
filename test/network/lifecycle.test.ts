import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { exec } from '../../src/common/exec.ts';
import { NetworkManager, parsePortSpecs } from '../../src/network/index.ts';
import { BB, cid, harness, inNs, type Harness } from './helpers.ts';

let h: Harness;
before(async () => {
  h = await harness();
});
after(async () => {
  await h.cleanup();
});

/** Host objects this harness can own: its links, netns pins, iptables lines, leases (plus host-wide totals, for the log). */
async function counts() {
  // The spare sandbox (a netns and a veth made ahead for the default bridge) is one of them: count it once it is made.
  await h.nm.settled();
  const links = (await exec(['ip', '-o', 'link'])).stdout.trim().split('\n');
  const rules = (await exec(['iptables-save'])).stdout.split('\n').filter((l) => l.startsWith('-A') || l.startsWith(':'));
  const mounts = (await fsp.readFile('/proc/self/mountinfo', 'utf8')).split('\n').filter((l) => l.includes(h.root));
  return {
    links: links.filter((l) => l.includes(`: ${h.nm.opts.vethPrefix}`) || l.includes(`: kt${h.tag}`)).length,
    netnsFiles: (await fsp.readdir(h.nm.opts.netnsDir)).length,
    nsMounts: mounts.length,
    rules: rules.filter((l) => l.includes(h.nm.opts.chainPrefix)).length,
    leases: h.nm.ipam.list().length,
    sandboxes: h.nm.counts().sandboxes,
    allLinks: links.length,
    allRules: rules.length,
  };
}

/** The kernel destroys an unpinned netns (and its veths) asynchronously: wait for it. */
async function settled(want: Awaited<ReturnType<typeof counts>>) {
  let c = await counts();
  for (let i = 0; i < 50 && c.links !== want.links; i++) (await sleep(100), (c = await counts()));
  return c;
}

test('100 setup/teardown cycles leave links, netns, iptables rules and leases where they started', async (t) => {
  await h.nm.createNetwork({ Name: 'cyc' });
  // Activate both networks once: bridges and chains exist from then on.
  for (const network of ['bridge', 'cyc']) {
    const id = cid();
    await h.nm.attach(id, { containerName: 'warm', networks: [{ network }] });
    await h.nm.detach(id);
  }
  const before = await settled(await counts());
  const plain: number[] = [];
  const withPort: number[] = [];
  const { bindings } = parsePortSpecs(['80']);
  for (let i = 0; i < 100; i++) {
    const id = cid();
    const ports = i % 4 === 3;
    const t0 = performance.now();
    const sb = await h.nm.attach(id, {
      containerName: `c${i}`,
      networks: [{ network: i % 2 ? 'cyc' : 'bridge', aliases: i % 2 ? ['x'] : [] }],
      portBindings: ports ? bindings : undefined,
    });
    await h.nm.detach(id);
    (ports ? withPort : plain).push(performance.now() - t0);
    assert.ok(sb.NetnsPath);
  }
  const afterCounts = await settled(before);
  t.diagnostic(`before ${JSON.stringify(before)}`);
  t.diagnostic(`after  ${JSON.stringify(afterCounts)}`);
  const med = (x: number[]) => x.sort((a, b) => a - b)[x.length >> 1]!.toFixed(1);
  t.diagnostic(`attach+detach median: ${med(plain)} ms without ports, ${med(withPort)} ms with a published port`);
  for (const k of ['links', 'netnsFiles', 'nsMounts', 'rules', 'leases', 'sandboxes'] as const) assert.equal(afterCounts[k], before[k], k);
  await h.nm.removeNetwork('cyc');
});

test('reconcile after a daemon crash frees what dead containers held and keeps the live one working', async () => {
  const [live, dead1, dead2] = [cid(), cid(), cid()];
  const sl = await h.nm.attach(live, { containerName: 'live', portBindings: parsePortSpecs(['80']).bindings });
  await h.nm.attach(dead1, { containerName: 'dead1', portBindings: parsePortSpecs(['80']).bindings });
  await h.nm.attach(dead2, { containerName: 'dead2' });
  const stray = path.join(h.nm.opts.netnsDir, 'stray');
  await fsp.writeFile(stray, '');
  await exec(['unshare', `--net=${stray}`, 'true']);
  // "Crash": drop the manager without teardown (its spare sandbox made) and start a new one on the same roots.
  await h.nm.settled();
  h.nm.close();
  const nm2 = new NetworkManager({ ...h.nm.opts, defaultBridge: { bridgeName: `kt${h.tag}0`, subnet: `10.${h.octet}.0.0/24` } });
  await nm2.init();
  const r = await nm2.reconcile([live]);
  // Two netns files nobody owns: the stray one and the old manager's spare.
  assert.deepEqual({ sandboxes: r.sandboxes, netns: r.netns }, { sandboxes: 2, netns: 2 });
  assert.deepEqual(
    nm2.ipam.list().map((l) => l.owner),
    [live],
  );
  assert.deepEqual(await fsp.readdir(h.nm.opts.netnsDir), [path.basename(sl.NetnsPath)]);
  assert.equal(nm2.counts().ports, 1);
  const rules = (await exec(['iptables-save', '-t', 'nat'])).stdout.split('\n').filter((l) => l.includes(`${h.nm.opts.chainPrefix}-DNAT -p`));
  assert.equal(rules.length, 1);
  assert.equal((await inNs(sl.NetnsPath, [BB, 'ping', '-c1', '-W2', Object.values(sl.Endpoints)[0]!.Gateway])).code, 0);
  h.nm = nm2;
  await nm2.detach(live);
});

test('the spare sandbox: taken by the next default-bridge container, skipped when its veth left the bridge, removed at shutdown', async () => {
  const spareLinks = async () => {
    await h.nm.settled();
    const mine = new Set([...h.nm.state.sandboxes.values()].flatMap((s) => Object.values(s.Endpoints).map((e) => e.HostIfName)));
    const links = (await exec(['ip', '-o', 'link', 'show', 'master', `kt${h.tag}0`])).stdout.split('\n');
    return links.map((l) => /^\d+: ([^@:]+)/.exec(l)?.[1]).filter((n): n is string => !!n && !mine.has(n));
  };
  const [a, b, c] = [cid(), cid(), cid()];
  await h.nm.attach(a, { containerName: 'a' });
  const [spare] = await spareLinks();
  assert.ok(spare, 'a spare veth is on the bridge after a default-bridge container');
  // b gets the spare: its netns and veth are the spare's, its lease and endpoint are b's, and it works.
  const sb = await h.nm.attach(b, { containerName: 'b', portBindings: parsePortSpecs(['80']).bindings });
  const ep = Object.values(sb.Endpoints)[0]!;
  assert.equal(ep.HostIfName, spare);
  assert.notEqual(path.basename(sb.NetnsPath), b);
  assert.equal(ep.ContainerId, b);
  assert.deepEqual(
    h.nm.ipam
      .list()
      .filter((l) => l.ip === ep.IPAddress)
      .map((l) => l.owner),
    [b],
  );
  assert.equal(sb.Ports[0]?.ContainerIp, ep.IPAddress);
  assert.equal((await inNs(sb.NetnsPath, [BB, 'ping', '-c1', '-W2', ep.Gateway])).code, 0);
  // A spare whose veth is no longer on the bridge is thrown away, not handed out.
  const [stale] = await spareLinks();
  assert.ok(stale && stale !== spare);
  await exec(['ip', 'link', 'set', stale, 'nomaster']);
  const sc = await h.nm.attach(c, { containerName: 'c' });
  assert.equal(path.basename(sc.NetnsPath), c);
  assert.equal((await inNs(sc.NetnsPath, [BB, 'ping', '-c1', '-W2', ep.Gateway])).code, 0);
  for (const id of [a, b, c]) await h.nm.detach(id);
  // (the kernel removes the veths of unpinned namespaces a moment later)
  let left = await spareLinks();
  for (let i = 0; i < 50 && left.length > 1; i++) (await sleep(100), (left = await spareLinks()));
  assert.equal(left.length, 1);
  await h.nm.shutdown();
  assert.deepEqual(h.nm.ipam.list(), []);
  assert.deepEqual(await fsp.readdir(h.nm.opts.netnsDir), []);
  assert.ok(!(await exec(['ip', 'link', 'show', stale], { allowFailure: true })).stdout.includes(stale), 'the stale spare is gone');
});
