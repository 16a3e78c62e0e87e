export { RegistryHosts, type RegistryHostsOptions, type Endpoint } from './hosts.ts';
export { type AuthConfig, CredentialStore, authKey, decodeAuthHeader, encodeAuthHeader, defaultConfigDir, DOCKER_HUB_AUTH_KEY } from './credentials.ts';
export { login, domainOfServerAddress } from './login.ts';
export { RepositoryClient, MANIFEST_ACCEPT } from './client.ts';
export { type ProgressMessage, humanSize, progressBar } from './progress.ts';
