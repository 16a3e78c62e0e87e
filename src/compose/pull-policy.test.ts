import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ComposeBackend, ImageSummary } from './backend.ts';
import { ensureImages, pullPolicy, refreshDue } from './images.ts';
import { projectOf } from './fake.ts';
import { collectingReporter } from './reporter.ts';

const project = (yaml: string) => projectOf(yaml);

const H = 3600e3;
const D = 24 * H;

test('pull_policy values as compose-go reads them', () => {
  assert.deepEqual(pullPolicy('daily'), { policy: 'refresh', every: D });
  assert.deepEqual(pullPolicy('weekly'), { policy: 'refresh', every: 7 * D });
  assert.deepEqual(pullPolicy('every_12h'), { policy: 'refresh', every: 12 * H });
  assert.deepEqual(pullPolicy('every_1w2d3h4m5s'), { policy: 'refresh', every: 9 * D + 3 * H + 4 * 60e3 + 5e3 });
  assert.deepEqual(pullPolicy('every_90m'), { policy: 'refresh', every: 90 * 60e3 });
  // `refresh` alone has no window: compose-go's GetPullPolicy makes it missing; so is if_not_present
  assert.deepEqual(pullPolicy('refresh'), { policy: 'missing' });
  assert.deepEqual(pullPolicy('if_not_present'), { policy: 'missing' });
  assert.deepEqual(pullPolicy(undefined), { policy: 'missing' });
  assert.deepEqual(pullPolicy('build'), { policy: 'build' });
  assert.throws(() => pullPolicy('every_soon', 'web'), /service "web": invalid pull_policy "every_soon"/);
  const now = Date.parse('2026-12-05T10:00:00Z');
  assert.equal(refreshDue(pullPolicy('daily'), now - 25 * H, now), true);
  assert.equal(refreshDue(pullPolicy('daily'), now - 23 * H, now), false);
  assert.equal(refreshDue(pullPolicy('every_1h'), now - 2 * H, now), true);
  // never tagged (Docker's zero LastTagTime): due
  assert.equal(refreshDue(pullPolicy('weekly'), undefined, now), true);
  assert.equal(refreshDue(pullPolicy('missing'), undefined, now), false);
});

/** Images by name with their last tag time; pulls and builds recorded (a pull or build tags the image now). */
function engine(images: Record<string, number>) {
  const calls: string[] = [];
  const have = new Map(Object.entries(images));
  const summary = (ref: string): ImageSummary | undefined =>
    have.has(ref) ? { id: `sha256:${ref}`, repoTags: [ref], size: 1, created: 0, lastTagTime: have.get(ref) } : undefined;
  const b = {
    inspectImage: async (ref: string) => summary(ref),
    pullImage: async (ref: string) => {
      calls.push(`pull ${ref}`);
      have.set(ref, Date.now());
    },
    build: async (spec: { tags: string[] }) => {
      calls.push(`build ${spec.tags[0]}`);
      have.set(spec.tags[0]!, Date.now());
      return `sha256:${spec.tags[0]}`;
    },
  } as unknown as ComposeBackend;
  return { b, calls };
}

const YAML = `services:
  fresh: {image: "fresh:1", pull_policy: daily}
  stale: {image: "stale:1", pull_policy: daily}
  hourly: {image: "hourly:1", pull_policy: every_1h}
  absent: {image: "absent:1", pull_policy: weekly}
  lit: {image: "lit:1", pull_policy: refresh}
  built: {image: "built:1", pull_policy: build, build: {context: .}}
  plain: {image: "plain:1"}
`;

test('up pulls an image whose last pull is older than its window, a missing one, and builds pull_policy: build every time', async () => {
  const now = Date.now();
  const { b, calls } = engine({ 'fresh:1': now - 2 * H, 'stale:1': now - 2 * D, 'hourly:1': now - 2 * H, 'lit:1': 0, 'built:1': now, 'plain:1': 0 });
  const p = project(YAML);
  const ids = await ensureImages(b, p, Object.keys(p.services), collectingReporter());
  assert.deepEqual(calls.sort(), ['build built:1', 'pull absent:1', 'pull hourly:1', 'pull stale:1']);
  assert.equal(ids.get('stale'), 'sha256:stale:1');
  // the pulls made the images fresh: a second up pulls nothing, and builds again
  calls.length = 0;
  await ensureImages(b, p, Object.keys(p.services), collectingReporter());
  assert.deepEqual(calls, ['build built:1']);
});

test('--pull replaces every policy; an unknown --pull is refused by up', async () => {
  const now = Date.now();
  const { b, calls } = engine({ 'fresh:1': now, 'stale:1': now, 'hourly:1': now, 'absent:1': now, 'lit:1': now, 'built:1': now, 'plain:1': now });
  const p = project(YAML);
  await ensureImages(b, p, Object.keys(p.services), collectingReporter(), { pull: 'always' });
  assert.equal(calls.filter((c) => c.startsWith('pull')).length, 7);
  calls.length = 0;
  await ensureImages(b, p, Object.keys(p.services), collectingReporter(), { pull: 'build' });
  assert.deepEqual(calls, ['build built:1']);
  calls.length = 0;
  await ensureImages(b, p, Object.keys(p.services), collectingReporter(), { pull: 'never' });
  assert.deepEqual(calls, []);
  const { up } = await import('./up.ts');
  await assert.rejects(up(b, p, collectingReporter(), { pull: 'sometimes' }), /invalid --pull option "sometimes"/);
});

test('compose pull: an unset policy always pulls; never and build do not; missing skips a present image unless it is latest', async () => {
  const { pullWanted } = await import('./images.ts');
  const { b } = engine({ 'here:1': 0, 'here:latest': 0, here: 0 });
  const p = project(`services:
  unset: {image: "here:1"}
  always: {image: "here:1", pull_policy: always}
  never: {image: "absent:1", pull_policy: never}
  built: {image: "absent:1", pull_policy: build, build: {context: .}}
  present: {image: "here:1", pull_policy: missing}
  absent: {image: "absent:1", pull_policy: if_not_present}
  latest: {image: "here", pull_policy: missing}
  daily: {image: "here:1", pull_policy: daily}
`);
  const got: Record<string, unknown> = {};
  for (const [n, s] of Object.entries(p.services)) got[n] = await pullWanted(b, s);
  assert.deepEqual(got, {
    unset: { pull: true },
    always: { pull: true },
    never: { pull: false },
    built: { pull: false },
    present: { pull: false, skipped: 'Image is already present locally' },
    absent: { pull: true },
    latest: { pull: true },
    daily: { pull: true },
  });
});
