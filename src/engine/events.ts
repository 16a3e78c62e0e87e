import { EventEmitter } from 'node:events';

/** A docker event as `GET /events` streams it. */
export interface EngineEvent {
  status?: string;
  id?: string;
  from?: string;
  Type: 'container' | 'image' | 'network' | 'volume' | 'daemon' | 'builder';
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
}

export interface EventFilter {
  since?: number;
  until?: number;
  filters?: Record<string, string[]>;
}

const KEEP = 1000;

/**
 * The engine's event log: the last events kept in memory for `since`, and
 * live subscribers. Every state change of images, containers, networks and
 * volumes is published here.
 */
export class EventBus {
  private readonly recent: EngineEvent[] = [];
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  publish(type: EngineEvent['Type'], action: string, id: string, attributes: Record<string, string> = {}): EngineEvent {
    const nowNs = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
    const ev: EngineEvent = {
      ...(type === 'container' || type === 'image' ? { status: action, id, ...(attributes.image ? { from: attributes.image } : {}) } : {}),
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Number(nowNs / 1_000_000_000n),
      timeNano: Number(nowNs),
    };
    this.recent.push(ev);
    if (this.recent.length > KEEP) this.recent.shift();
    this.emitter.emit('event', ev);
    return ev;
  }

  /** Past events matching the filter (for `since`). */
  past(f: EventFilter): EngineEvent[] {
    return this.recent.filter((e) => matches(e, f));
  }

  subscribe(f: EventFilter, fn: (e: EngineEvent) => void): () => void {
    const h = (e: EngineEvent) => {
      if (matches(e, f)) fn(e);
    };
    this.emitter.on('event', h);
    return () => this.emitter.off('event', h);
  }
}

export function matches(e: EngineEvent, f: EventFilter): boolean {
  if (f.since !== undefined && e.timeNano < f.since * 1e9) return false;
  if (f.until !== undefined && e.timeNano > f.until * 1e9) return false;
  for (const [key, values] of Object.entries(f.filters ?? {})) {
    if (!values.length) continue;
    const ok = values.some((v) => {
      switch (key) {
        case 'type':
          return e.Type === v;
        case 'event':
          return e.Action === v || e.Action.startsWith(`${v}:`);
        case 'container':
        case 'image':
        case 'network':
        case 'volume':
          return e.Type === key && (e.Actor.ID.startsWith(v) || e.Actor.Attributes.name === v || (key === 'image' && e.Actor.Attributes.image === v));
        case 'label': {
          const [k, val] = v.split('=', 2) as [string, string?];
          return k in e.Actor.Attributes && (val === undefined || e.Actor.Attributes[k] === val);
        }
        case 'scope':
          return v === 'local';
        default:
          return true;
      }
    });
    if (!ok) return false;
  }
  return true;
}
