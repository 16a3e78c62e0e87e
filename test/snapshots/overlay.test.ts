/**
 * Integration tests (root): the overlay snapshotter's mounts, mounted for
 * real (the root-only half of src/snapshots/conformance.ts).
 */
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { Snapshotter } from '../../src/snapshots/overlay.ts';
import { snapshotterMountConformance } from '../../src/snapshots/conformance.ts';
import { requirePrerequisites } from '../helpers/prereqs.ts';

requirePrerequisites();

// A short root, like /var/lib/keel/overlay: the 80-layer case's options must fit one page.
const base = await fsp.mkdtemp(path.join(os.tmpdir(), 'ks-'));
after(() => fsp.rm(base, { recursive: true, force: true }));
let n = 0;

snapshotterMountConformance(
  'overlay',
  async () => new Snapshotter(path.join(base, `${n++}`)),
  async () => fsp.mkdtemp(path.join(base, 't-')),
);
