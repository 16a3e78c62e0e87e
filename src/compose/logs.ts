/**
 * Container output as docker compose shows it: each line prefixed with
 * `<service>-<n>  | ` padded to the longest name, in a colour per container
 * when the output is a terminal. Followed streams run in parallel; lines
 * are written whole so two containers never interleave within a line.
 */
import type { ComposeBackend, ContainerSummary } from './backend.ts';
import * as L from './labels.ts';

const COLORS = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

/** `web-1` for `proj-web-1`; a fixed container_name stays as it is. */
export function shortName(c: ContainerSummary): string {
  const svc = c.labels[L.SERVICE];
  const n = c.labels[L.NUMBER];
  return svc && n && c.name === `${c.labels[L.PROJECT]}-${svc}-${n}` ? `${svc}-${n}` : c.name;
}

export class LogPrinter {
  private readonly out: NodeJS.WritableStream;
  private readonly color: boolean;
  private readonly prefix: boolean;
  private width = 0;
  private readonly colorOf = new Map<string, number>();

  constructor(out: NodeJS.WritableStream, o: { color: boolean; prefix: boolean }) {
    this.out = out;
    this.color = o.color;
    this.prefix = o.prefix;
  }

  register(names: string[]): void {
    for (const n of names) {
      this.width = Math.max(this.width, n.length);
      if (!this.colorOf.has(n)) this.colorOf.set(n, COLORS[this.colorOf.size % COLORS.length]!);
    }
  }

  private head(name: string): string {
    if (!this.prefix) return '';
    const p = `${name.padEnd(this.width)}  | `;
    return this.color ? `\x1b[${this.colorOf.get(name) ?? 0}m${p}\x1b[0m` : p;
  }

  line(name: string, text: string): void {
    this.out.write(`${this.head(name)}${text}\n`);
  }

  /** Streams one container's logs until they end (or signal aborts), line by line. */
  async follow(
    b: ComposeBackend,
    c: ContainerSummary,
    o: { follow?: boolean; tail?: string; timestamps?: boolean; since?: string },
    signal?: AbortSignal,
  ): Promise<void> {
    const name = shortName(c);
    this.register([name]);
    let partial = '';
    for await (const chunk of b.logs(c.id, o, signal)) {
      const text = partial + chunk.data.toString('utf8');
      const lines = text.split('\n');
      partial = lines.pop()!;
      for (const l of lines) this.line(name, l.replace(/\r$/, ''));
    }
    if (partial) this.line(name, partial);
  }
}
