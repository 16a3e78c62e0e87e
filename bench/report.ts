// Builds the benchmark table from one run's rows (bench/lib.sh writes them)
// and hyperfine's JSON exports: medians per row and keel's ratio to each peer
// measured in the same run, with the spread of that ratio over the rounds
// (lib.sh's measure_rotated alternates the engines run by run, so round r of
// keel and round r of a peer ran side by side: their ratio is one paired
// sample). Writes the whole run to a results file as well, compares it with
// the committed baseline (bench/baseline.json) and, with --save-baseline,
// makes this run's figures the baseline.
//
// usage: node bench/report.ts OUT_DIR RESULTS_FILE [--baseline FILE] [--save-baseline FILE]
import fs from 'node:fs';
import path from 'node:path';

/** One line of rows.jsonl. Time rows point at a hyperfine export; others carry a value. */
interface Row {
  bench: string;
  group: string;
  engine: string;
  client: string;
  unit: string;
  command?: string;
  hyperfine?: string;
  value?: number;
  error?: string;
  target?: number | null;
  note?: string;
}

interface HyperfineResult {
  command: string;
  mean: number;
  stddev: number | null;
  median: number;
  min: number;
  max: number;
  times: number[];
  /** measure_rotated's merged export: the times of each round, in round order. */
  rounds?: number[][];
}

/** The spread of keel's ratio to a row over the paired rounds. */
interface PairedRatio {
  n: number;
  median: number;
  q1: number;
  q3: number;
  min: number;
  max: number;
}

/** One row of bench/baseline.json. */
interface BaselineRow {
  bench: string;
  group: string;
  engine: string;
  client: string;
  unit: string;
  median: number;
  keelRatio?: number;
  pairedRatio?: PairedRatio;
}

interface Baseline {
  meta: unknown;
  rows: BaselineRow[];
}

interface Figure extends Row {
  median?: number;
  mean?: number;
  stddev?: number | null;
  min?: number;
  max?: number;
  runs?: number;
  /** keel's figure divided by this row's, within the same group. */
  keelRatio?: number;
  /** keel's round median ÷ this row's round median, over the rounds both ran. */
  pairedRatio?: PairedRatio;
  rounds?: number[][];
  /** this run's median ÷ the baseline's, and the baseline's keel ratio. */
  vsBaseline?: { median: number; keelRatio?: number };
}

function readRows(file: string): Row[] {
  const rows: Row[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.trim()) rows.push(JSON.parse(line) as Row);
  }
  return rows;
}

/** Quantile q of sorted values (linear interpolation, as numpy's default). */
function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function median(values: number[]): number {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
}

function withFigures(r: Row): Figure {
  if (!r.hyperfine) return { ...r, median: r.value };
  const res = (JSON.parse(fs.readFileSync(r.hyperfine, 'utf8')) as { results: HyperfineResult[] }).results[0];
  // Computed from the samples: measure_rotated's merged export has only times and rounds.
  const t = res.times;
  const mean = t.reduce((a, b) => a + b, 0) / t.length;
  const stddev = t.length > 1 ? Math.sqrt(t.reduce((a, b) => a + (b - mean) ** 2, 0) / (t.length - 1)) : null;
  return { ...r, median: median(t), mean, stddev, min: Math.min(...t), max: Math.max(...t), runs: t.length, rounds: res.rounds };
}

/** keel's ratio to ROW per round (each round's median), over the rounds both have. */
function pairedRatio(keel: Figure, row: Figure): PairedRatio | undefined {
  if (!keel.rounds || !row.rounds) return undefined;
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(keel.rounds.length, row.rounds.length); i++) {
    const k = keel.rounds[i];
    const o = row.rounds[i];
    if (k.length && o.length && median(o) > 0) ratios.push(median(k) / median(o));
  }
  if (ratios.length < 2) return undefined;
  ratios.sort((a, b) => a - b);
  return {
    n: ratios.length,
    median: quantile(ratios, 0.5),
    q1: quantile(ratios, 0.25),
    q3: quantile(ratios, 0.75),
    min: ratios[0],
    max: ratios[ratios.length - 1],
  };
}

/** The row keel is compared by: keel through the docker CLI, else keel's own CLI. */
function keelReference(rows: Figure[]): Figure | undefined {
  const ok = rows.filter((r) => r.engine === 'keel' && r.median !== undefined && !r.error);
  return ok.find((r) => r.client === 'docker CLI') ?? ok[0];
}

function fmt(v: number | undefined, unit: string): string {
  if (v === undefined) return '—';
  if (unit === 's') return v < 1 ? `${(v * 1000).toFixed(1)} ms` : `${v.toFixed(2)} s`;
  if (unit === 'MB') return `${v.toFixed(2)} MB`;
  return `${v} ${unit}`;
}

/** Markdown table cells cannot hold a bare pipe or a newline. */
function cell(s: string): string {
  return s.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function targetCell(r: Figure): string {
  if (r.target === null || r.target === undefined) return '';
  const met = r.median !== undefined && !r.error && r.median <= r.target;
  return `≤ ${fmt(r.target, r.unit)} ${r.median === undefined || r.error ? '' : met ? '✓' : '✗'}`.trim();
}

function table(figures: Figure[]): string {
  const out: string[] = [];
  const benches = [...new Set(figures.map((f) => f.bench))];
  for (const bench of benches) {
    out.push(`\n### ${bench}\n`);
    out.push(
      '| measure | engine (client) | median | mean ± σ | min…max | runs | keel ÷ this | paired keel ÷ this: median [IQR] (min…max, n) | vs baseline | target |',
    );
    out.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
    const rows = figures.filter((f) => f.bench === bench);
    for (const group of [...new Set(rows.map((r) => r.group))]) {
      for (const r of rows.filter((x) => x.group === group)) {
        const who = cell(`${r.engine} (${r.client})`);
        if (r.error) {
          out.push(`| ${cell(group)} | ${who} | not available (${cell(r.error)}) | | | | | | | ${targetCell(r)} |`);
          continue;
        }
        const spread = r.mean !== undefined ? `${fmt(r.mean, r.unit)} ± ${fmt(r.stddev ?? 0, r.unit)}` : '';
        const range = r.min !== undefined ? `${fmt(r.min, r.unit)}…${fmt(r.max, r.unit)}` : '';
        const ratio = r.keelRatio === undefined ? '' : r.keelRatio === 1 && r.engine === 'keel' ? '1.00 (ref)' : r.keelRatio.toFixed(2);
        const note = r.note ? ` — ${r.note}` : '';
        const p = r.pairedRatio;
        const paired = p ? `${p.median.toFixed(2)} [${p.q1.toFixed(2)}–${p.q3.toFixed(2)}] (${p.min.toFixed(2)}…${p.max.toFixed(2)}, ${p.n})` : '';
        out.push(
          `| ${cell(group + note)} | ${who} | ${fmt(r.median, r.unit)} | ${spread} | ${range} | ${r.runs ?? ''} | ${ratio} | ${paired} | ${baselineCell(r)} | ${targetCell(r)} |`,
        );
      }
    }
  }
  return out.join('\n');
}

/** "median now ÷ baseline median; keel ratio then": across runs, so machine load moves the first; the ratio moves less. */
function baselineCell(r: Figure): string {
  const b = r.vsBaseline;
  if (!b) return '';
  return `×${b.median.toFixed(2)}${b.keelRatio === undefined ? '' : ` (ratio then ${b.keelRatio.toFixed(2)})`}`;
}

const key = (r: { bench: string; group: string; engine: string; client: string }): string => JSON.stringify([r.bench, r.group, r.engine, r.client]);

function readBaseline(file: string | undefined): Baseline | undefined {
  if (!file || !fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Baseline;
}

/** This run's figures replace the baseline's rows of the benches it ran; other benches' rows stay. */
function saveBaseline(file: string, old: Baseline | undefined, meta: unknown, figures: Figure[]): void {
  const ran = new Set(figures.map((f) => f.bench));
  const rows: BaselineRow[] = (old?.rows ?? []).filter((r) => !ran.has(r.bench));
  for (const f of figures) {
    if (f.error || f.median === undefined) continue;
    rows.push({
      bench: f.bench,
      group: f.group,
      engine: f.engine,
      client: f.client,
      unit: f.unit,
      median: f.median,
      keelRatio: f.keelRatio,
      pairedRatio: f.pairedRatio,
    });
  }
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify({ meta, rows }, null, 2) + '\n');
  fs.renameSync(tmp, file);
}

function main(argv: string[]): number {
  const positional: string[] = [];
  let baselineFile: string | undefined;
  let saveTo: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--baseline') baselineFile = argv[++i];
    else if (argv[i] === '--save-baseline') saveTo = argv[++i];
    else positional.push(argv[i]);
  }
  const [outDir, resultsFile] = positional;
  if (!outDir || !resultsFile) {
    process.stderr.write('usage: node bench/report.ts OUT_DIR RESULTS_FILE [--baseline FILE] [--save-baseline FILE]\n');
    return 2;
  }
  const figures = readRows(path.join(outDir, 'rows.jsonl')).map(withFigures);
  // Ratios only within one bench and group, so every pair was measured the same way in this run.
  for (const f of figures) {
    const ref = keelReference(figures.filter((g) => g.bench === f.bench && g.group === f.group));
    if (ref && ref.median !== undefined && f.median !== undefined && f.median > 0 && !f.error) {
      f.keelRatio = f === ref ? 1 : ref.median / f.median;
      if (f !== ref) f.pairedRatio = pairedRatio(ref, f);
    }
  }
  const baseline = readBaseline(baselineFile);
  const byKey = new Map((baseline?.rows ?? []).map((b) => [key(b), b]));
  for (const f of figures) {
    const b = byKey.get(key(f));
    if (b && f.median !== undefined && !f.error && b.median > 0 && b.unit === f.unit) f.vsBaseline = { median: f.median / b.median, keelRatio: b.keelRatio };
  }
  const metaFile = path.join(outDir, 'meta.json');
  const meta: unknown = fs.existsSync(metaFile) ? JSON.parse(fs.readFileSync(metaFile, 'utf8')) : {};
  const text = table(figures);
  fs.mkdirSync(path.dirname(resultsFile), { recursive: true });
  fs.writeFileSync(
    resultsFile,
    JSON.stringify(
      { meta, rows: figures.map((f) => ({ ...f, hyperfine: undefined, samples: f.hyperfine ? samples(f.hyperfine) : undefined })), table: text },
      null,
      2,
    ) + '\n',
  );
  const base = baseline
    ? `vs baseline: this median ÷ the baseline's (${baselineFile}, ${JSON.stringify((baseline.meta as { date?: string }).date ?? '')}); across runs, so host load moves it: compare the keel ratios.`
    : 'no baseline to compare with.';
  process.stdout.write(
    `${text}\n\nkeel ÷ this < 1 means keel is faster (or smaller). Paired: keel's round median ÷ this row's, round by round (the engines alternate). ${base}\nResults: ${resultsFile}\n`,
  );
  if (saveTo) {
    saveBaseline(saveTo, baseline, meta, figures);
    process.stdout.write(`baseline saved: ${saveTo}\n`);
  }
  return 0;
}

function samples(file: string): number[] {
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { results: HyperfineResult[] }).results[0].times;
}

process.exitCode = main(process.argv.slice(2));
