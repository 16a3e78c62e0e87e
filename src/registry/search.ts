import { EngineError } from '../common/errors.ts';

/** One result of `docker search`, in the shape of dockerd's answer. */
export interface SearchResult {
  name: string;
  description: string;
  star_count: number;
  is_official: boolean;
  is_automated: boolean;
}

const INDEX = 'https://index.docker.io/v1/search';

/**
 * `docker search`: asks Docker Hub's index (v1 search API) as dockerd does.
 * Without a reachable index, the error names the request that failed, in
 * dockerd's words (`Get "<url>": <cause>`), and the API answers 500 as it does.
 * The answer is bounded (limit <= 100, body <= 4 MiB).
 */
export async function searchIndex(term: string, limit: number, signal?: AbortSignal): Promise<SearchResult[]> {
  if (!term) throw new EngineError('INVALID_ARGUMENT', 'search term must be given (term=)');
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new EngineError('INVALID_ARGUMENT', 'limit must be between 1 and 100');
  const url = `${INDEX}?q=${encodeURIComponent(term)}&n=${limit}`;
  const timeout = AbortSignal.timeout(15_000);
  let body: { results?: Partial<SearchResult>[] };
  try {
    const res = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout, redirect: 'follow' });
    if (!res.ok) throw new Error(`unexpected status ${res.status}`);
    const text = await res.text();
    if (text.length > 4 << 20) throw new Error('answer too large');
    body = JSON.parse(text) as typeof body;
  } catch (e) {
    const cause = (e as Error & { cause?: Error }).cause?.message ?? (e as Error).message;
    throw new EngineError('INTERNAL', `Get "${url}": ${cause}`);
  }
  return (body.results ?? []).slice(0, limit).map((r) => ({
    name: String(r.name ?? ''),
    description: String(r.description ?? ''),
    star_count: Number(r.star_count ?? 0),
    is_official: !!r.is_official,
    is_automated: !!r.is_automated,
  }));
}
