// Builds the benchmark table from one run's rows (bench/lib.sh writes them)
// and hyperfine's JSON exports: medians per row and keel's ratio to each peer
// measured in the same run. Writes the whole run to a results file as well.
//
// usage: node bench/report.ts OUT_DIR RESULTS_FILE
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
}

function readRows(file: string): Row[] {
  const rows: Row[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.trim()) rows.push(JSON.parse(line) as Row);
  }
  return rows;
}

function withFigures(r: Row): Figure {
  if (!r.hyperfine) return { ...r, median: r.value };
  const res = (JSON.parse(fs.readFileSync(r.hyperfine, 'utf8')) as { results: HyperfineResult[] }).results[0];
  return { ...r, median: res.median, mean: res.mean, stddev: res.stddev, min: res.min, max: res.max, runs: res.times.length };
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
    out.push('| measure | engine (client) | median | mean ± σ | min…max | runs | keel ÷ this | target |');
    out.push('|---|---|---:|---:|---:|---:|---:|---|');
    const rows = figures.filter((f) => f.bench === bench);
    for (const group of [...new Set(rows.map((r) => r.group))]) {
      for (const r of rows.filter((x) => x.group === group)) {
        const who = cell(`${r.engine} (${r.client})`);
        if (r.error) {
          out.push(`| ${cell(group)} | ${who} | not available (${cell(r.error)}) | | | | | ${targetCell(r)} |`);
          continue;
        }
        const spread = r.mean !== undefined ? `${fmt(r.mean, r.unit)} ± ${fmt(r.stddev ?? 0, r.unit)}` : '';
        const range = r.min !== undefined ? `${fmt(r.min, r.unit)}…${fmt(r.max, r.unit)}` : '';
        const ratio = r.keelRatio === undefined ? '' : r.keelRatio === 1 && r.engine === 'keel' ? '1.00 (ref)' : r.keelRatio.toFixed(2);
        const note = r.note ? ` — ${r.note}` : '';
        out.push(`| ${cell(group + note)} | ${who} | ${fmt(r.median, r.unit)} | ${spread} | ${range} | ${r.runs ?? ''} | ${ratio} | ${targetCell(r)} |`);
      }
    }
  }
  return out.join('\n');
}

function main(argv: string[]): number {
  const [outDir, resultsFile] = argv;
  if (!outDir || !resultsFile) {
    process.stderr.write('usage: node bench/report.ts OUT_DIR RESULTS_FILE\n');
    return 2;
  }
  const figures = readRows(path.join(outDir, 'rows.jsonl')).map(withFigures);
  // Ratios only within one bench and group, so every pair was measured the same way in this run.
  for (const f of figures) {
    const ref = keelReference(figures.filter((g) => g.bench === f.bench && g.group === f.group));
    if (ref && ref.median !== undefined && f.median !== undefined && f.median > 0 && !f.error) {
      f.keelRatio = f === ref ? 1 : ref.median / f.median;
    }
  }
  const metaFile = path.join(outDir, 'meta.json');
  const meta: unknown = fs.existsSync(metaFile) ? JSON.parse(fs.readFileSync(metaFile, 'utf8')) : {};
  const text = table(figures);
  fs.mkdirSync(path.dirname(resultsFile), { recursive: true });
  fs.writeFileSync(resultsFile, JSON.stringify({ meta, rows: figures.map((f) => ({ ...f, hyperfine: undefined, samples: f.hyperfine ? samples(f.hyperfine) : undefined })), table: text }, null, 2) + '\n');
  process.stdout.write(`${text}\n\nkeel ÷ this < 1 means keel is faster (or smaller). Results: ${resultsFile}\n`);
  return 0;
}

function samples(file: string): number[] {
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { results: HyperfineResult[] }).results[0].times;
}

process.exitCode = main(process.argv.slice(2));
