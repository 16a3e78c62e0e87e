// @ts-check
/**
 * Lint rules that keep keel's shape (see DESIGN.md):
 * - promises are awaited or deliberately voided (a forgotten one is an
 *   unhandled rejection or an operation nobody waits for);
 * - imports go only up DESIGN.md's layer table: a folder imports from
 *   folders with a lower number, or from itself.
 */
import tseslint from 'typescript-eslint';

/** DESIGN.md's source layout; `also` lists the exceptions the table itself gives. */
const LAYERS = {
  common: 0,
  oci: 1,
  content: 2,
  archive: 2,
  snapshots: 2,
  registry: 3,
  images: 3,
  runtime: 4,
  network: 4,
  volumes: 4,
  containers: 5,
  build: 6,
  engine: 7,
  compose: 8,
  api: 9,
  cli: 9,
  client: 9,
  // The daemon process: wires the engine to the API server, above both front ends.
  daemon: 10,
};
/** images/ pulls and pushes through registry/'s client (DESIGN.md lists registry above images in the same row). */
const ALSO = { images: ['registry'] };

/** Relative imports (static, export-from and dynamic) of any folder `dir` may not use. */
function forbidden(dir) {
  const n = LAYERS[dir];
  return Object.keys(LAYERS).filter((d) => d !== dir && LAYERS[d] >= n && !(ALSO[dir] ?? []).includes(d));
}

const layerRules = Object.keys(LAYERS).map((dir) => {
  const bad = forbidden(dir);
  const re = `^(\\.\\./)+(${bad.join('|')})(/|$)`;
  const message = `${dir}/ (layer ${LAYERS[dir]}) may import only from lower layers or itself (DESIGN.md, source layout)`;
  return {
    files: [`src/${dir}/**/*.ts`],
    rules: bad.length
      ? {
          '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ regex: re, message }] }],
          'no-restricted-syntax': ['error', { selector: `ImportExpression[source.value=/${re.replaceAll('/', '\\/')}/]`, message }],
        }
      : {},
  };
});

export default tseslint.config(
  { ignores: ['node_modules/**', 'bench/**/*.js', 'dist/**'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // node:test's test() and describe() return promises the runner awaits itself.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  ...layerRules,
);
