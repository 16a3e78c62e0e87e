/** The Dockerfile front end: pure functions, no I/O. */
export type * from './types.ts';
export { parseDockerfile, parseInstruction, usedVariables, type ParseOptions } from './dockerfile.ts';
export { DEFAULT_MAX_DOCKERFILE_BYTES } from './parser.ts';
export { compileFrom, compileInstruction, checkInstruction } from './compile.ts';
export { expand, expandWords } from './lex.ts';
