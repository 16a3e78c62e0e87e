export * from './digest.ts';
export * from './mediatypes.ts';
export * from './types.ts';
export * from './reference.ts';
