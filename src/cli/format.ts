import { humanDuration as humanDurationMs } from '../common/units.ts';

/**
 * Output formatting in docker's style: tab-aligned tables (3 spaces of
 * padding), human sizes in decimal units, "2 hours ago", and a subset of Go
 * templates for --format (`{{.Field}}`, `{{json .}}`, `table …`, `\t`).
 */

/** docker's table writer: Go's tabwriter with minwidth 10 (top uses 20) and padding 3. */
export function table(headers: string[], rows: string[][], minWidth = 10): string {
  const widths = headers.map((h, i) => Math.max(minWidth, ...[h, ...rows.map((r) => r[i] ?? '')].map((c) => [...c].length + 3)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - [...c].length)))
      .join('')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** docker's units.HumanSize: 3 significant digits, decimal units. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

/** docker's units.HumanDuration, of seconds. */
export function humanDuration(seconds: number): string {
  return humanDurationMs(seconds * 1000);
}

export function ago(unixSeconds: number): string {
  return `${humanDuration(Date.now() / 1000 - unixSeconds)} ago`;
}

type Row = Record<string, unknown>;

/** Renders rows with a docker --format template, or returns undefined for the default table. */
export function renderTemplate(format: string, rows: Row[]): string {
  const isTable = format.startsWith('table');
  const tpl = (isTable ? format.slice(5).trimStart() : format).replace(/\\t/g, '\t').replace(/\\n/g, '\n');
  const render = (row: Row) =>
    tpl.replace(/\{\{\s*(json\s+)?\.([\w.]*)\s*\}\}/g, (_m, json: string | undefined, field: string) => {
      const v = field ? field.split('.').reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Row)[k] : undefined), row) : row;
      if (json) return JSON.stringify(v ?? null);
      return v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    });
  const lines = rows.map(render);
  if (!isTable) return lines.map((l) => l + '\n').join('');
  const header = tpl.replace(/\{\{\s*(?:json\s+)?\.([\w.]*)\s*\}\}/g, (_m, f: string) => headerName(f));
  const cells = [header, ...lines].map((l) => l.split('\t'));
  return table(cells[0]!, cells.slice(1));
}

function headerName(field: string): string {
  const known: Record<string, string> = { ID: 'IMAGE ID', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', Repository: 'REPOSITORY' };
  return known[field] ?? field.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}
