/** The Dockerfile front end the executor uses: the parser of src/build/dockerfile and the .dockerignore matcher. */
import { ignoreMatcher, parseDockerignore } from './context/ignore.ts';
import { compileFrom, compileInstruction, expand, parseDockerfile, parseInstruction, usedVariables } from './dockerfile/index.ts';
import type { Frontend } from './types.ts';

export const frontend: Frontend = {
  parseDockerfile,
  parseInstruction,
  compileFrom,
  compileInstruction,
  expand,
  usedVariables,
  parseDockerignore,
  ignoreMatcher,
};
