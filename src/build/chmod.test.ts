import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseChmod } from './chmod.ts';

test('--chmod: octal and chmod(1) symbolic modes', () => {
  const m = (v: string, mode: number, dir = false) => parseChmod(v)!(mode, dir).toString(8);
  assert.equal(m('0755', 0o600), '755');
  assert.equal(m('640', 0o777), '640');
  assert.equal(m('u+x,go-w', 0o666), '744');
  assert.equal(m('a=r', 0o755), '444');
  assert.equal(m('=r', 0o755), '444');
  assert.equal(m('u=rwX,go=rX', 0o600), '644');
  assert.equal(m('u=rwX,go=rX', 0o700), '755');
  assert.equal(m('u=rwX,go=rX', 0o600, true), '755');
  assert.equal(m('g=u', 0o640), '660');
  assert.equal(m('u+s,+t', 0o755), '5755');
  assert.equal(m('o+rw-w', 0o640), '644');
  assert.equal(parseChmod(undefined), undefined);
  assert.throws(() => parseChmod('rwx'), /invalid chmod parameter/);
});
