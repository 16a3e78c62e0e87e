import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../main.ts';
import { subcommandOf } from './compose.ts';

const composeOf = (p: Command) => p.commands.find((c) => c.name() === 'compose')!;

test("compose's own subcommands load without the other subcommands' modules, with the same help", async () => {
  const eager = composeOf(await buildProgram(['compose']));
  const names = eager.commands.map((c) => c.name());
  assert.ok(names.includes('exec') && names.includes('ps') && names.includes('watch'));
  for (const argv of [
    ['compose', 'up', '-d'],
    ['-H', 'unix:///s', 'compose', '-f', 'a.yaml', '-p', 'x', 'down', '-v'],
    ['compose', '--file=ps', '--profile', 'exec', 'config'],
  ]) {
    const lazy = composeOf(await buildProgram(['compose'], {}, argv));
    assert.ok(!lazy.commands.some((c) => c.name() === 'exec'), argv.join(' '));
    for (const c of lazy.commands) assert.equal(c.helpInformation(), eager.commands.find((e) => e.name() === c.name())!.helpInformation());
  }
  // anything else (another subcommand, help, a typo, an unknown option) has them all
  for (const argv of [
    ['compose', 'ps'],
    ['compose'],
    ['compose', '--help'],
    ['compose', 'help', 'up'],
    ['compose', 'upp'],
    ['compose', '--bad', 'up'],
    ['help', 'compose'],
  ]) {
    const lazy = composeOf(await buildProgram(['compose'], {}, argv));
    assert.deepEqual(
      lazy.commands.map((c) => c.name()),
      names,
      argv.join(' '),
    );
  }
});

test('subcommandOf reads past the values of compose options as commander does', async () => {
  const compose = composeOf(await buildProgram(['compose']));
  assert.equal(subcommandOf(compose, ['up']), 'up');
  assert.equal(subcommandOf(compose, ['-f', 'up', 'ps']), 'ps');
  assert.equal(subcommandOf(compose, ['-fup', 'ps']), 'ps');
  assert.equal(subcommandOf(compose, ['--file', 'x', '--file=y', '--project-name', 'p', '--env-file', 'e', 'logs', '-f']), 'logs');
  assert.equal(subcommandOf(compose, ['--', 'up']), 'up');
  assert.equal(subcommandOf(compose, ['--unknown', 'up']), undefined);
  assert.equal(subcommandOf(compose, ['-h']), undefined);
  assert.equal(subcommandOf(compose, []), undefined);
});
