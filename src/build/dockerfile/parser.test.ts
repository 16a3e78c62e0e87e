import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDockerfile, parseInstruction } from './index.ts';

const invalid = (text: string, re: RegExp, file?: string) =>
  assert.throws(
    () => parseDockerfile(text, file ? { file } : {}),
    (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && re.test(e.message),
    text,
  );

test('directives: only at the top, case-insensitive, escape changes the continuation character', () => {
  let df = parseDockerfile('# syntax=docker/dockerfile:1.7\n# ESCAPE = `\n#check=skip=all\nFROM scratch\nRUN echo a `\n  b\n');
  assert.deepEqual(df.directives, { escape: '`', syntax: 'docker/dockerfile:1.7', check: 'skip=all' });
  assert.equal(df.stages[0]!.instructions[0]!.rest, 'echo a   b');
  // After a comment that is not a directive, `# escape=` is an ordinary comment.
  df = parseDockerfile('# hello\n# escape=`\nFROM scratch\nRUN a \\\n b\n');
  assert.equal(df.directives.escape, '\\');
  assert.equal(df.stages[0]!.instructions[0]!.rest, 'a  b');
  // A blank line ends them too.
  assert.equal(parseDockerfile('\n# escape=`\nFROM scratch\n').directives.escape, '\\');
  invalid('# escape=x\nFROM scratch\n', /^Dockerfile:1: invalid escape token 'x'/);
  invalid('# syntax=a\n# syntax=b\nFROM scratch\n', /only one syntax parser directive/);
});

test('continuations, comments and blank lines inside them, CRLF, BOM, leading whitespace', () => {
  const df = parseDockerfile('\ufeffFROM busybox\r\n   RUN echo one \\\r\n# a comment inside\r\n\r\n    two \\  \r\n  three\r\nRUN a \\\\\nRUN b\n');
  const [run1, run2, run3] = df.stages[0]!.instructions;
  assert.equal(run1!.rest, 'echo one     two   three');
  assert.deepEqual(run1!.loc, { line: 2, endLine: 6 });
  assert.equal(run2!.rest, 'a \\\\'); // a doubled escape does not continue
  assert.equal(run3!.rest, 'b');
  // Continued to the end of the file.
  assert.equal(parseDockerfile('FROM x\nRUN a \\').stages[0]!.instructions[0]!.rest, 'a');
});

test('stages, meta ARGs, AS names lower-cased, JSON forms', () => {
  const df = parseDockerfile('ARG A=1 B\nARG C\nFROM alpine AS Base\nRUN ["echo", "x"]\nCMD [ "bad json"\nFROM base\nFROM scratch as last\n');
  assert.equal(df.metaArgs.length, 2);
  assert.deepEqual(
    df.stages.map((s) => [s.index, s.name]),
    [
      [0, 'base'],
      [1, undefined],
      [2, 'last'],
    ],
  );
  const [run, cmd] = df.stages[0]!.instructions;
  assert.deepEqual(run!.json, ['echo', 'x']);
  assert.equal(cmd!.json, undefined); // invalid JSON falls back to the shell form
  assert.equal(cmd!.rest, '[ "bad json"');
  invalid('FROM a\nRUN ["a", 1]\n', /arrays must be comprised of strings only/);
});

test('flags are split off before the arguments, with quotes and --', () => {
  const df = parseDockerfile('FROM --platform=$BUILDPLATFORM alpine\nCOPY --from=base --chown="a b" --link src dst\nRUN -- --not-a-flag\n');
  assert.deepEqual(df.stages[0]!.from.flags, [{ name: 'platform', value: '$BUILDPLATFORM' }]);
  const [copy, run] = df.stages[0]!.instructions;
  assert.deepEqual(copy!.flags, [{ name: 'from', value: 'base' }, { name: 'chown', value: 'a b' }, { name: 'link' }]);
  assert.equal(copy!.rest, 'src dst');
  assert.deepEqual(run!.flags, []);
  assert.equal(run!.rest, '--not-a-flag');
});

test('heredocs: several on one line, <<- tab stripping kept for later, quoted delimiters, line numbers', () => {
  const text = [
    'FROM busybox',
    'RUN <<EOF',
    'echo $HOME',
    'EOF',
    'COPY <<-"A" <<B /dst/',
    '\tone',
    '\tA',
    'two',
    'B',
    'RUN cat <<X > /f && echo done',
    'x',
    'X',
    'RUN ["echo", "<<EOF"]',
    'ONBUILD RUN <<T',
    'hi',
    'T',
    '',
  ].join('\n');
  const [run, copy, cat, json, onbuild] = parseDockerfile(text).stages[0]!.instructions;
  assert.deepEqual(run!.heredocs, [{ name: 'EOF', content: 'echo $HOME\n', expand: true, chomp: false, fd: 0 }]);
  assert.deepEqual(run!.loc, { line: 2, endLine: 4 });
  assert.deepEqual(
    copy!.heredocs.map((h) => [h.name, h.content, h.expand, h.chomp]),
    [
      ['A', '\tone\n', false, true],
      ['B', 'two\n', true, false],
    ],
  );
  assert.deepEqual(copy!.loc, { line: 5, endLine: 9 });
  assert.equal(cat!.heredocs[0]!.content, 'x\n');
  assert.deepEqual(json!.heredocs, []);
  assert.equal(onbuild!.heredocs[0]!.content, 'hi\n');
  invalid('FROM a\nRUN <<EOF\necho\n', /^Dockerfile:2: unterminated heredoc "EOF"/);
});

test('errors name the file and line: unknown instruction, instruction before FROM, empty file, duplicates, bad names, flags', () => {
  invalid('FROM a\nFOO bar\n', /^app\.Dockerfile:2: unknown instruction: FOO$/, 'app.Dockerfile');
  invalid('FROM a\nrunn bar\n', /^Dockerfile:2: unknown instruction: runn \(did you mean RUN\?\)$/);
  // Reported in file order: the COPY's error comes first.
  invalid('FROM a\nCOPY\t\n\t\tquux \\\n      bar', /^Dockerfile:2: COPY requires at least two arguments/);
  invalid('RUN x\nFROM a\n', /^Dockerfile:1: no build stage in current context: RUN/);
  invalid('', /cannot be empty/);
  invalid('  \n\n', /cannot be empty/);
  invalid('# just a comment\n', /file with no instructions/);
  invalid('ARG x\n', /no stages to build/);
  invalid('FROM a AS x\nFROM b AS X\n', /^Dockerfile:2: duplicate stage name "x"/);
  invalid('FROM a AS 1x\n', /invalid name for build stage: "1x"/);
  invalid('FROM a AS\n', /FROM requires either one or three arguments/);
  invalid('FROM a\nCOPY --foo=1 a b\n', /^Dockerfile:2: unknown flag: --foo/);
  invalid('FROM a\nCOPY --link=maybe a b\n', /expecting boolean value for flag --link, not: maybe/);
  invalid('FROM a\nCOPY --from a b\n', /missing a value on flag: --from/);
  invalid('FROM a\nCOPY --from=x --from=y a b\n', /duplicate flag specified: --from/);
  invalid('FROM a\nRUN --network=bridge x\n', /invalid network mode "bridge"/);
  invalid('FROM a\nRUN --mount=type=cache,target=/c,bogus=1 x\n', /unexpected key 'bogus'/);
  invalid('FROM a\nRUN --mount=from=$X,target=/m x\n', /'from' doesn't support variable expansion/);
  invalid('FROM a\nSHELL /bin/sh -c\n', /SHELL requires the arguments to be in JSON form/);
  invalid('FROM a\nONBUILD ONBUILD RUN x\n', /Chaining ONBUILD/);
  invalid('FROM a\nONBUILD FROM b\n', /FROM isn't allowed as an ONBUILD trigger/);
  invalid('FROM a\nHEALTHCHECK --interval=10us CMD x\n', /Interval "interval" cannot be less than 1ms/);
  invalid('FROM a\nHEALTHCHECK --retries=-1 CMD x\n', /--retries cannot be negative/);
  invalid('FROM a\nHEALTHCHECK NONE x\n', /HEALTHCHECK NONE takes no arguments/);
  invalid('FROM a\nENV x\n', /ENV must have two arguments/);
  invalid('FROM a\nCOPY onlyone\n', /COPY requires at least two arguments/);
  invalid('FROM a\nCOPY a <<EOF\nx\nEOF\n', /COPY cannot accept a heredoc as a destination/);
  for (const kw of ['MAINTAINER', 'WORKDIR', 'USER', 'STOPSIGNAL'])
    invalid(`FROM a\n${kw}\n`, new RegExp(`^Dockerfile:2: ${kw} requires exactly one argument$`));
  for (const kw of ['ENV', 'LABEL', 'ONBUILD', 'HEALTHCHECK', 'EXPOSE', 'VOLUME', 'ARG', 'RUN', 'SHELL'])
    invalid(`FROM a\n${kw}\n`, new RegExp(`^Dockerfile:2: ${kw} requires at least one argument$`));
  for (const kw of ['ADD', 'COPY'])
    invalid(
      `FROM a\n${kw} one\n`,
      new RegExp(`^Dockerfile:2: ${kw} requires at least two arguments, but only one was provided. Destination could not be determined$`),
    );
  invalid('FROM a\nEXPOSE $P 80/icmp\n', /^Dockerfile:2: invalid port: "80\/icmp": invalid proto: icmp/);
});

test('size bound and pathological input stay cheap', () => {
  assert.throws(() => parseDockerfile('FROM a\n', { maxBytes: 3 }), /too large/);
  // A million continuation lines: linear, not quadratic.
  const t0 = performance.now();
  const big = 'FROM a\nRUN echo \\\n' + 'x \\\n'.repeat(1_000_000) + 'end\n';
  const df = parseDockerfile(big, { maxBytes: 16 << 20 });
  assert.equal(df.stages[0]!.instructions[0]!.loc.endLine, 1_000_003);
  // Lines of blanks ending in an escape, and a long directive-looking line.
  parseDockerfile('#syntax=a' + ' '.repeat(100000) + 'x\nFROM a\nRUN a' + ' \\'.repeat(100000) + '\n');
  // ~2 s here; quadratic would take hours. Loose, so a loaded machine cannot fail it.
  assert.ok(performance.now() - t0 < 60000, `took ${performance.now() - t0} ms`);
});

test('parseInstruction reads one trigger, heredocs included', () => {
  const r = parseInstruction('RUN <<EOF\necho hi\nEOF');
  assert.equal(r.keyword, 'RUN');
  assert.equal(r.heredocs[0]!.content, 'echo hi\n');
  assert.equal(parseInstruction('COPY a `\n b', '`').rest, 'a  b');
  assert.throws(() => parseInstruction('RUN a\nRUN b'), /expected one instruction/);
  assert.throws(() => parseInstruction('COPY --nope a b'), /^EngineError: ONBUILD trigger:1: unknown flag: --nope/);
});

test('random token soup never escapes as anything but an EngineError', async () => {
  const { EngineError } = await import('../../common/errors.ts');
  const { compileFrom, compileInstruction } = await import('./index.ts');
  const toks = [
    'FROM',
    'RUN',
    'COPY',
    'ADD',
    'ENV',
    'ARG',
    'LABEL',
    'ONBUILD',
    'HEALTHCHECK',
    'CMD',
    'SHELL',
    'EXPOSE',
    'VOLUME',
    'USER',
    ' ',
    ' ',
    '\n',
    '\\',
    '\\\n',
    '`',
    '"',
    "'",
    '$',
    '${',
    '}',
    ':-',
    ':?',
    '#',
    '%',
    '/',
    '<<',
    '<<-',
    'EOF',
    '\t',
    '[',
    ']',
    ',',
    '=',
    '--mount=',
    'type=cache',
    '--from=',
    'a',
    'x',
    '1',
    'NONE',
    'AS',
    '\r\n',
    '# escape=`\n',
    '--',
    '*',
  ];
  let seed = 1;
  const rnd = (n: number) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
  const onlyEngineErrors = (f: () => void) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof EngineError)) throw e;
    }
  };
  for (let i = 0; i < 3000; i++) {
    let text = 'FROM a\n';
    for (let j = 1 + rnd(40); j > 0; j--) text += toks[rnd(toks.length)];
    onlyEngineErrors(() => {
      const df = parseDockerfile(text);
      for (const st of df.stages) {
        onlyEngineErrors(() => compileFrom(st.from, () => 'v'));
        for (const r of st.instructions) onlyEngineErrors(() => compileInstruction(r, (n) => (n.length % 2 ? 'v' : undefined), df.directives.escape));
      }
    });
  }
});
