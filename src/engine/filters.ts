import { EngineError } from '../common/errors.ts';
import type { ImageRecord } from '../images/store.ts';

/** Docker's list filters, normalized: key → accepted values. */
export type Filters = Record<string, string[]>;

/**
 * Decodes the `filters` query parameter. The docker CLI sends a map
 * (`{"label":{"a=b":true}}`), docker-compose and old clients a list
 * (`{"label":["a=b"]}`); docker-compose sends booleans as `True`/`False`.
 */
export function parseFilters(raw: string | undefined | null): Filters {
  if (!raw) return {};
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new EngineError('INVALID_ARGUMENT', `invalid filter: ${raw.slice(0, 200)} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new EngineError('INVALID_ARGUMENT', 'invalid filter: expected a JSON object');
  const out: Filters = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (Array.isArray(val)) out[k] = val.map(String);
    else if (val && typeof val === 'object')
      out[k] = Object.entries(val as Record<string, unknown>)
        .filter(([, on]) => on === true || on === 'true' || on === 'True')
        .map(([x]) => x);
    else throw new EngineError('INVALID_ARGUMENT', `invalid filter "${k}"`);
  }
  return out;
}

/** Parses `--filter key=value` flags into the same shape. */
export function filtersFromFlags(flags: string[]): Filters {
  const out: Filters = {};
  for (const f of flags) {
    const i = f.indexOf('=');
    if (i <= 0) throw new EngineError('INVALID_ARGUMENT', `bad format of filter (expected name=value): ${f}`);
    (out[f.slice(0, i).toLowerCase()] ??= []).push(f.slice(i + 1));
  }
  return out;
}

export function boolFilter(values: string[] | undefined, key: string): boolean | undefined {
  if (!values?.length) return undefined;
  const v = values[values.length - 1]!.toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new EngineError('INVALID_ARGUMENT', `invalid filter '${key}=${values[0]}'`);
}

export function labelsMatch(labels: Record<string, string> | undefined | null, wanted: string[] | undefined): boolean {
  if (!wanted?.length) return true;
  return wanted.every((w) => {
    const i = w.indexOf('=');
    const k = i < 0 ? w : w.slice(0, i);
    if (!labels || !(k in labels)) return false;
    return i < 0 || labels[k] === w.slice(i + 1);
  });
}

/** Glob match for `reference=` filters (docker uses path.Match: `*` does not cross `/`). */
export function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .replace(/[.+^${}()|\\]/g, '\\$&')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]') +
      '$',
  );
  return re.test(s);
}

interface FilterableImage {
  record: ImageRecord;
  config: { config?: { Labels?: Record<string, string> }; created?: string };
  repoTags: string[];
  containers: number;
}

const IMAGE_FILTERS = new Set(['dangling', 'label', 'before', 'since', 'reference', 'until']);

export function filterImages<T extends FilterableImage>(views: T[], f: Filters, resolve: (ref: string) => ImageRecord | undefined): T[] {
  for (const k of Object.keys(f)) if (!IMAGE_FILTERS.has(k)) throw new EngineError('INVALID_ARGUMENT', `invalid filter '${k}'`);
  const dangling = boolFilter(f.dangling, 'dangling');
  const created = (v: FilterableImage) => (v.config.created ? Date.parse(v.config.created) : 0);
  const bound = (refs: string[] | undefined) => {
    if (!refs?.length) return undefined;
    const rec = resolve(refs[0]!);
    if (!rec) throw new EngineError('NOT_FOUND', `No such image: ${refs[0]}`);
    return views.find((v) => v.record.id === rec.id);
  };
  const before = bound(f.before);
  const since = bound(f.since);
  return views.filter((v) => {
    if (dangling !== undefined && (v.repoTags.length === 0) !== dangling) return false;
    if (!labelsMatch(v.config.config?.Labels, f.label)) return false;
    if (before && created(v) >= created(before)) return false;
    if (since && created(v) <= created(since)) return false;
    if (f.reference?.length && !f.reference.some((p) => v.repoTags.some((t) => globMatch(p, t) || globMatch(p, t.replace(/:[^:/]+$/, ''))))) return false;
    if (f.until?.length) {
      const t = Number(f.until[0]) ? Number(f.until[0]) * 1000 : Date.parse(f.until[0]!);
      if (created(v) > t) return false;
    }
    return true;
  });
}
