/**
 * One HTTP/1.1 exchange on a unix socket whose answer is read whole: the
 * request written and the response parsed here, on a node:net socket,
 * rather than by node:http. Most commands make only such requests (inspect,
 * list, create, start...), and node:http's modules cost each of them ~4 ms
 * to load, a tenth of a no-op `compose up` after Node's own start. What
 * streams (logs, events, progress, tar bodies, attach) still goes through
 * node:http (client.ts).
 *
 * The request says `Connection: close` and carries its whole body with a
 * Content-Length. The response is framed as RFC 9112 says: no body for
 * HEAD, 1xx, 204 and 304; else chunked transfer coding, a Content-Length,
 * or the bytes up to the end of the connection.
 */

export interface WholeResponse {
  status: number;
  /** Header names in lower case; a repeated header's values joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

/** An answer larger than this is refused (no API answer of a daemon comes near it). */
export const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

// through getBuiltinModule, as in client.ts (an ESM import evaluates the module's every lazy export)
const net = process.getBuiltinModule('node:net');

/**
 * Sends the request and resolves with the whole response. A connection
 * error (ENOENT, ECONNREFUSED...) rejects with the socket's own error; an
 * answer that is cut short or not HTTP rejects with a MalformedResponse.
 */
export function exchange(socketPath: string, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<WholeResponse> {
  // as node:http: a path goes on the request line as it is, so it must be escaped already
  if (/[^\x21-\xff]/.test(path)) throw new TypeError(`the request path ${JSON.stringify(path)} has unescaped characters`);
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: localhost', 'Connection: close'];
  for (const [k, v] of Object.entries(headers)) {
    if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) throw new TypeError(`header ${JSON.stringify(k)} has a line break`);
    if (k.toLowerCase() !== 'content-length') lines.push(`${k}: ${v}`);
  }
  if (body || method === 'POST' || method === 'PUT') lines.push(`Content-Length: ${body?.length ?? 0}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return new Promise((resolve, reject) => {
    const parser = new ResponseParser(method);
    const socket = net.createConnection(socketPath);
    let settled = false;
    const settle = (e?: Error, r?: WholeResponse) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (e) reject(e);
      else resolve(r!);
    };
    socket.on('connect', () => socket.write(body ? Buffer.concat([head, body]) : head));
    socket.on('data', (chunk: Buffer) => {
      try {
        const r = parser.push(chunk);
        if (r) settle(undefined, r);
      } catch (e) {
        settle(e as Error);
      }
    });
    socket.on('end', () => {
      try {
        settle(undefined, parser.end());
      } catch (e) {
        settle(e as Error);
      }
    });
    socket.on('error', (e) => settle(e));
    socket.on('close', () => settle(new MalformedResponse('the connection closed before the answer was complete')));
  });
}

/** An answer that is not a complete HTTP/1.x response. */
export class MalformedResponse extends Error {}

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
/** The status line and headers of an answer are far below this. */
const MAX_HEAD_BYTES = 64 * 1024;
/** A chunk's size line, or a trailer. */
const MAX_LINE_BYTES = 8 * 1024;

/** Parses one response from the bytes as they arrive (each byte copied once, however the answer is cut). */
export class ResponseParser {
  /** Bytes not parsed yet: of the head, or of a chunk's size line or end. */
  private buf: Buffer = Buffer.alloc(0);
  private status = 0;
  private headers: Record<string, string> | undefined;
  /**
   * Where the body is: none; `length` bytes still to come; up to the end of
   * the connection; or in chunks, at a size line, inside a chunk (`left`
   * bytes to come), at a chunk's line end, or in the trailers.
   */
  private state:
    | { at: 'head' }
    | { at: 'length'; left: number }
    | { at: 'close' }
    | { at: 'size' }
    | { at: 'data'; left: number }
    | { at: 'data-end' }
    | { at: 'trailers' }
    | { at: 'done' } = { at: 'head' };
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private readonly method: string;

  constructor(method: string) {
    this.method = method;
  }

  /** Takes more bytes; returns the response once it is complete. */
  push(chunk: Buffer): WholeResponse | undefined {
    let b: Buffer = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = Buffer.alloc(0);
    for (;;) {
      const s = this.state;
      if (s.at === 'done') return this.done();
      if (s.at === 'head') {
        const at = b.indexOf(HEAD_END);
        if (at < 0) {
          if (b.length > MAX_HEAD_BYTES) throw new MalformedResponse('the answer has no end of its headers');
          return this.keep(b);
        }
        this.readHead(b.subarray(0, at).toString('latin1'));
        b = b.subarray(at + HEAD_END.length);
      } else if (s.at === 'close') {
        this.take(b);
        return undefined;
      } else if (s.at === 'length' || s.at === 'data') {
        const n = Math.min(s.left, b.length);
        this.take(b.subarray(0, n));
        b = b.subarray(n);
        s.left -= n;
        if (s.left > 0) return undefined;
        this.state = s.at === 'length' ? { at: 'done' } : { at: 'data-end' };
      } else {
        const eol = b.indexOf(CRLF);
        if (eol < 0) {
          if (b.length > MAX_LINE_BYTES) throw new MalformedResponse('a malformed chunked body');
          return this.keep(b);
        }
        const line = b.subarray(0, eol).toString('latin1');
        b = b.subarray(eol + CRLF.length);
        if (s.at === 'data-end') {
          if (line) throw new MalformedResponse('a chunk longer than its size');
          this.state = { at: 'size' };
        } else if (s.at === 'trailers') {
          // the trailers (none from a daemon) end with an empty line
          if (!line) this.state = { at: 'done' };
        } else {
          const m = /^([0-9a-fA-F]{1,8})[ \t]*(?:;.*)?$/.exec(line);
          if (!m) throw new MalformedResponse(`a malformed chunk size: ${JSON.stringify(line.slice(0, 40))}`);
          const left = parseInt(m[1]!, 16);
          this.state = left ? { at: 'data', left } : { at: 'trailers' };
        }
      }
    }
  }

  /** The connection ended: the response, if its framing lets the end complete it. */
  end(): WholeResponse {
    if (this.state.at === 'close' || this.state.at === 'done') return this.done();
    throw new MalformedResponse(this.headers ? 'the answer ended before its body was complete' : 'the connection closed before an answer');
  }

  private keep(b: Buffer): undefined {
    this.buf = b;
    return undefined;
  }

  private readHead(text: string): void {
    const [statusLine, ...fields] = text.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(statusLine!);
    if (!m) throw new MalformedResponse(`not an HTTP answer: ${JSON.stringify(statusLine!.slice(0, 80))}`);
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const f of fields) {
      const colon = f.indexOf(':');
      if (colon <= 0) throw new MalformedResponse(`a malformed header: ${JSON.stringify(f.slice(0, 80))}`);
      const name = f.slice(0, colon).trim().toLowerCase();
      const value = f.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    // an interim answer (100 Continue) is followed by the real one
    if (status < 200) return;
    this.status = status;
    this.headers = headers;
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    if (this.method === 'HEAD' || status === 204 || status === 304) this.state = { at: 'done' };
    else if (te !== undefined) {
      if (!/^chunked$/i.test(te)) throw new MalformedResponse(`an unsupported transfer coding: ${te}`);
      this.state = { at: 'size' };
    } else if (cl !== undefined) {
      if (!/^\d{1,15}$/.test(cl)) throw new MalformedResponse(`a malformed Content-Length: ${cl}`);
      const left = Number(cl);
      if (left > MAX_RESPONSE_BYTES) throw new MalformedResponse(`an answer of ${left} bytes, more than ${MAX_RESPONSE_BYTES}`);
      this.state = left ? { at: 'length', left } : { at: 'done' };
    } else this.state = { at: 'close' };
  }

  private take(b: Buffer): void {
    if (!b.length) return;
    this.size += b.length;
    if (this.size > MAX_RESPONSE_BYTES) throw new MalformedResponse(`an answer of more than ${MAX_RESPONSE_BYTES} bytes`);
    this.chunks.push(b);
  }

  private done(): WholeResponse {
    return { status: this.status, headers: this.headers!, body: Buffer.concat(this.chunks) };
  }
}
