/**
 * The nested structs of compose-go's ServiceConfig that the config hash
 * (hash.ts) writes: deploy, develop, gpus, blkio_config, lifecycle hooks.
 */
import { bool, bytes, command, duration, float32, goString, int, list, map, mapping, obj, str, strs, toMapping, type Tree } from './gojson.ts';
import { parseBytes } from './units.ts';

/** UpdateConfig: its delay and monitor are Duration values (omitempty drops zero). */
function update(u: Tree | undefined): string | undefined {
  return (
    u &&
    obj([
      ['parallelism', u.parallelism === undefined ? undefined : String(Number(u.parallelism))],
      ['delay', duration(u.delay, true)],
      ['failure_action', str(u.failure_action)],
      ['monitor', duration(u.monitor, true)],
      ['max_failure_ratio', float32(u.max_failure_ratio)],
      ['order', str(u.order)],
    ])
  );
}

function resource(r: Tree | undefined, where: string): string | undefined {
  if (!r) return undefined;
  // compose-go's default for a reservation's device: neither count nor device_ids means all
  const devices = (r.devices as Tree[] | undefined)?.map((d) =>
    deviceRequest(d.count === undefined && d.device_ids === undefined ? { ...d, count: 'all' } : d),
  );
  const generic = (r.generic_resources as Tree[] | undefined)?.map((g) => {
    const spec = g.discrete_resource_spec as Tree | undefined;
    return obj([
      [
        'discrete_resource_spec',
        spec &&
          obj([
            ['kind', goString(String(spec.kind ?? ''))],
            ['value', String(Number(spec.value ?? 0))],
          ]),
      ],
    ]);
  });
  return obj([
    ['cpus', float32(r.cpus)],
    ['memory', bytes(r.memory, `${where}.memory`)],
    ['pids', int(r.pids)],
    ['devices', list(devices, (x) => x)],
    ['generic_resources', list(generic, (x) => x)],
  ]);
}

/** DeployConfig without replicas; resources and placement are struct values, so always written. */
export function deploy(d: Tree, where: string): string {
  const res = (d.resources ?? {}) as Tree;
  const rp = d.restart_policy as Tree | undefined;
  const pl = (d.placement ?? {}) as Tree;
  return obj([
    ['mode', str(d.mode)],
    ['labels', mapping(toMapping(d.labels))],
    ['update_config', update(d.update_config as Tree | undefined)],
    ['rollback_config', update(d.rollback_config as Tree | undefined)],
    [
      'resources',
      obj([
        ['limits', resource(res.limits as Tree | undefined, `${where}.resources.limits`)],
        ['reservations', resource(res.reservations as Tree | undefined, `${where}.resources.reservations`)],
      ]),
    ],
    [
      'restart_policy',
      rp &&
        obj([
          ['condition', str(rp.condition)],
          ['delay', duration(rp.delay, false)],
          ['max_attempts', rp.max_attempts === undefined ? undefined : String(Number(rp.max_attempts))],
          ['window', duration(rp.window, false)],
        ]),
    ],
    [
      'placement',
      obj([
        ['constraints', strs(pl.constraints as unknown[] | undefined)],
        ['preferences', list(pl.preferences as Tree[] | undefined, (p) => obj([['spread', str(p.spread)]]))],
        ['max_replicas_per_node', int(pl.max_replicas_per_node)],
      ]),
    ],
    ['endpoint_mode', str(d.endpoint_mode)],
  ]);
}

/** develop.watch triggers; a trigger's `exec` is a struct value whose command has no omitempty. */
export function develop(d: Tree | undefined): string | undefined {
  if (!d) return undefined;
  const triggers = (d.watch as Tree[] | undefined)?.map((t) => {
    const e = (t.exec ?? {}) as Tree;
    const exec = obj([
      ['command', command(e.command as string[] | undefined)],
      ['image', str(e.image)],
      ['user', str(e.user)],
      ['privileged', bool(e.privileged)],
      ['working_dir', str(e.working_dir)],
      ['environment', map(toMapping(e.environment), (v) => (v === null ? 'null' : goString(String(v))))],
      ['per_replica', bool(e.per_replica)],
    ]);
    return obj([
      ['path', goString(String(t.path ?? ''))],
      ['action', goString(String(t.action ?? ''))],
      ['target', str(t.target)],
      ['exec', exec],
      ['include', strs(t.include as unknown[] | undefined)],
      ['ignore', strs(t.ignore as unknown[] | undefined)],
      ['initial_sync', bool(t.initial_sync)],
    ]);
  });
  return obj([['watch', list(triggers, (x) => x)]]);
}

/** A DeviceRequest (gpus, deploy devices); count "all" is -1. */
export function deviceRequest(d: Tree): string {
  return obj([
    ['capabilities', strs(d.capabilities as unknown[] | undefined)],
    ['driver', str(d.driver)],
    ['count', d.count === undefined ? undefined : String(d.count).toLowerCase() === 'all' ? '-1' : int(d.count)],
    ['device_ids', strs(d.device_ids as unknown[] | undefined)],
    ['options', mapping(toMapping(d.options))],
  ]);
}

/** BlkioConfig: its WeightDevice and ThrottleDevice have no json tags, so Go writes their field names, never omitted. */
export function blkio(b: Tree, where: string): string {
  const throttle = (k: string) =>
    list(b[k] as Tree[] | undefined, (d) => `{"Path":${goString(String(d.path ?? ''))},"Rate":"${parseBytes(d.rate ?? 0, `${where}.${k}`)}"}`);
  return obj([
    ['weight', int(b.weight)],
    ['weight_device', list(b.weight_device as Tree[] | undefined, (d) => `{"Path":${goString(String(d.path ?? ''))},"Weight":${Number(d.weight ?? 0)}}`)],
    ['device_read_bps', throttle('device_read_bps')],
    ['device_read_iops', throttle('device_read_iops')],
    ['device_write_bps', throttle('device_write_bps')],
    ['device_write_iops', throttle('device_write_iops')],
  ]);
}

/** ServiceHook: command has no omitempty. */
export function hook(h: Tree): string {
  return obj([
    ['command', command(h.command as string[] | undefined)],
    ['image', str(h.image)],
    ['user', str(h.user)],
    ['privileged', bool(h.privileged)],
    ['working_dir', str(h.working_dir)],
    ['environment', map(toMapping(h.environment), (v) => (v === null ? 'null' : goString(String(v))))],
    ['per_replica', bool(h.per_replica)],
  ]);
}
