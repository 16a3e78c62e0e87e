import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileFrom, compileInstruction, parseDockerfile, parseInstruction, usedVariables, type Instruction, type VarLookup } from './index.ts';

const vars: Record<string, string> = {
  A: 'aa',
  SP: 'x y',
  EMPTY: '',
  DIR: '/app',
  PORT: '8080',
  BASE: 'alpine',
  V: '3.20',
  PLAT: 'linux/amd64',
  U: 'app',
  S: 'TERM',
};
const lookup: VarLookup = (n) => vars[n];

/** Compiles the one instruction after a FROM. */
function one(line: string, escape: '\\' | '`' = '\\'): Instruction {
  const df = parseDockerfile(`${escape === '`' ? '# escape=`\n' : ''}FROM scratch\n${line}\n`);
  return compileInstruction(df.stages[0]!.instructions[0]!, lookup, escape);
}
/** The fields other than loc and original. */
function body(i: Instruction): Record<string, unknown> {
  const { loc: _l, original: _o, ...rest } = i;
  return rest;
}
const fails = (line: string, re: RegExp) =>
  assert.throws(
    () => one(line),
    (e: Error & { code?: string }) => e.code === 'INVALID_ARGUMENT' && re.test(e.message),
    line,
  );

test('FROM expands the image and platform with the meta ARGs; the stage name is not expanded', () => {
  const df = parseDockerfile('ARG BASE\nFROM --platform=$PLAT ${BASE}:${V} AS Builder\n');
  assert.deepEqual(compileFrom(df.stages[0]!.from, lookup), { image: 'alpine:3.20', platform: 'linux/amd64', name: 'builder' });
  const tick = parseDockerfile('# escape=`\nFROM `$x${BASE}\n');
  assert.equal(compileFrom(tick.stages[0]!.from, lookup).image, '$xalpine');
  const blank = parseDockerfile('FROM $NOPE\n');
  assert.throws(
    () => compileFrom(blank.stages[0]!.from, lookup),
    (e: Error) => /^Dockerfile:1: base name \(\$NOPE\) should not be blank/.test(e.message),
  );
});

test('RUN: shell and exec forms kept as written, flags and mounts', () => {
  assert.deepEqual(body(one('RUN echo $A "$SP"')), { kind: 'RUN', command: { form: 'shell', script: 'echo $A "$SP"' }, mounts: [], heredocs: [] });
  assert.deepEqual(body(one('RUN ["echo", "$A"]')).command, { form: 'exec', args: ['echo', '$A'] });
  const r = one(
    'RUN --network=none --security=insecure --mount=type=cache,target=$DIR/c,id=c1,sharing=locked,mode=0700,uid=1000 --mount=type=bind,from=base,src=/s,dst=/d,rw --mount=type=tmpfs,target=/t,size=64m --mount=type=secret,id=tok,env=TOKEN,required --mount=type=ssh make',
  );
  assert.ok(r.kind === 'RUN');
  assert.equal(r.network, 'none');
  assert.equal(r.security, 'insecure');
  assert.deepEqual(r.mounts, [
    { type: 'cache', target: '/app/c', id: 'c1', mode: 0o700, uid: 1000, sharing: 'locked', readonly: false },
    { type: 'bind', target: '/d', source: '/s', from: 'base', readwrite: true },
    { type: 'tmpfs', target: '/t', size: 64 * 1024 * 1024 },
    { type: 'secret', id: 'tok', env: 'TOKEN', required: true },
    { type: 'ssh', required: false },
  ]);
  assert.deepEqual((one('RUN --mount=target=/src x') as { mounts: unknown[] }).mounts, [{ type: 'bind', target: '/src', readwrite: false }]);
  assert.deepEqual((one('RUN --mount=type=secret,target=/run/secrets/npmrc x') as { mounts: unknown[] }).mounts, [
    { type: 'secret', id: 'npmrc', target: '/run/secrets/npmrc', required: false },
  ]);
  // The flag's own quotes go first; CSV quotes protect a comma.
  assert.deepEqual((one(`RUN --mount='type=bind,"source=a,b",target=/x' x`) as { mounts: unknown[] }).mounts, [
    { type: 'bind', target: '/x', source: 'a,b', readwrite: false },
  ]);
  fails('RUN --mount="type=bind,source=a,b",target=/x x', /invalid field 'b' must be a key=value pair/);
  fails('RUN --mount=type=nfs,target=/x x', /unsupported mount type "nfs"/);
  fails('RUN --mount=type=bind,target=/x,mode=0755 x', /mode not allowed for "bind" type mounts/);
  fails('RUN --mount=type=cache,target=/x,required x', /unexpected key 'required' for mount type 'cache'/);
  fails('RUN --mount=type=secret x', /one of source, target required/);
  fails('RUN --mount=type=cache,target=/x,sharing=never x', /unsupported sharing value/);
  fails('RUN --mount=type=tmpfs,target=/x,size=big x', /invalid value for size: big/);
  fails('RUN --mount=type=cache,target=/x,ro=maybe x', /invalid value for ro: maybe/);
  fails('RUN --mount=type=bind,target=${NOPE:?missing} x', /NOPE: missing/);
});

test('RUN heredocs: a lone heredoc is the script, otherwise the shell gets line and documents', () => {
  const lone = parseDockerfile('FROM a\nRUN <<-EOF\n\techo $A\n\tEOF\n').stages[0]!.instructions[0]!;
  const r = compileInstruction(lone, lookup, '\\');
  assert.deepEqual(r.kind === 'RUN' && r.command, { form: 'shell', script: 'echo $A\n' });
  assert.deepEqual(r.kind === 'RUN' && r.heredocs, []); // folded into the command, not to be applied twice
  const stdin = parseDockerfile('FROM a\nRUN python3 <<EOF > /out\nprint(1)\nEOF\n').stages[0]!.instructions[0]!;
  assert.deepEqual((compileInstruction(stdin, lookup, '\\') as { command: unknown }).command, { form: 'shell', script: 'python3 <<EOF > /out\nprint(1)\nEOF' });
  const two = parseDockerfile('FROM a\nRUN cat <<A <<-B\na\nA\n\tb\n\tB\n').stages[0]!.instructions[0]!;
  assert.deepEqual((compileInstruction(two, lookup, '\\') as { command: unknown }).command, { form: 'shell', script: 'cat <<A <<-B\na\nA\n\tb\nB' });
  const shebang = parseDockerfile('FROM a\nRUN <<py\n#!/usr/bin/env python3\nprint(1)\npy\n').stages[0]!.instructions[0]!;
  const s = compileInstruction(shebang, lookup, '\\');
  assert.ok(s.kind === 'RUN');
  assert.deepEqual(s.command, { form: 'exec', args: ['/dev/pipes/py'] });
  assert.deepEqual(s.pipeFile, { path: '/dev/pipes/py', content: '#!/usr/bin/env python3\nprint(1)\n' });
});

test('CMD, ENTRYPOINT, SHELL', () => {
  assert.deepEqual(body(one('CMD ["a", "$A"]')), { kind: 'CMD', command: { form: 'exec', args: ['a', '$A'] } });
  assert.deepEqual(body(one('ENTRYPOINT exec app --x "$A"')), { kind: 'ENTRYPOINT', command: { form: 'shell', script: 'exec app --x "$A"' } });
  assert.deepEqual(body(one('SHELL ["/bin/bash", "-o", "pipefail", "-c"]')), { kind: 'SHELL', shell: ['/bin/bash', '-o', 'pipefail', '-c'] });
  fails('CMD --x a', /unknown flag: --x/);
});

test('COPY and ADD: sources and destination expanded, flags, heredocs expanded unless quoted', () => {
  assert.deepEqual(body(one('COPY --chown=$U:$U --chmod=0755 --link --parents --exclude=*.md --exclude=tmp $A/b c ${DIR}/')), {
    kind: 'COPY',
    sources: ['aa/b', 'c'],
    dest: '/app/',
    link: true,
    parents: true,
    exclude: ['*.md', 'tmp'],
    heredocs: [],
    chown: 'app:app',
    chmod: '0755',
  });
  // Words are split on blanks before expansion: quotes do not group them (use the JSON form).
  fails('COPY "a b" /x', /failed to process "\\"a": unexpected end of statement while looking for matching double-quote/);
  assert.deepEqual((one('COPY ["a b", "$DIR"]') as { sources: string[]; dest: string }).sources, ['a b']);
  assert.equal((one('COPY ["a b", "$DIR"]') as { dest: string }).dest, '/app');
  assert.deepEqual(body(one('ADD --checksum=sha256:$A --keep-git-dir --unpack=false https://example.com/x.tgz /x')), {
    kind: 'ADD',
    sources: ['https://example.com/x.tgz'],
    dest: '/x',
    link: false,
    parents: false,
    exclude: [],
    heredocs: [],
    checksum: 'sha256:aa',
    keepGitDir: true,
    unpack: false,
  });
  assert.equal((one('COPY --from=build /a /b') as { from?: string }).from, 'build');
  assert.equal((one('COPY --chmod=u+x,go=r a b') as { chmod?: string }).chmod, 'u+x,go=r');
  fails('COPY --chmod=17777 a b', /invalid chmod parameter: '17777'. it should be octal/);
  fails('COPY --chmod=9 a b', /invalid chmod parameter: '9'. it should be octal/);
  fails('COPY --chmod=rwx a b', /invalid chmod parameter: 'rwx'/);
  fails('COPY --from=$A /a /b', /variable expansion is not supported for --from/);
  fails('ADD --from=x a b', /unknown flag: --from/);
  fails('COPY --checksum=x a b', /unknown flag: --checksum/);
  const df = parseDockerfile('FROM a\nCOPY <<EOF <<"RAW" <<-TABS /dst/\nhome=$DIR \\$A "q" it\'s\nEOF\nkeep $DIR\nRAW\n\t\tx=$A\n\tTABS\n');
  const c = compileInstruction(df.stages[0]!.instructions[0]!, lookup, '\\');
  assert.ok(c.kind === 'COPY');
  assert.deepEqual(c.sources, []);
  assert.deepEqual(c.heredocs, [
    { name: 'EOF', content: `home=/app $A "q" it's\n`, expand: true },
    { name: 'RAW', content: 'keep $DIR\n', expand: false },
    { name: 'TABS', content: 'x=aa\n', expand: true },
  ]);
});

test('ENV and LABEL: both forms, quotes and escapes, keys expanded too', () => {
  assert.deepEqual(body(one('ENV A=1 B="x y" C=${DIR}/bin D=\'$A\' E=a\\ b')), {
    kind: 'ENV',
    pairs: [
      ['A', '1'],
      ['B', 'x y'],
      ['C', '/app/bin'],
      ['D', '$A'],
      ['E', 'a b'],
    ],
  });
  assert.deepEqual(body(one('ENV PATH /usr/bin:$DIR  and more')), { kind: 'ENV', pairs: [['PATH', '/usr/bin:/app  and more']] });
  assert.deepEqual(body(one('ENV $U=x')), { kind: 'ENV', pairs: [['app', 'x']] });
  assert.deepEqual(body(one('LABEL "com.example.v"="$V" multi="a \\\n  b"')), {
    kind: 'LABEL',
    pairs: [
      ['com.example.v', '3.20'],
      ['multi', 'a   b'],
    ],
  });
  fails('ENV A=1 B', /can't find = in "B"/);
  fails('LABEL =x', /LABEL names can not be blank/);
  fails('ENV', /ENV requires at least one argument/);
});

test('ARG: several per line, defaults expanded', () => {
  assert.deepEqual(body(one('ARG X Y=$A Z="a b" EMPTYDEF= W=${Y}w $A')), {
    kind: 'ARG',
    args: [
      { name: 'X' },
      { name: 'Y', default: 'aa', rawDefault: '$A' },
      { name: 'Z', default: 'a b', rawDefault: '"a b"' },
      { name: 'EMPTYDEF', default: '', rawDefault: '' },
      { name: 'W', default: 'aaw', rawDefault: '${Y}w' },
      { name: '$A' }, // names are not expanded
    ],
  });
  fails('ARG =x', /ARG names can not be blank/);
});

test('EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL, MAINTAINER', () => {
  assert.deepEqual(body(one('EXPOSE $PORT 53/UDP 7000-7002/tcp 8080')), { kind: 'EXPOSE', ports: ['8080/tcp', '53/udp', '7000/tcp', '7001/tcp', '7002/tcp'] });
  fails('EXPOSE 70000', /invalid containerPort: 70000/);
  fails('EXPOSE 80/ip', /invalid proto: ip/);
  assert.deepEqual(body(one('USER ${U}:${U}')), { kind: 'USER', user: 'app:app' });
  assert.deepEqual(body(one('WORKDIR "$DIR/my dir"')), { kind: 'WORKDIR', path: '/app/my dir' });
  assert.deepEqual(body(one('VOLUME $DIR /data')), { kind: 'VOLUME', paths: ['/app', '/data'] });
  assert.deepEqual(body(one('VOLUME ["$DIR/x", "/y"]')), { kind: 'VOLUME', paths: ['/app/x', '/y'] });
  fails('VOLUME [""]', /VOLUME specified can not be an empty string/);
  assert.deepEqual(body(one('STOPSIGNAL SIG$S')), { kind: 'STOPSIGNAL', signal: 'SIGTERM' });
  assert.deepEqual(body(one('STOPSIGNAL 9')), { kind: 'STOPSIGNAL', signal: '9' });
  fails('STOPSIGNAL SIGNOPE', /Invalid signal: SIGNOPE/);
  assert.deepEqual(body(one('MAINTAINER Jo $A <jo@x>')), { kind: 'MAINTAINER', name: 'Jo $A <jo@x>' });
  assert.deepEqual(body(one('WORKDIR `$DIR', '`')), { kind: 'WORKDIR', path: '$DIR' });
});

test('HEALTHCHECK: NONE, CMD shell and exec forms, Go durations in nanoseconds', () => {
  assert.deepEqual(body(one('HEALTHCHECK NONE')), { kind: 'HEALTHCHECK', test: ['NONE'] });
  assert.deepEqual(
    body(one('HEALTHCHECK --interval=1m30s --timeout=3s --start-period=0s --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1')),
    {
      kind: 'HEALTHCHECK',
      test: ['CMD-SHELL', 'curl -f http://localhost/ || exit 1'],
      interval: 90e9,
      timeout: 3e9,
      startPeriod: 0,
      startInterval: 5e8,
      retries: 3,
    },
  );
  assert.deepEqual(body(one('HEALTHCHECK cmd ["true"]')), { kind: 'HEALTHCHECK', test: ['CMD', 'true'] });
  fails('HEALTHCHECK CMD', /Missing command after HEALTHCHECK CMD/);
  fails('HEALTHCHECK PING x', /Unknown type "PING" in HEALTHCHECK/);
  fails('HEALTHCHECK --interval=-1s CMD x', /cannot be less than 1ms/);
  fails('HEALTHCHECK --timeout=soon CMD x', /time: invalid duration "soon"/);
  fails('HEALTHCHECK --retries=x CMD x', /invalid syntax/);
});

test('ONBUILD keeps the trigger as written (heredocs appended) and parseInstruction reads it back', () => {
  const t = one('ONBUILD RUN echo $A');
  assert.deepEqual(body(t), { kind: 'ONBUILD', trigger: 'RUN echo $A' });
  const df = parseDockerfile('FROM a\nonbuild COPY <<EOF /x\nhello $A\nEOF\n');
  const ob = compileInstruction(df.stages[0]!.instructions[0]!, lookup, '\\');
  assert.ok(ob.kind === 'ONBUILD');
  assert.equal(ob.trigger, 'COPY <<EOF /x\nhello $A\nEOF');
  const back = compileInstruction(parseInstruction(ob.trigger), lookup, '\\');
  assert.ok(back.kind === 'COPY');
  assert.deepEqual(back.heredocs, [{ name: 'EOF', content: 'hello aa\n', expand: true }]);
});

test('errors carry file and line; usedVariables lists referenced names', () => {
  const df = parseDockerfile('FROM a\n\nWORKDIR ${NOPE:?set NOPE}\n', { file: 'sub/Dockerfile.dev' });
  assert.throws(
    () => compileInstruction(df.stages[0]!.instructions[0]!, lookup, '\\'),
    (e: Error) => /^sub\/Dockerfile.dev:3: failed to process "\$\{NOPE:\?set NOPE\}": NOPE: set NOPE$/.test(e.message),
  );
  const r = parseDockerfile('FROM a\nCOPY --chown=$U ${SRC:-x} $DEST_DIR/ \nRUN <<EOF\necho $IN_DOC\nEOF\n').stages[0]!.instructions;
  assert.deepEqual(usedVariables(r[0]!).sort(), ['DEST_DIR', 'SRC', 'U']);
  assert.deepEqual(usedVariables(r[1]!), ['IN_DOC']);
});

/**
 * Outcomes recorded from dockerd 20.10's builder on the same text (FROM scratch, `--build-arg SP="m  n"`),
 * replayed through a minimal executor: ENV overrides ARG, ARGs take build-args or defaults.
 */
test('ENV, LABEL, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL give what dockerd gave', () => {
  const text = [
    'FROM scratch',
    'ARG A=aa',
    'ARG SP="x  y"',
    'ARG E=',
    'ARG P=/usr/local/bin/tool.tar.gz',
    `ENV E1=$A E2="$A b" E3='$A' E4=\\$A E5=a\\ b E6="a\\"b" E7=\${NOPE:-dflt} E8=\${A:+alt} E9=\${E:-empty}`,
    'ENV L1 legacy value $A  "q"',
    'ENV E11="${SP}" E12=${SP} E13="tab\\there" E14=a\\\\b E15="a\\\\b" E16="x\\',
    'y"',
    'LABEL "l 1"="v $A" l2=${P:+set}',
    'LABEL legacy this is $A value',
    'WORKDIR /w/$A/"q r"',
    'WORKDIR sub\\ dir',
    'USER ${A}:${NOPE:-grp}',
    'EXPOSE 80 ${PORT:-8080} 53/UDP 7000-7001',
    'VOLUME ["/v/$A", "/v2"]',
    'VOLUME /v3/$SP',
    'STOPSIGNAL SIG${NOPE:-TERM}',
    '',
  ].join('\n');
  const df = parseDockerfile(text);
  const env = new Map<string, string>();
  const args = new Map<string, string | undefined>();
  const buildArgs: Record<string, string> = { SP: 'm  n' };
  const look: VarLookup = (n) => env.get(n) ?? args.get(n);
  const labels: Record<string, string> = {};
  const ports = new Set<string>();
  const volumes: string[] = [];
  let workdir = '/';
  let user = '';
  let signal = '';
  for (const r of df.stages[0]!.instructions) {
    const i = compileInstruction(r, look, '\\');
    if (i.kind === 'ARG') for (const a of i.args) args.set(a.name, a.name in buildArgs ? buildArgs[a.name] : a.default);
    else if (i.kind === 'ENV') for (const [k, v] of i.pairs) env.set(k, v);
    else if (i.kind === 'LABEL') for (const [k, v] of i.pairs) labels[k] = v;
    else if (i.kind === 'WORKDIR') workdir = i.path.startsWith('/') ? i.path : `${workdir}/${i.path}`;
    else if (i.kind === 'USER') user = i.user;
    else if (i.kind === 'EXPOSE') i.ports.forEach((p) => ports.add(p));
    else if (i.kind === 'VOLUME') volumes.push(...i.paths);
    else if (i.kind === 'STOPSIGNAL') signal = i.signal;
  }
  assert.deepEqual(Object.fromEntries(env), {
    E1: 'aa',
    E2: 'aa b',
    E3: '$A',
    E4: '$A',
    E5: 'a b',
    E6: 'a"b',
    E7: 'dflt',
    E8: 'alt',
    E9: 'empty',
    L1: 'legacy value aa  q',
    E11: 'm  n',
    E12: 'm  n',
    E13: 'tab\\there',
    E14: 'a\\b',
    E15: 'a\\b',
    E16: 'xy',
  });
  assert.deepEqual(labels, { 'l 1': 'v aa', l2: 'set', legacy: 'this is aa value' });
  assert.equal(workdir, '/w/aa/q r/sub dir');
  assert.equal(user, 'aa:grp');
  assert.deepEqual([...ports].sort(), ['53/udp', '7000/tcp', '7001/tcp', '80/tcp', '8080/tcp']);
  assert.deepEqual(volumes, ['/v/aa', '/v2', '/v3/m  n']);
  assert.equal(signal, 'SIGTERM');
});
