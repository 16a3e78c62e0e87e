import { invalid } from '../common/errors.ts';
import { readFileIn } from './scoped.ts';

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

const MAX_ID = 0x7fffffff;

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] ?? '' });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3) continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, gid, members: (f[3] ?? '').split(',').filter(Boolean) });
  }
  return out;
}

function numeric(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  if (n > MAX_ID) throw invalid(`uids and gids must be in range 0-${MAX_ID}: ${s}`);
  return n;
}

/**
 * Resolves docker's `user[:group]` against the image's /etc/passwd and
 * /etc/group, the way runc's libcontainer/user does: numeric ids need no
 * entry, names must exist, the primary group comes from passwd, extra
 * groups are those listing the user, plus `groupAdd`.
 */
export function resolveUser(spec: string, passwd: string | undefined, group: string | undefined, groupAdd: string[] = []): ResolvedUser {
  const users = passwd ? parsePasswd(passwd) : [];
  const groups = group ? parseGroup(group) : [];
  const [u = '', g] = (spec || '').split(':', 2) as [string, string | undefined];
  let uid = 0;
  let gid = 0;
  let home = '/';
  let name: string | undefined;
  if (u === '') {
    const root = users.find((e) => e.uid === 0);
    if (root) ((gid = root.gid), (home = root.home || '/'), (name = root.name));
  } else {
    const n = numeric(u);
    const entry = n !== undefined ? users.find((e) => e.uid === n) : users.find((e) => e.name === u);
    if (n === undefined && !entry) {
      throw invalid(`unable to find user ${u}: no matching entries in passwd file`);
    }
    uid = n ?? entry!.uid;
    if (entry) ((gid = entry.gid), (home = entry.home || '/'), (name = entry.name));
    else gid = 0;
  }
  if (g !== undefined && g !== '') {
    const n = numeric(g);
    if (n !== undefined) gid = n;
    else {
      const entry = groups.find((e) => e.name === g);
      if (!entry) throw invalid(`unable to find group ${g}: no matching entries in group file`);
      gid = entry.gid;
    }
  }
  const extra = new Set<number>();
  if (name !== undefined && (g === undefined || g === '')) for (const e of groups) if (e.members.includes(name) && e.gid !== gid) extra.add(e.gid);
  for (const a of groupAdd) {
    const n = numeric(a);
    if (n !== undefined) extra.add(n);
    else {
      const entry = groups.find((e) => e.name === a);
      if (!entry) throw invalid(`unable to find group ${a}: no matching entries in group file`);
      extra.add(entry.gid);
    }
  }
  if (uid > MAX_ID || gid > MAX_ID) throw invalid(`uids and gids must be in range 0-${MAX_ID}`);
  return { uid, gid, additionalGids: [...extra], home };
}

/** Reads passwd/group through the scoped resolver (never out of the rootfs) and resolves. */
export function resolveUserIn(rootfs: string, spec: string, groupAdd: string[] = []): ResolvedUser {
  // Read even for numeric ids: passwd gives the primary group and home.
  const passwd = readFileIn(rootfs, '/etc/passwd')?.toString('utf8');
  const group = readFileIn(rootfs, '/etc/group')?.toString('utf8');
  return resolveUser(spec, passwd, group, groupAdd);
}
