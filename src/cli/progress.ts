import { EngineError } from '../common/errors.ts';
import type { ProgressMessage } from '../registry/progress.ts';

export interface RenderOptions {
  /** Print nothing (errors still throw). */
  quiet?: boolean;
}

const ESC = '\x1b[';

/**
 * Renders docker JSON progress messages the way the docker CLI does
 * (pkg/jsonmessage.DisplayJSONMessagesStream):
 *  - on a terminal, every message with an `id` and a progressDetail owns one
 *    line that is redrawn in place (cursor up, clear line, cursor down);
 *    any other message is printed below and forgets those lines, so a later
 *    operation (pull -a) starts a fresh block;
 *  - otherwise, lines with a progress bar are dropped and the rest are
 *    printed as `id: status`.
 * A message carrying `errorDetail` or `error` ends the stream with an
 * EngineError holding its message.
 */
export async function renderProgress(messages: AsyncIterable<object>, out: NodeJS.WriteStream, opts: RenderOptions = {}): Promise<void> {
  const tty = out.isTTY === true && !opts.quiet;
  let ids = new Map<string, number>();
  const write = (s: string) => {
    if (!opts.quiet) out.write(s);
  };
  for await (const raw of messages) {
    const m = raw as ProgressMessage & { stream?: string };
    if (m.errorDetail || m.error) {
      throw new EngineError('INTERNAL', m.errorDetail?.message ?? m.error ?? 'unknown error');
    }
    if (m.aux !== undefined && m.status === undefined && m.stream === undefined) continue;
    const isProgress = m.progressDetail !== undefined;
    const bar = m.progress ?? '';
    let diff = 0;
    if (m.id && isProgress) {
      let line = ids.get(m.id);
      if (line === undefined) {
        line = ids.size;
        ids.set(m.id, line);
        if (tty) write('\n');
      }
      diff = ids.size - line;
      if (tty) write(`${ESC}${diff}A`);
    } else ids = new Map();
    if (!tty && isProgress && bar) continue;
    let text = m.id ? `${m.id}: ` : '';
    if (tty && isProgress) {
      text += bar ? `${m.status ?? ''} ${bar}` : `${m.status ?? ''}`;
      write(`${ESC}2K\r${text}\r`);
      if (diff) write(`${ESC}${diff}B`);
    } else if (m.stream !== undefined) write(text + m.stream);
    else write(`${text}${m.status ?? ''}\n`);
  }
}

/** Parses a docker JSON-lines progress body (`\r\n` separated) into messages. */
export async function* parseJsonLines(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<object> {
  let buf = '';
  const dec = new TextDecoder();
  for await (const chunk of body) {
    buf += typeof chunk === 'string' ? chunk : dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line) yield JSON.parse(line) as object;
    }
    if (buf.length > 16 << 20) throw new EngineError('INVALID_ARGUMENT', 'progress stream line longer than 16 MiB');
  }
  if (buf.trim()) yield JSON.parse(buf) as object;
}
