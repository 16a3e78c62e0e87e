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
    const sb = await h.nm.attach(id, { containerName: `c${i}`, networks: [{ network: i % 2 ? 'cyc' : 'bridge', aliases: i % 2 ? ['x'] : [] }], portBindings: ports ? bindings : undefined });
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
  // "Crash": drop the manager without teardown and start a new one on the same roots.
  h.nm.close();
  const nm2 = new NetworkManager({ ...h.nm.opts, defaultBridge: { bridgeName: `kt${h.tag}0`, subnet: `10.${h.octet}.0.0/24` } });
  await nm2.init();
  const r = await nm2.reconcile([live]);
  assert.deepEqual(r, { sandboxes: 2, leases: 0, netns: 1 });
  assert.deepEqual(nm2.ipam.list().map((l) => l.owner), [live]);
  assert.deepEqual(await fsp.readdir(h.nm.opts.netnsDir), [live]);
  assert.equal(nm2.counts().ports, 1);
  const rules = (await exec(['iptables-save', '-t', 'nat'])).stdout.split('\n').filter((l) => l.includes(`${h.nm.opts.chainPrefix}-DNAT -p`));
  assert.equal(rules.length, 1);
  assert.equal((await inNs(sl.NetnsPath, [BB, 'ping', '-c1', '-W2', Object.values(sl.Endpoints)[0]!.Gateway])).code, 0);
  h.nm = nm2;
  await nm2.detach(live);
});
