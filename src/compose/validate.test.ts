import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { VALIDATOR_FILE, validatorCode } from './schema/generate.ts';
import { loadValidator, validateFile } from './validate.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-validate-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const good = { services: { web: { image: 'busybox', ports: ['80:80'], depends_on: { db: { condition: 'service_healthy' } } }, db: { image: 'pg' } } };
const bad = { services: { web: { image: 'busybox', ports: { a: 1 }, bogus: true } } };

test('the committed validator is what generate.ts makes from compose-spec.json (else: npm run generate:compose-schema)', () => {
  assert.ok(
    fs.readFileSync(VALIDATOR_FILE, 'utf8') === validatorCode(),
    'src/compose/schema/compose-spec.validate.cjs is stale: npm run generate:compose-schema',
  );
});

/**
 * Loads the validator in a new process (V8 answers a second compile of the
 * same source in one process from memory, cache or not), validates `good`
 * and `bad`, keeps the cache; what it saw.
 */
function loadInChild(dir: string): { fromCache: boolean; good: boolean; bad: boolean; errors: unknown } {
  const script = `
    const { loadValidator } = await import(${JSON.stringify(new URL('./validate.ts', import.meta.url).href)});
    const v = loadValidator(${JSON.stringify(dir)});
    const good = v.validate(${JSON.stringify(good)});
    const bad = v.validate(${JSON.stringify(bad)});
    const errors = v.validate.errors;
    v.ran();
    console.log(JSON.stringify({ fromCache: v.fromCache, good, bad, errors }));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as ReturnType<typeof loadInChild>;
}

test('with a cache directory: the first load compiles and keeps the code after a validation; the next loads it; all answer as the plain module', () => {
  const plain = loadValidator(undefined);
  assert.equal(plain.validate(good), true);
  assert.equal(plain.validate(bad), false);
  const expected = { good: true, bad: false, errors: JSON.parse(JSON.stringify(plain.validate.errors)) as unknown };
  const dir = fs.mkdtempSync(path.join(root, 'cache-'));
  assert.deepEqual(loadInChild(dir), { fromCache: false, ...expected });
  const kept = fs.readdirSync(dir);
  assert.equal(kept.length, 1);
  assert.match(kept[0]!, /^keel-compose-validator-[0-9a-f]{32}$/);
  assert.deepEqual(loadInChild(dir), { fromCache: true, ...expected });
  assert.deepEqual(fs.readdirSync(dir), kept);

  // a damaged entry is refused by V8: compiled from source, and the entry made again
  fs.writeFileSync(path.join(dir, kept[0]!), Buffer.alloc(4096, 7));
  assert.deepEqual(loadInChild(dir), { fromCache: false, ...expected });
  assert.deepEqual(loadInChild(dir), { fromCache: true, ...expected });
});

test('a cache directory that cannot be written costs nothing but the cache', () => {
  const v = loadValidator(path.join(root, 'missing', 'dir'));
  assert.equal(v.validate(good), true);
  v.ran();
  assert.equal(fs.existsSync(path.join(root, 'missing')), false);
});

test('errors name the file and the most specific location', () => {
  assert.throws(() => validateFile(bad, 'compose.yaml'), {
    code: 'INVALID_ARGUMENT',
    message: 'validating compose.yaml: services.web.ports must be a sequence',
  });
  assert.doesNotThrow(() => validateFile(good, 'compose.yaml'));
});
