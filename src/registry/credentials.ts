/**
 * Where registry credentials come from, in this order: `--creds`, `--authfile` (alone when given),
 * then `REGISTRY_AUTH_FILE`, then `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. In a config
 * file: `credHelpers` for the registry, then `credsStore`, then `auths`, matched as docker matches keys.
 * Helpers speak the docker-credential-NAME protocol. Secrets are never put in messages.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { BallastError, redact } from '../errors.js';

export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth refresh token (docker's `identitytoken`), traded at the token realm for access tokens. */
  identityToken?: string;
  /** A bearer token to send as is (`registrytoken`). */
  registryToken?: string;
  /** Where they came from, for messages: `--creds`, `auth file /x/config.json`, `credential helper ...`. */
  source: string;
}

export interface CredentialLookupOptions {
  /** `user:password`. */
  creds?: string | undefined;
  /** An auth file that replaces the default chain. */
  authFile?: string | undefined;
  /** Defaults to process.env (HOME, DOCKER_CONFIG, REGISTRY_AUTH_FILE, PATH). */
  env?: NodeJS.ProcessEnv;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

interface ConfigFile {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [key: string]: unknown;
}

/** The key docker uses for Docker Hub in config files and with helpers. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';
const DOCKER_HUB_HOSTS = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** Splits `user:password` at the first colon; a user alone is an error asking for the password. */
export function parseCreds(text: string): { username: string; password: string } {
  const colon = text.indexOf(':');
  if (colon < 0) {
    throw new BallastError('CREDENTIALS', `--creds "${text}" has no password`, {
      hint: 'write --creds USER:PASSWORD',
      exitCode: 2,
    });
  }
  const username = text.slice(0, colon);
  const password = text.slice(colon + 1);
  if (username === '') {
    throw new BallastError('CREDENTIALS', '--creds has an empty user name', {
      hint: 'write --creds USER:PASSWORD',
      exitCode: 2,
    });
  }
  return { username, password };
}

/** `https://host/v1/`, `http://host`, `host/v2/` -> `host` (docker's convertToHostname). */
export function authKeyHost(key: string): string {
  let rest = key.replace(/^[a-z]+:\/\//i, '');
  const slash = rest.indexOf('/');
  if (slash >= 0) rest = rest.slice(0, slash);
  return rest.toLowerCase();
}

function isDockerHub(registry: string): boolean {
  return DOCKER_HUB_HOSTS.has(registry.toLowerCase());
}

/** The server URL given to credential helpers and used as the `auths` key when storing. */
export function serverUrlFor(registry: string): string {
  return isDockerHub(registry) ? DOCKER_HUB_AUTH_KEY : registry;
}

function matchKey<T>(map: Record<string, T> | undefined, registry: string): T | undefined {
  if (map === undefined) return undefined;
  const wanted = isDockerHub(registry) ? 'docker.io' : registry.toLowerCase();
  const exact = map[serverUrlFor(registry)];
  if (exact !== undefined) return exact;
  for (const [key, value] of Object.entries(map)) {
    const host = authKeyHost(key);
    if (host === wanted || (isDockerHub(wanted) && DOCKER_HUB_HOSTS.has(host))) return value;
  }
  return undefined;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKER_CONFIG) return join(env.DOCKER_CONFIG, 'config.json');
  return join(env.HOME || homedir(), '.docker', 'config.json');
}

async function readConfig(file: string, required: boolean): Promise<ConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !required) return undefined;
    throw new BallastError('CREDENTIALS', `cannot read the auth file ${file}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error('not an object');
    return parsed as ConfigFile;
  } catch {
    // The parser's message can quote the file, secrets included: say only where.
    throw new BallastError('CREDENTIALS', `the auth file ${file} is not valid JSON`);
  }
}

function fromEntry(entry: AuthEntry, source: string, registry: string): Credentials | undefined {
  const out: Credentials = { source };
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new BallastError(
        'CREDENTIALS',
        `the ${source} entry for ${registry} has an invalid "auth" value`,
        {
          hint: 'it must be base64 of USER:PASSWORD; log in again',
        },
      );
    }
    out.username = decoded.slice(0, colon);
    out.password = decoded.slice(colon + 1);
  } else if (typeof entry.username === 'string' && entry.username !== '') {
    out.username = entry.username;
    if (typeof entry.password === 'string') out.password = entry.password;
  }
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '')
    out.identityToken = entry.identitytoken;
  if (typeof entry.registrytoken === 'string' && entry.registrytoken !== '')
    out.registryToken = entry.registrytoken;
  if (out.username === undefined && out.identityToken === undefined && out.registryToken === undefined) {
    return undefined;
  }
  return out;
}

interface HelperResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runHelper(
  helper: string,
  action: 'get' | 'store' | 'erase',
  input: string,
  env: NodeJS.ProcessEnv,
): Promise<HelperResult> {
  const program = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, [action], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new BallastError(
          'CREDENTIALS',
          error.code === 'ENOENT'
            ? `the credential helper ${program} is not installed (not found on PATH)`
            : `cannot run the credential helper ${program}: ${error.message}`,
          {
            hint: 'install it, or remove it from credHelpers / credsStore in the docker config',
            cause: error,
          },
        ),
      );
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    // A helper that exits without reading stdin must not crash us with EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/** Asks `docker-credential-HELPER get`; undefined when it has none for the registry. */
export async function credentialsFromHelper(
  helper: string,
  registry: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Credentials | undefined> {
  const program = `docker-credential-${helper}`;
  const result = await runHelper(helper, 'get', serverUrlFor(registry), env);
  if (result.code !== 0) {
    const text = `${result.stdout}\n${result.stderr}`;
    if (/credentials not found/i.test(text)) return undefined;
    throw new BallastError(
      'CREDENTIALS',
      `the credential helper ${program} failed for ${registry}: ${redact(text.trim()).slice(0, 300)}`,
    );
  }
  let parsed: { Username?: unknown; Secret?: unknown };
  try {
    parsed = JSON.parse(result.stdout) as typeof parsed;
  } catch {
    throw new BallastError(
      'CREDENTIALS',
      `the credential helper ${program} did not answer JSON for ${registry}`,
    );
  }
  const username = typeof parsed.Username === 'string' ? parsed.Username : '';
  const secret = typeof parsed.Secret === 'string' ? parsed.Secret : '';
  if (secret === '') return undefined;
  const source = `credential helper ${program}`;
  // Docker's convention: the user "<token>" means the secret is an identity token.
  if (username === '<token>' || username === '') return { identityToken: secret, source };
  return { username, password: secret, source };
}

async function fromConfig(
  config: ConfigFile,
  file: string,
  registry: string,
  env: NodeJS.ProcessEnv,
): Promise<Credentials | undefined> {
  const helper = matchKey(config.credHelpers, registry);
  if (typeof helper === 'string' && helper !== '') return credentialsFromHelper(helper, registry, env);
  if (typeof config.credsStore === 'string' && config.credsStore !== '') {
    const stored = await credentialsFromHelper(config.credsStore, registry, env);
    if (stored !== undefined) return stored;
  }
  const entry = matchKey(config.auths, registry);
  if (entry === undefined || typeof entry !== 'object' || entry === null) return undefined;
  return fromEntry(entry, `auth file ${file}`, registry);
}

/**
 * The credentials for `registry` (`docker.io`, `ghcr.io`, `127.0.0.1:5000`), or undefined for
 * anonymous access.
 */
export async function findCredentials(
  registry: string,
  options: CredentialLookupOptions = {},
): Promise<Credentials | undefined> {
  const env = options.env ?? process.env;
  if (options.creds !== undefined) return { ...parseCreds(options.creds), source: '--creds' };
  const files: { file: string; required: boolean }[] = [];
  if (options.authFile !== undefined) files.push({ file: options.authFile, required: true });
  else {
    if (env.REGISTRY_AUTH_FILE) files.push({ file: env.REGISTRY_AUTH_FILE, required: false });
    files.push({ file: dockerConfigPath(env), required: false });
  }
  for (const { file, required } of files) {
    const config = await readConfig(file, required);
    if (config === undefined) continue;
    const found = await fromConfig(config, file, registry, env);
    if (found !== undefined) return found;
  }
  return undefined;
}

export interface StoreOptions {
  /** The file to write; the default chain's docker config otherwise. */
  authFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

/**
 * Saves credentials as `docker login` does: through the registry's credential helper or the
 * credsStore when the config names one, else base64 in `auths`. Returns where they went.
 */
export async function storeCredentials(
  registry: string,
  credentials: { username: string; password: string },
  options: StoreOptions = {},
): Promise<string> {
  const env = options.env ?? process.env;
  const file = options.authFile ?? dockerConfigPath(env);
  const config = (await readConfig(file, false)) ?? {};
  const helper = matchKey(config.credHelpers, registry) ?? config.credsStore;
  if (typeof helper === 'string' && helper !== '') {
    const input = JSON.stringify({
      ServerURL: serverUrlFor(registry),
      Username: credentials.username,
      Secret: credentials.password,
    });
    const result = await runHelper(helper, 'store', input, env);
    if (result.code !== 0) {
      throw new BallastError(
        'CREDENTIALS',
        `the credential helper docker-credential-${helper} could not store credentials for ${registry}: ${redact(
          `${result.stdout} ${result.stderr}`.trim(),
          [credentials.password],
        ).slice(0, 300)}`,
      );
    }
    config.auths = { ...config.auths, [serverUrlFor(registry)]: {} };
  } else {
    const auths: Record<string, AuthEntry> = { ...config.auths };
    // Replace any spelling of the same registry's key.
    for (const key of Object.keys(auths)) {
      if (authKeyHost(key) === authKeyHost(serverUrlFor(registry))) delete auths[key];
    }
    auths[serverUrlFor(registry)] = {
      auth: Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64'),
    };
    config.auths = auths;
  }
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
  await rename(temp, file);
  return typeof helper === 'string' && helper !== '' ? `credential helper docker-credential-${helper}` : file;
}

/**
 * The registry a user names to `login`/`logout` as ballast keys it: `https://index.docker.io/v1/`,
 * `index.docker.io` and `registry-1.docker.io` are `docker.io`; a scheme and path are dropped.
 */
export function loginRegistryName(input: string): string {
  const host = authKeyHost(input.trim());
  if (host === '') {
    throw new BallastError('USAGE', `"${input}" is not a registry name`, {
      hint: 'name a registry host, e.g. ghcr.io or 127.0.0.1:5000',
      exitCode: 2,
    });
  }
  return isDockerHub(host) ? 'docker.io' : host;
}

/** The file `login` writes to: `--authfile`, then `REGISTRY_AUTH_FILE` (as skopeo does), then docker's. */
export function loginAuthFile(authFile: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return authFile ?? (env.REGISTRY_AUTH_FILE || dockerConfigPath(env));
}

/**
 * Removes stored credentials as `docker logout` does: `erase` through the registry's helper or the
 * credsStore, and the `auths` entry under any spelling of the registry. `removed` is false when
 * there was nothing to remove.
 */
export async function eraseCredentials(
  registry: string,
  options: StoreOptions = {},
): Promise<{ removed: boolean; where: string }> {
  const env = options.env ?? process.env;
  const file = options.authFile ?? dockerConfigPath(env);
  const config = await readConfig(file, false);
  if (config === undefined) return { removed: false, where: file };
  let removed = false;
  let where = file;
  const helper = matchKey(config.credHelpers, registry) ?? config.credsStore;
  if (typeof helper === 'string' && helper !== '') {
    where = `credential helper docker-credential-${helper}`;
    const result = await runHelper(helper, 'erase', serverUrlFor(registry), env);
    if (result.code === 0) removed = true;
    else if (!/not found/i.test(`${result.stdout} ${result.stderr}`)) {
      throw new BallastError(
        'CREDENTIALS',
        `the credential helper docker-credential-${helper} could not erase the credentials for ${registry}: ${redact(
          `${result.stdout} ${result.stderr}`.trim(),
        ).slice(0, 300)}`,
      );
    }
  }
  const auths: Record<string, AuthEntry> = { ...config.auths };
  const wanted = authKeyHost(serverUrlFor(registry));
  let changed = false;
  for (const key of Object.keys(auths)) {
    const host = authKeyHost(key);
    if (host === wanted || (isDockerHub(registry) && DOCKER_HUB_HOSTS.has(host))) {
      delete auths[key];
      changed = true;
    }
  }
  if (changed) {
    if (where === file) removed = true;
    config.auths = auths;
    const temp = `${file}.${process.pid}.tmp`;
    await writeFile(temp, `${JSON.stringify(config, null, '\t')}\n`, { mode: 0o600 });
    await rename(temp, file);
  }
  return { removed, where };
}
