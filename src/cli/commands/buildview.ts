/**
 * `keel build` on a terminal: one line per finished step (with CACHED or
 * its time), and under the running step its last few output lines, redrawn
 * in place as they come, like BuildKit's tty view. It reads the same
 * stream lines docker prints (`Step N/M : ...`, ` ---> Using cache`, ...).
 */
const ESC = '\x1b[';
const TAIL = 6;

export class CompactView {
  private readonly out: NodeJS.WriteStream;
  private step = '';
  private started = 0;
  private cached = false;
  private tail: string[] = [];
  private partial = '';
  private drawn = 0;
  private readonly t0 = Date.now();
  private timer?: NodeJS.Timeout;

  constructor(out: NodeJS.WriteStream) {
    this.out = out;
    this.timer = setInterval(() => this.redraw(), 200);
    this.timer.unref();
  }

  text(s: string): void {
    this.partial += s;
    let i: number;
    while ((i = this.partial.indexOf('\n')) >= 0) {
      this.line(this.partial.slice(0, i));
      this.partial = this.partial.slice(i + 1);
    }
    // docker sends `Step N/M : ...` and its newline as two messages.
    if (/^Step \d+\/\d+ : /.test(this.partial)) {
      this.line(this.partial);
      this.partial = '';
    }
    this.redraw();
  }

  private line(l: string): void {
    if (/^Step \d+\/\d+ : /.test(l)) {
      this.finishStep();
      this.step = l;
      this.started = Date.now();
      this.cached = false;
      this.tail = [];
      return;
    }
    if (l === '') return;
    if (l === ' ---> Using cache') {
      this.cached = true;
      return;
    }
    if (/^ ---> |^Removing intermediate container /.test(l)) return;
    if (/^(Successfully |\[Warning\])/.test(l)) {
      this.finishStep();
      this.print(l);
      return;
    }
    if (!this.step) {
      this.print(l);
      return;
    }
    this.tail.push(l);
    if (this.tail.length > 200) this.tail.splice(0, this.tail.length - 200);
  }

  private finishStep(ok = true): void {
    if (!this.step) return;
    const secs = ((Date.now() - this.started) / 1000).toFixed(1);
    this.clear();
    const status = this.cached ? 'CACHED' : ok ? `${secs}s` : 'FAILED';
    this.out.write(`${ESC}34m=> ${ESC}0m${this.step.slice(0, (this.out.columns || 100) - 12)} ${ESC}2m${status}${ESC}0m\n`);
    // A failed step keeps its output on screen.
    if (!ok) for (const t of this.tail.slice(-TAIL * 3)) this.out.write(`   ${t}\n`);
    this.step = '';
    this.tail = [];
  }

  private print(l: string): void {
    this.clear();
    this.out.write(`${l}\n`);
    this.redraw();
  }

  private clear(): void {
    if (this.drawn) this.out.write(`${ESC}${this.drawn}A${ESC}0J`);
    this.drawn = 0;
  }

  private redraw(): void {
    if (!this.step) return;
    this.clear();
    const cols = (this.out.columns || 100) - 4;
    const secs = ((Date.now() - this.started) / 1000).toFixed(1);
    const lines = [
      `${ESC}33m=> ${ESC}0m${this.step.slice(0, cols - 10)} ${secs}s`,
      ...this.tail.slice(-TAIL).map((t) => `${ESC}2m > ${t.slice(0, cols)}${ESC}0m`),
    ];
    this.out.write(lines.join('\n') + '\n');
    this.drawn = lines.length;
  }

  end(ok: boolean): void {
    clearInterval(this.timer);
    if (this.partial) this.line(this.partial);
    this.finishStep(ok);
    const secs = ((Date.now() - this.t0) / 1000).toFixed(1);
    this.out.write(`${ESC}2mbuild ${ok ? 'finished' : 'failed'} in ${secs}s${ESC}0m\n`);
  }
}
