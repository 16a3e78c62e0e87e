/**
 * `COPY/ADD --chmod`: an octal mode, or chmod(1) symbolic clauses as BuildKit
 * accepts them (`u+x,go-w`, `a=r`, `u=rwX`, `g=u`), applied to each copied
 * entry's own mode (no umask: a clause without who means all).
 */
import { invalid } from '../common/errors.ts';

/** The mode an entry gets from its source mode. */
export type ModeFn = (mode: number, isDir: boolean) => number;

const CLAUSE = /^([ugoa]*)((?:[-+=](?:[rwxXst]*|[ugo]))+)$/;

export function parseChmod(v: string | undefined): ModeFn | undefined {
  if (v === undefined || v === '') return undefined;
  if (/^[0-7]{1,4}$/.test(v)) {
    const m = parseInt(v, 8);
    return () => m;
  }
  const clauses = v.split(',').map((c) => {
    const m = CLAUSE.exec(c);
    if (!m) throw invalid(`invalid chmod parameter: '${v}'`);
    return { who: m[1]!, ops: [...m[2]!.matchAll(/([-+=])([ugo]|[rwxXst]*)/g)].map((x) => ({ op: x[1]!, perms: x[2]! })) };
  });
  return (mode, isDir) => {
    let cur = mode & 0o7777;
    for (const { who, ops } of clauses) {
      const all = who === '' || who.includes('a');
      const mask = (all || who.includes('u') ? 0o4700 : 0) | (all || who.includes('g') ? 0o2070 : 0) | (all || who.includes('o') ? 0o1007 : 0);
      for (const { op, perms } of ops) {
        let bits = 0;
        if (perms === 'u' || perms === 'g' || perms === 'o') {
          const shift = perms === 'u' ? 6 : perms === 'g' ? 3 : 0;
          bits = ((cur >> shift) & 7) * 0o111;
        } else {
          for (const p of perms) {
            if (p === 'r') bits |= 0o444;
            else if (p === 'w') bits |= 0o222;
            else if (p === 'x') bits |= 0o111;
            else if (p === 'X' && (isDir || (cur & 0o111) !== 0)) bits |= 0o111;
            else if (p === 's') bits |= 0o6000;
            else if (p === 't') bits |= 0o1000;
          }
        }
        bits &= mask;
        if (op === '+') cur |= bits;
        else if (op === '-') cur &= ~bits;
        else cur = (cur & ~mask) | bits;
      }
    }
    return cur;
  };
}
