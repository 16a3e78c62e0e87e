/**
 * A mount of the OCI runtime spec (config.json's `mounts`), and the two
 * kinds docker makes for containers. Here, below runtime/ and volumes/,
 * because both build them: volumes/ for binds and tmpfs, runtime/ for the
 * rest of the spec.
 */
export interface Mount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

/** A bind mount as docker makes one: recursive, private, optionally read-only. */
export function bindMount(source: string, destination: string, o: { readonly?: boolean; propagation?: string; recursive?: boolean } = {}): Mount {
  const options = [o.recursive === false ? 'bind' : 'rbind', o.propagation ?? 'rprivate'];
  if (o.readonly) options.push('ro');
  return { destination, type: 'bind', source, options };
}

/** A tmpfs mount (`--tmpfs /run:size=64m,mode=1777`). */
export function tmpfsMount(destination: string, o: { size?: number; mode?: number; options?: string[] } = {}): Mount {
  const options = ['nosuid', 'nodev', 'noexec'];
  if (o.size) options.push(`size=${o.size}`);
  if (o.mode !== undefined) options.push(`mode=${o.mode.toString(8)}`);
  for (const x of o.options ?? []) if (!options.includes(x)) options.push(x);
  // An explicit exec/suid/dev option overrides the safe default.
  const filtered = options.filter((x) => !(['noexec', 'nosuid', 'nodev'].includes(x) && options.includes(x.slice(2))));
  return { destination, type: 'tmpfs', source: 'tmpfs', options: filtered };
}
