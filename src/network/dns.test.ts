import assert from 'node:assert/strict';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';
import { DnsServer, shuffled } from './dns.ts';

const replicas = ['10.81.0.2', '10.81.0.3', '10.81.0.4', '10.81.0.5'];

async function ask(srv: DnsServer, name: string): Promise<string[]> {
  const reply = await srv.answer(Buffer.from(dnsPacket.encode({ id: 7, type: 'query', questions: [{ name, type: 'A' }] })), '10.81.0.9', 'udp');
  return dnsPacket.decode(reply!).answers!.map((a) => (a as { data: string }).data);
}

test('a name with several addresses is answered with all of them, in a new order each time (round robin, as Docker)', async () => {
  const srv = new DnsServer({ address: '127.0.0.1', port: 0, lookup: (n) => (n === 'web' ? replicas : undefined), upstreams: () => [] });
  const orders = new Set<string>();
  const first = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const got = await ask(srv, 'web');
    assert.deepEqual([...got].sort(), replicas, 'every replica in every answer');
    orders.add(got.join(','));
    first.add(got[0]!);
  }
  // 200 draws of 24 orders: every replica comes first at some point (missing one has probability ~1e-25)
  assert.deepEqual([...first].sort(), replicas);
  assert.ok(orders.size > 1);
});

test('more than 16 addresses: 16 of them per answer, not always the same 16', async () => {
  const many = Array.from({ length: 20 }, (_, i) => `10.82.0.${i + 2}`);
  const srv = new DnsServer({ address: '127.0.0.1', port: 0, lookup: () => many, upstreams: () => [] });
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const got = await ask(srv, 'svc');
    assert.equal(got.length, 16);
    got.forEach((a) => seen.add(a));
  }
  assert.equal(seen.size, 20);
});

test('shuffled: a permutation, the input left alone', () => {
  const input = [1, 2, 3, 4, 5];
  let k = 0;
  const fixed = [0.9, 0.1, 0.5, 0.3];
  const out = shuffled(input, () => fixed[k++ % fixed.length]!);
  assert.deepEqual(input, [1, 2, 3, 4, 5]);
  assert.deepEqual([...out].sort(), input);
  assert.notDeepEqual(out, input);
  assert.deepEqual(shuffled([], Math.random), []);
});
