export { applyLayer, type ApplyOptions, type ApplyResult } from './apply.ts';
export { diffLayer, tarDirectory } from './diff.ts';
export { compress, decompress, decompressChunks, sniffCompression, type Compression } from './compress.ts';
