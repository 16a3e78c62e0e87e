/**
 * Warm pools: N clones of a stopped source container kept started and ready
 * (health check passed, published port answering, a log line seen, or just
 * running), so `take` hands one over at once and a fresh clone is made in
 * the background to refill the pool.
 *
 * A pool is a record at <data-root>/pools/<name>.json (written atomically).
 * Its members are containers labelled keel.pool=<name>; `take` turns the
 * label into keel.pool.taken=<name> in the container's record (one atomic
 * write), after which it is an ordinary container. After a daemon restart the
 * members are found again by their label and watched until ready; members
 * that stopped are removed and replaced.
 */
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { crashPoint } from '../common/crashpoint.ts';
import { EngineError, invalid, notFound } from '../common/errors.ts';
import { mkdirp, readJsonIfExists, writeJsonAtomic } from '../common/fs.ts';
import { NAME_PATTERN } from '../common/ids.ts';
import { log } from '../common/log.ts';
import { Phases } from '../common/phases.ts';
import type { PortInfo } from '../containers/network.ts';
import type { ContainerRecord } from '../containers/types.ts';
import type { Engine } from './engine.ts';

export const POOL_LABEL = 'keel.pool';
export const TAKEN_LABEL = 'keel.pool.taken';
export const MAX_POOL_SIZE = 256;

export interface PoolRecord {
  name: string;
  /** The source container's ID. */
  source: string;
  /** Its name when the pool was made (for messages once it is gone). */
  sourceName?: string;
  size: number;
  /** health | port | log:TEXT | running */
  ready: string;
  created: string;
}

export interface PoolStatus extends PoolRecord {
  sourceName: string;
  readyCount: number;
  starting: number;
  /** The last refill error, until a refill succeeds. */
  error?: string;
}

export interface TakenContainer {
  id: string;
  name: string;
  /** NetworkSettings.Ports of the container: "80/tcp" → host bindings. */
  ports: Record<string, { HostIp: string; HostPort: string }[] | null>;
  /** Milliseconds the take waited. */
  waitedMs: number;
}

interface PoolState {
  rec: PoolRecord;
  ready: string[];
  starting: Set<string>;
  error?: string;
  stop: AbortController;
  wake?: () => void;
  /** Resolvers of takes waiting for a ready member. */
  waiters: (() => void)[];
  loop?: Promise<void>;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

export function parseReady(v: string | undefined, src: ContainerRecord): string {
  if (!v) {
    if (src.config.Healthcheck?.Test?.length && src.config.Healthcheck.Test[0] !== 'NONE') return 'health';
    const pb = src.hostConfig.PortBindings as Record<string, unknown[]> | undefined;
    return pb && Object.keys(pb).length ? 'port' : 'running';
  }
  if (v === 'health' || v === 'port' || v === 'running') return v;
  if (v.startsWith('log:') && v.length > 4 && v.length <= 1024) return v;
  throw invalid(`invalid --ready "${v.slice(0, 100)}": use health, port, log:TEXT or running`);
}

export class PoolManager {
  private readonly dir: string;
  private readonly pools = new Map<string, PoolState>();
  private readonly engine: Engine;
  /**
   * Fresh members being made and brought up, across all pools, and the most at once: one per CPU.
   * Taking a whole pool at once would otherwise start as many databases as it held, side by side,
   * all competing with the tests that took the members for the CPU; more starts at once than CPUs
   * do not fill the pool sooner. Members a daemon restart found starting count too (they come up
   * at once, as they were made before it: new clones wait for them).
   */
  private refilling = 0;
  private readonly maxRefilling = Math.max(1, os.availableParallelism());

  constructor(engine: Engine) {
    this.engine = engine;
    this.dir = path.join(engine.dataRoot, 'pools');
  }

  /** After the engine reconciled its containers: pools come back, members are found by label. */
  async init(): Promise<void> {
    await mkdirp(this.dir, 0o700);
    const members = new Map<string, ContainerRecord[]>();
    for (const c of this.engine.containers.store.list()) {
      const p = c.config.Labels[POOL_LABEL];
      if (p) members.set(p, [...(members.get(p) ?? []), c]);
    }
    for (const f of await fsp.readdir(this.dir)) {
      if (!f.endsWith('.json')) continue;
      const rec = await readJsonIfExists<PoolRecord>(path.join(this.dir, f)).catch(() => undefined);
      if (!rec || `${rec.name}.json` !== f) continue;
      const st = this.track(rec);
      for (const c of members.get(rec.name) ?? []) st.starting.add(c.id);
      members.delete(rec.name);
      this.run(st);
    }
    // Members of pools that are gone (removed while a clone was being made, then a crash).
    for (const list of members.values()) for (const c of list) await this.engine.removeContainer(c.id, { force: true, volumes: true }).catch(() => {});
  }

  close(): void {
    for (const st of this.pools.values()) st.stop.abort();
  }

  private track(rec: PoolRecord): PoolState {
    const st: PoolState = { rec, ready: [], starting: new Set(), stop: new AbortController(), waiters: [] };
    this.pools.set(rec.name, st);
    return st;
  }

  private get(name: string): PoolState {
    const st = this.pools.get(name);
    if (!st) throw notFound(`no such pool: ${name}`);
    return st;
  }

  async create(o: { name: string; from: string; size: number; ready?: string }): Promise<PoolStatus> {
    if (typeof o.name !== 'string' || !NAME_PATTERN.test(o.name) || o.name.length > 64)
      throw invalid(`invalid pool name "${String(o.name).slice(0, 100)}": use [a-zA-Z0-9][a-zA-Z0-9_.-], at most 64 characters`);
    if (!Number.isInteger(o.size) || o.size < 1 || o.size > MAX_POOL_SIZE)
      throw invalid(`invalid pool size ${o.size}: a pool keeps 1 to ${MAX_POOL_SIZE} containers ready`);
    if (this.pools.has(o.name)) throw new EngineError('CONFLICT', `pool ${o.name} already exists`);
    const src = this.engine.container(o.from);
    const rec: PoolRecord = {
      name: o.name,
      source: src.id,
      sourceName: src.name,
      size: o.size,
      ready: parseReady(o.ready, src),
      created: new Date().toISOString(),
    };
    await writeJsonAtomic(path.join(this.dir, `${o.name}.json`), rec);
    this.run(this.track(rec));
    return this.status(this.pools.get(o.name)!);
  }

  list(): PoolStatus[] {
    return [...this.pools.values()].map((st) => this.status(st));
  }

  inspect(name: string): PoolStatus {
    return this.status(this.get(name));
  }

  private status(st: PoolState): PoolStatus {
    const srcName = this.engine.containers.store.get(st.rec.source)?.name ?? st.rec.sourceName ?? '';
    return { ...st.rec, sourceName: srcName, readyCount: st.ready.length, starting: st.starting.size, ...(st.error ? { error: st.error } : {}) };
  }

  async remove(name: string): Promise<void> {
    const st = this.get(name);
    this.pools.delete(name);
    // Members as they are now: a member being started leaves `starting` once the abort reaches it.
    const members = new Set([...st.ready, ...st.starting]);
    st.stop.abort();
    for (const w of st.waiters.splice(0)) w();
    await fsp.rm(path.join(this.dir, `${name}.json`), { force: true });
    // the refill loop was aborted just above: its end, not its error, is awaited
    await st.loop?.catch(() => {});
    for (const id of [...st.ready, ...st.starting]) members.add(id);
    for (const id of members) await this.engine.removeContainer(id, { force: true, volumes: true }).catch(() => {}); // gone meanwhile
  }

  /** Hands over a ready member (waiting up to timeoutMs for one); the pool refills in the background. */
  async take(name: string, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TakenContainer> {
    const t0 = performance.now();
    const timeoutMs = Math.min(Math.max(o.timeoutMs ?? 60_000, 0), 3_600_000);
    const st = this.get(name);
    for (;;) {
      const id = st.ready.shift();
      if (id) {
        const c = this.engine.containers.store.get(id);
        if (!c) continue; // removed by someone meanwhile
        if (c.state.Status !== 'running') {
          // It stopped while it waited in the pool: not what a taker expects; replace it.
          void this.engine.removeContainer(id, { force: true, volumes: true }).catch(() => {}); // removed meanwhile
          st.wake?.();
          continue;
        }
        delete c.config.Labels[POOL_LABEL];
        c.config.Labels[TAKEN_LABEL] = name;
        // The least before the answer: the record is renamed into place without fsync, which a daemon
        // kill -9 cannot undo (the page cache stays), so a restarted daemon never puts it back in the pool.
        // Only a power failure can lose it, and that also ends the test that took it: the member is
        // started again in its pool, harmless. The durable write and the refill follow the answer.
        const store = this.engine.containers.store;
        const ph = new Phases();
        await store.save(c, { durable: false });
        ph.mark('saveMs');
        setImmediate(() => {
          crashPoint('pool-taken'); // after the answer went out
          store.save(c).catch((e) => log.warn('cannot write a taken container record', { id, error: String(e) }));
          st.wake?.();
        });
        const ports = publishedPorts(this.engine.inspectContainer(id).ports);
        const waitedMs = Math.round(performance.now() - t0);
        ph.log('pool take', { pool: name, id: id.slice(0, 12), waitedMs });
        return { id, name: c.name, ports, waitedMs };
      }
      if (this.pools.get(name) !== st) throw notFound(`pool ${name} was removed`);
      const left = timeoutMs - (performance.now() - t0);
      if (left <= 0) {
        throw new EngineError(
          'TIMEOUT',
          `pool ${name} had no ready container within ${Math.round(timeoutMs / 1000)}s (size ${st.rec.size}, ${st.starting.size} starting${st.error ? `; last error: ${st.error}` : ''})`,
        );
      }
      o.signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          o.signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, left);
        o.signal?.addEventListener('abort', done, { once: true });
        st.waiters.push(done);
      });
    }
  }

  /** The refill loop: keeps size members ready, one clone at a time; watches members found at start. */
  private run(st: PoolState): void {
    const signal = st.stop.signal;
    st.loop = (async () => {
      for (const id of [...st.starting]) {
        this.refilling++;
        void this.bringUp(st, id, false).finally(() => this.refillDone());
      }
      let backoff = 250;
      while (!signal.aborted) {
        if (st.ready.length + st.starting.size >= st.rec.size || this.refilling >= this.maxRefilling) {
          await new Promise<void>((resolve) => {
            const done = () => {
              signal.removeEventListener('abort', done);
              resolve();
            };
            st.wake = done;
            signal.addEventListener('abort', done, { once: true });
          });
          continue;
        }
        this.refilling++;
        try {
          const { clones } = await this.engine.cloneContainer(st.rec.source, { labels: { [POOL_LABEL]: st.rec.name }, signal });
          const id = clones[0]!.id;
          st.starting.add(id);
          if (signal.aborted) {
            this.refillDone();
            break; // remove() takes it from `starting`
          }
          // Cloning holds the source's lock; starting and readiness run beside the next clone.
          void this.bringUp(st, id, true).finally(() => this.refillDone());
          backoff = 250;
        } catch (e) {
          this.refillDone();
          if (signal.aborted) break;
          st.error = this.engine.containers.store.get(st.rec.source)
            ? (e as Error).message
            : `the pool's source container ${st.rec.sourceName ?? st.rec.source.slice(0, 12)} was removed: the pool cannot refill (its members already made can still be taken; keel pool rm ${st.rec.name})`;
          log.warn('pool refill failed', { pool: st.rec.name, error: st.error });
          await sleep(backoff, signal);
          backoff = Math.min(backoff * 2, 10_000);
        }
      }
    })();
  }

  /** A member being brought up is ready or gone: the next refill, of whichever pool, may start. */
  private refillDone(): void {
    this.refilling--;
    for (const p of this.pools.values()) p.wake?.();
  }

  private async bringUp(st: PoolState, id: string, fresh: boolean): Promise<void> {
    const signal = st.stop.signal;
    try {
      const c = this.engine.containers.store.get(id);
      if (!c) throw notFound(`pool member ${id} is gone`);
      if (fresh || c.state.Status !== 'running') await this.engine.startContainer(id);
      await this.waitReady(st.rec.ready, id, signal);
      st.starting.delete(id);
      if (signal.aborted) return;
      st.ready.push(id);
      st.error = undefined;
      for (const w of st.waiters.splice(0)) w();
    } catch (e) {
      st.starting.delete(id);
      if (signal.aborted) return;
      st.error = `member ${id.slice(0, 12)}: ${(e as Error).message}`;
      log.warn('pool member failed to become ready', { pool: st.rec.name, id, error: st.error });
      // a failed member is removed best effort: the pool's error (set above) says what went wrong
      await this.engine.removeContainer(id, { force: true, volumes: true }).catch(() => {});
      st.wake?.();
    }
  }

  private async waitReady(ready: string, id: string, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + 10 * 60_000;
    while (Date.now() < deadline) {
      if (signal.aborted) return;
      const c = this.engine.containers.store.get(id);
      if (!c || (c.state.Status !== 'running' && c.state.Status !== 'paused'))
        throw new EngineError('CONFLICT', `it stopped (exit code ${c?.state.ExitCode ?? '?'}) before it was ready`);
      if (ready === 'running') return;
      if (ready === 'health') {
        const h = c.state.Health?.Status;
        if (h === 'healthy') return;
        if (!c.config.Healthcheck) throw invalid('--ready health needs a container with a health check');
      } else if (ready === 'port') {
        if (await this.portAnswers(id)) return;
      } else if (ready.startsWith('log:')) {
        const text = ready.slice(4);
        // Followed, not read again every turn: the follower wakes at each write (inotify), so a pool
        // refilling many members at once does not re-read every member's whole log 50 times a second
        // (that load slowed the takes it runs beside). The stream ends when the container stops.
        const until = AbortSignal.any([signal, AbortSignal.timeout(Math.max(deadline - Date.now(), 1))]);
        for await (const e of this.engine.containerLogs(id, { stdout: true, stderr: true, follow: true, signal: until })) {
          if (e.line.toString().includes(text)) return;
        }
      }
      await sleep(20, signal);
    }
    throw new EngineError('TIMEOUT', `not ready (${ready}) after 10 minutes`);
  }

  private async portAnswers(id: string): Promise<boolean> {
    const view = this.engine.inspectContainer(id);
    const first = (view.ports ?? []).find((p) => p.HostPort);
    if (!first) throw invalid('--ready port needs a container with a published port');
    const host = !first.HostIp || first.HostIp === '0.0.0.0' || first.HostIp === '::' ? '127.0.0.1' : first.HostIp;
    if (await this.connects(host, first.HostPort)) return true;
    // No hairpin to the host port on this host: the container's own address and port say the same.
    const ip = Object.values(view.networks)
      .map((n) => n.endpoint?.IPAddress)
      .find((a) => a);
    return !!ip && this.connects(ip, first.ContainerPort);
  }

  private connects(host: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const s = net.connect({ host, port });
      const done = (ok: boolean) => {
        s.destroy();
        resolve(ok);
      };
      s.setTimeout(1000, () => done(false));
      s.once('connect', () => done(true));
      s.once('error', () => done(false));
    });
  }
}

/** The published ports in docker's NetworkSettings.Ports shape ("80/tcp" → host bindings), as `take` prints them. */
function publishedPorts(ports: PortInfo[] = []): TakenContainer['ports'] {
  const out: TakenContainer['ports'] = {};
  for (const p of ports) if (p.HostPort) (out[`${p.ContainerPort}/${p.Proto}`] ??= [])!.push({ HostIp: p.HostIp, HostPort: String(p.HostPort) });
  return out;
}
