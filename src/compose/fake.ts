/**
 * An engine in memory for compose's unit tests: enough of ComposeBackend
 * for convergence, with every call recorded. Volume mounts are listed as
 * an engine lists them (anonymous ones named anon-N, an image's VOLUMEs
 * from imageVolumes), so inheritance on recreate can be seen.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { EngineError } from '../common/errors.ts';
import { loadProject } from './load.ts';
import type { Project } from './types.ts';
import type { ComposeBackend, ContainerDetails, ContainerSpec, ContainerSummary, NetworkSummary, VolumeSummary } from './backend.ts';

let root: string | undefined;

/**
 * The project of a compose.yaml with this text (and other files beside it), loaded as `keel compose` loads
 * one, with no environment but `env`. Each call rewrites the same project directory ("app"), which is
 * removed when the test file ends.
 */
export function projectOf(yaml: string, o: { env?: Record<string, string>; files?: Record<string, string> } = {}): Project {
  if (!root) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-test-'));
    root = dir;
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
  }
  const d = path.join(root, 'app');
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'compose.yaml'), yaml);
  for (const [name, text] of Object.entries(o.files ?? {})) fs.writeFileSync(path.join(d, name), text);
  return loadProject({ cwd: d, env: o.env ?? {}, onWarning: () => {} });
}

export class FakeEngine {
  containers = new Map<string, ContainerSummary & { spec: ContainerSpec; health?: ContainerDetails['health'] }>();
  networks = new Map<string, NetworkSummary>();
  volumes = new Map<string, VolumeSummary>();
  images = new Map<string, string>([['busybox', 'sha256:bb1']]);
  /** What an exec without a terminal (execOutput: hooks) answers, by its command joined with spaces; exit 0 and no output otherwise. */
  execResults = new Map<string, { exitCode: number; stdout: string; stderr: string }>();
  /** The VOLUME paths of images, by name. */
  imageVolumes = new Map<string, string[]>();
  private anon = 0;
  calls: string[] = [];
  private n = 0;

  find(id: string) {
    const c = this.containers.get(id) ?? [...this.containers.values()].find((x) => x.name === id);
    if (!c) throw new EngineError('NOT_FOUND', `no such container ${id}`);
    return c;
  }

  backend(): ComposeBackend {
    const match = (labels: Record<string, string>, want: string[]) =>
      want.every((w) => {
        const [k, v] = w.split('=');
        return v === undefined ? k! in labels : labels[k!] === v;
      });
    const self = this;
    const unsupported = () => Promise.reject(new EngineError('UNAVAILABLE', 'not in the fake'));
    return {
      listContainers: async (labels) =>
        [...this.containers.values()].filter((c) => match(c.labels, labels)).map(({ spec: _s, health: _h, ...c }) => ({ ...c })),
      inspectContainer: async (id) => {
        const c = this.find(id);
        return { ...c, running: c.state === 'running', exitCode: 0, health: c.health, tty: false, networks: {} };
      },
      createContainer: async (spec) => {
        if ([...this.containers.values()].some((c) => c.name === spec.name)) throw new EngineError('CONFLICT', `name ${spec.name} in use`);
        const id = `c${++this.n}`.padEnd(64, '0');
        this.calls.push(`create ${spec.name}`);
        const mounts = (spec.host.Mounts ?? [])
          .filter((m) => m.Type === 'volume')
          .map((m) => ({ name: m.Source ?? `anon-${++this.anon}`, destination: m.Target, rw: !m.ReadOnly }));
        for (const v of this.imageVolumes.get(spec.image) ?? [])
          if (!mounts.some((m) => m.destination === v)) mounts.push({ name: `anon-${++this.anon}`, destination: v, rw: true });
        this.containers.set(id, {
          id,
          name: spec.name,
          image: spec.image,
          imageId: this.images.get(spec.image) ?? '',
          command: '',
          created: 0,
          state: 'created',
          status: '',
          labels: spec.labels,
          ports: [],
          mounts,
          spec,
          health: spec.healthcheck ? 'healthy' : undefined,
        });
        return id;
      },
      connectNetwork: async (net, id) => void this.calls.push(`connect ${net} ${this.find(id).name}`),
      startContainer: async (id) => {
        this.calls.push(`start ${this.find(id).name}`);
        this.find(id).state = 'running';
      },
      stopContainer: async (id) => {
        this.calls.push(`stop ${this.find(id).name}`);
        this.find(id).state = 'exited';
      },
      restartContainer: async (id) => void this.calls.push(`restart ${this.find(id).name}`),
      killContainer: async () => {},
      pauseContainer: async () => {},
      unpauseContainer: async () => {},
      removeContainer: async (id) => {
        this.calls.push(`remove ${this.find(id).name}`);
        this.containers.delete(this.find(id).id);
      },
      renameContainer: async (id, name) => void (this.find(id).name = name),
      waitContainer: async () => 0,
      logs: async function* () {},
      top: async () => ({ titles: [], processes: [] }),
      exec: unsupported,
      execOutput: async (id, spec, _limit, onOutput) => {
        const c = this.find(id);
        if (c.state !== 'running') throw new EngineError('CONFLICT', `container ${c.name} is not running`);
        this.calls.push(`exec ${c.name} ${spec.cmd.join(' ')}${spec.user ? ` user=${spec.user}` : ''}${spec.env?.length ? ` env=${spec.env.join(',')}` : ''}`);
        const res = this.execResults.get(spec.cmd.join(' ')) ?? { exitCode: 0, stdout: '', stderr: '' };
        onOutput?.(Buffer.from(res.stdout), 1);
        onOutput?.(Buffer.from(res.stderr), 2);
        return res;
      },
      copyToContainer: unsupported,
      runAttached: unsupported,
      listNetworks: async (labels) => [...this.networks.values()].filter((n) => match(n.labels, labels)),
      inspectNetwork: async (name) => this.networks.get(name),
      createNetwork: async (s) => {
        this.calls.push(`network ${s.name}`);
        this.networks.set(s.name, { id: s.name, name: s.name, driver: 'bridge', labels: s.labels });
        return s.name;
      },
      removeNetwork: async (id) => void this.networks.delete(id),
      listVolumes: async (labels) => [...this.volumes.values()].filter((v) => match(v.labels, labels)),
      inspectVolume: async (name) => this.volumes.get(name),
      createVolume: async (s) => void this.volumes.set(s.name, { name: s.name, driver: 'local', labels: s.labels }),
      removeVolume: async (name) => {
        if ([...this.containers.values()].some((c) => c.mounts?.some((m) => m.name === name))) throw new EngineError('CONFLICT', `volume ${name} is in use`);
        this.calls.push(`remove volume ${name}`);
        this.volumes.delete(name);
      },
      inspectImage: async (ref) =>
        this.images.has(ref) ? { id: this.images.get(ref)!, repoTags: [ref], size: 1, created: 0, volumes: this.imageVolumes.get(ref) ?? [] } : undefined,
      pullImage: async (ref, _progress, _signal, platform) => {
        self.calls.push(platform ? `pull ${ref} ${platform}` : `pull ${ref}`);
        self.images.set(ref, `sha256:${ref}`);
      },
      pushImage: unsupported,
      removeImage: async (ref) => void this.images.delete(ref),
      events: async function* () {},
      build: async (spec) => {
        self.calls.push(`build ${spec.tags[0]}`);
        self.images.set(spec.tags[0]!, 'sha256:built');
        return 'sha256:built';
      },
    };
  }

  names(): string[] {
    return [...this.containers.values()].map((c) => `${c.name}:${c.state}`).sort();
  }
}
