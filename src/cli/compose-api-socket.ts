/**
 * The client's side of `use_api_socket` (compose/api-socket.ts): the
 * socket this CLI talks to, and the registry credentials it holds, as
 * docker's config.json (`auths`, each an `auth` of base64 user:password or
 * an identity token).
 */
import type { Project } from '../compose/types.ts';
import { usesApiSocket, withApiSocket } from '../compose/api-socket.ts';
import type { ApiClient } from './client.ts';

export async function withClientApiSocket(p: Project, client: () => Promise<ApiClient>): Promise<Project> {
  if (!usesApiSocket(p)) return p;
  // loaded only here: every other compose command does without it
  const { CredentialStore } = await import('../registry/credentials.ts');
  const auths: Record<string, { auth?: string; identitytoken?: string }> = {};
  for (const [key, a] of Object.entries(await new CredentialStore().all())) {
    auths[key] = a.identitytoken ? { identitytoken: a.identitytoken } : { auth: Buffer.from(`${a.username ?? ''}:${a.password ?? ''}`).toString('base64') };
  }
  return withApiSocket(p, (await client()).socketPath, `${JSON.stringify({ auths }, null, '\t')}\n`);
}
