import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Command } from 'commander';
import { buildProgram, commandName } from './main.ts';

/** Every command path under c with its help text. */
function helps(c: Command, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of c.commands) {
    const p = `${prefix}${s.name()} `;
    out.set(p, s.helpInformation());
    for (const [k, v] of helps(s, p)) out.set(k, v);
  }
  return out;
}

describe('lazy command loading', () => {
  test('with only one command loaded, that command and the top-level help are the same as with every module', async () => {
    const eager = await buildProgram();
    const all = helps(eager);
    assert.equal((await buildProgram([])).helpInformation(), eager.helpInformation());
    for (const c of eager.commands) {
      const lazy = await buildProgram([c.name()]);
      assert.equal(lazy.helpInformation(), eager.helpInformation(), c.name());
      const one = lazy.commands.find((l) => l.name() === c.name())!;
      const mine = helps(one, `${c.name()} `);
      mine.set(`${c.name()} `, one.helpInformation());
      for (const [path, text] of mine) assert.equal(text, all.get(path), path);
      for (const path of all.keys()) if (path.startsWith(`${c.name()} `)) assert.ok(mine.has(path), `${path}is not loaded with ${c.name()}`);
    }
  });

  test('commandName finds the command after the global options, or after help', () => {
    assert.equal(commandName([]), undefined);
    assert.equal(commandName(['--version']), undefined);
    assert.equal(commandName(['run', '--rm', 'x']), 'run');
    assert.equal(commandName(['-H', 'unix:///s', '-l', 'debug', 'ps', '-a']), 'ps');
    assert.equal(commandName(['--host', '/s', '--log-level', 'info', 'images']), 'images');
    assert.equal(commandName(['--host=/s', '-Hx', '-ldebug', 'images']), 'images');
    assert.equal(commandName(['help', 'container', 'ls']), 'container');
    assert.equal(commandName(['--', 'ps']), 'ps');
  });
});
