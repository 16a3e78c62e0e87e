/**
 * Progress of a compose operation, one line per event, in docker compose's
 * plain-progress form (` Container p-web-1  Started`), written to stderr by
 * the front end. Tests collect the events instead.
 */
export interface Reporter {
  event(kind: 'Network' | 'Volume' | 'Container' | 'Image' | 'Service', name: string, status: string): void;
  /** A warning docker compose would print (orphans, obsolete keys). */
  warn(message: string): void;
}

export function streamReporter(out: NodeJS.WritableStream = process.stderr): Reporter {
  return {
    event: (kind, name, status) => void out.write(` ${kind} ${name}  ${status}\n`),
    warn: (m) => void out.write(`WARN[0000] ${m}\n`),
  };
}

export function collectingReporter(): Reporter & { events: string[]; warnings: string[] } {
  const events: string[] = [];
  const warnings: string[] = [];
  return { events, warnings, event: (k, n, s) => void events.push(`${k} ${n} ${s}`), warn: (m) => void warnings.push(m) };
}
