/**
 * Docker's logging drivers, as keel keeps them.
 *
 * Storage: conmon writes every container's log (it holds the container's
 * stdio and outlives the daemon, so it is the only writer that sees all
 * output); its format is k8s-file, which keeps stdout/stderr and
 * nanosecond timestamps apart as docker's json-file does. The file format
 * is k8s-file whatever the driver, and keel does not pretend otherwise:
 * - conmon (2.1.6 here, and its current source) writes only k8s-file,
 *   journald, passthrough or none (src/ctr_logging.c); passthrough hands
 *   the container conmon's own stdio and then sets up no attach socket
 *   and no TTY (src/conmon.c), so it cannot carry docker's attach.
 * - Writing docker's JSON lines needs a writer in the output path: the
 *   daemon (then a container blocks once its pipe fills while the daemon
 *   is down, which is the live-restore stall docker has and keel's
 *   conmon-writes-the-log design avoids) or a second long-lived process
 *   per container (Node costs tens of MB each; no standard tool does it).
 * - So inspect reports the driver by docker's name (clients such as
 *   docker-py check it against docker's list) because its contract is
 *   honoured, and LogPath empty, as dockerd does for its `local` driver
 *   whose format is internal (moby container/container.go StartLogger: a path would make the
 *   file format an API); `docker logs` is the way to read it.
 *
 * The contracts:
 * - json-file (the default): unbounded unless max-size is given; max-size
 *   bounds each file (conmon --log-size-max rotates past it), max-file
 *   keeps that many files in all (logrotate.ts keeps the older ones),
 *   compress gzips the kept older files;
 * - local: the same, rotating by default (docker's defaults: 20 MB x 5 files,
 *   compressed);
 * - none: no log at all (conmon -l none); `docker logs` refuses, as docker does.
 * Any other driver or option is refused at create, with docker's words.
 */
import { invalid } from '../common/errors.ts';

export interface LogConfig {
  Type: string;
  Config: Record<string, string>;
}

/** What the runtime and the log reader act on. */
export interface LogPolicy {
  driver: 'json-file' | 'local' | 'none';
  /** Bytes per file; 0 = unbounded. */
  maxSize: number;
  /** Files in all, the live one included (>= 1). */
  maxFile: number;
  compress: boolean;
}

const KNOWN = ['json-file', 'local', 'none'];
const OTHER_DOCKER_DRIVERS = ['syslog', 'journald', 'gelf', 'fluentd', 'awslogs', 'splunk', 'etwlogs', 'gcplogs', 'logentries'];
const OPTS: Record<string, string[]> = {
  'json-file': ['max-size', 'max-file', 'compress', 'labels', 'labels-regex', 'env', 'env-regex', 'tag', 'mode', 'max-buffer-size'],
  local: ['max-size', 'max-file', 'compress', 'mode', 'max-buffer-size'],
  none: [],
};

/** go-units FromHumanSize (decimal units), as docker's json-file and local drivers parse max-size. */
export function parseHumanSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?(b)?$/i.exec(s.trim());
  if (!m) throw invalid(`invalid size: '${s}'`);
  const mult = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 }[(m[2] ?? '').toLowerCase()]!;
  return Math.floor(Number(m[1]) * mult);
}

/**
 * Checks a request's LogConfig and fills the default: the daemon's
 * (`daemonDefault`, from its log-driver/log-opts) or docker's json-file. As
 * in dockerd, the daemon's options apply to a container of the same driver,
 * under the container's own.
 */
export function normalizeLogConfig(lc: unknown, daemonDefault: LogConfig = { Type: 'json-file', Config: {} }): LogConfig {
  const src = (lc && typeof lc === 'object' ? lc : {}) as Partial<LogConfig>;
  // k8s-file (podman's name for conmon's format, which keel writes) is json-file's contract here.
  const asked = typeof src.Type === 'string' && src.Type ? src.Type : daemonDefault.Type;
  const type = asked === 'k8s-file' ? 'json-file' : asked;
  const config: Record<string, string> = {};
  if (type === daemonDefault.Type) Object.assign(config, daemonDefault.Config);
  for (const [k, v] of Object.entries(src.Config ?? {})) config[k] = String(v);
  if (!KNOWN.includes(type)) {
    if (OTHER_DOCKER_DRIVERS.includes(type)) throw invalid(`logging driver "${type}" is not supported by keel: use json-file, local or none`);
    throw invalid(`failed to create container: logger: no log driver named '${type}' is registered`);
  }
  for (const k of Object.keys(config)) {
    if (!OPTS[type]!.includes(k)) throw invalid(`unknown log opt '${k}' for ${type} log driver`);
  }
  if (type === 'none' && Object.keys(config).length) throw invalid('the none log driver takes no options');
  policyOf({ Type: type, Config: config }); // validates the values
  return { Type: type, Config: config };
}

/** The policy a (normalized) LogConfig asks for. */
export function policyOf(lc: LogConfig | undefined): LogPolicy {
  const type = (lc?.Type || 'json-file') as LogPolicy['driver'] | 'k8s-file';
  const c = lc?.Config ?? {};
  // Records written before drivers were honoured say k8s-file: that was an unbounded json-file.
  const driver: LogPolicy['driver'] = type === 'k8s-file' ? 'json-file' : type;
  if (driver === 'none') return { driver, maxSize: 0, maxFile: 1, compress: false };
  const local = driver === 'local';
  const maxSize = c['max-size'] !== undefined ? parseHumanSize(c['max-size']) : local ? 20e6 : 0;
  if (c['max-size'] !== undefined && maxSize <= 0) throw invalid(`invalid max-size ${c['max-size']}: it must be a positive size`);
  const maxFile = c['max-file'] !== undefined ? Number(c['max-file']) : local ? 5 : 1;
  if (!Number.isInteger(maxFile) || maxFile < 1) throw invalid('max-file cannot be less than 1');
  if (maxFile > 1 && !maxSize) throw invalid('max-file cannot be set without max-size');
  const compress = c.compress !== undefined ? ['1', 'true', 't', 'TRUE', 'True'].includes(c.compress) : local;
  if (c.compress !== undefined && !['1', '0', 'true', 'false', 't', 'f', 'TRUE', 'FALSE', 'True', 'False'].includes(c.compress))
    throw invalid(`invalid value for compress: ${c.compress}`);
  if (c.compress !== undefined && compress && maxFile < 2 && !local) throw invalid('compress cannot be true when max-file is less than 2');
  return { driver, maxSize, maxFile, compress };
}

/** The policy of a container (its HostConfig.LogConfig as stored). */
export function logPolicy(h: { [k: string]: unknown }): LogPolicy {
  return policyOf(h.LogConfig as LogConfig | undefined);
}

/** False for the none driver, which keeps no log to read. */
export function logsReadable(h: { [k: string]: unknown }): boolean {
  return logPolicy(h).driver !== 'none';
}

/** conmon's log options for a container: where its k8s-file goes and where it rotates. */
export function conmonLogOptions(h: { [k: string]: unknown }, logPath: string): { logPath?: string; logSizeMax?: number } {
  const p = logPolicy(h);
  if (p.driver === 'none') return {};
  return { logPath, ...(p.maxSize ? { logSizeMax: p.maxSize } : {}) };
}
