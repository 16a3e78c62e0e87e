import { readJsonIfExists, writeJsonAtomic } from '../common/fs.ts';
import type { SandboxRecord } from './types.ts';

/**
 * Runtime state of the network layer (<exec-root>/network/state.json): the
 * sandboxes keel programmed and the networks whose bridge and rules exist.
 * It lives beside the kernel objects it describes, so a reboot clears both.
 */
interface StateFile {
  version: 1;
  /** Network ids whose bridge, rules and DNS server are set up. */
  active: string[];
  sandboxes: Record<string, SandboxRecord>;
}

export class RuntimeState {
  readonly file: string;
  active = new Set<string>();
  sandboxes = new Map<string, SandboxRecord>();

  constructor(file: string) {
    this.file = file;
  }

  async load(): Promise<void> {
    const s = await readJsonIfExists<StateFile>(this.file);
    if (!s || s.version !== 1) return;
    this.active = new Set(s.active ?? []);
    this.sandboxes = new Map(Object.entries(s.sandboxes ?? {}));
  }

  async save(): Promise<void> {
    const out: StateFile = { version: 1, active: [...this.active], sandboxes: Object.fromEntries(this.sandboxes) };
    await writeJsonAtomic(this.file, out);
  }

  /** Endpoints of one network across all sandboxes. */
  endpointsOf(networkId: string) {
    const out = [];
    for (const sb of this.sandboxes.values()) {
      const ep = sb.Endpoints[networkId];
      if (ep) out.push({ sandbox: sb, endpoint: ep });
    }
    return out;
  }
}
