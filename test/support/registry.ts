/**
 * The real registry server (distribution 2.8, `docker-registry serve`) for tests: started on a free
 * loopback port in a temp dir, with no auth, htpasswd basic auth, or bearer tokens from the suite's own
 * token server, optionally over TLS with a self-signed certificate. Plus skopeo and umoci helpers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startTokenServer, type TokenServer } from './token-server.js';

export type { TokenServer } from './token-server.js';

export interface RegistryOptions {
  auth?: 'none' | 'basic' | 'token';
  /** user -> password, for basic and token auth. */
  users?: Record<string, string>;
  tls?: boolean;
  tokenLifetimeSeconds?: number;
  tokenAlgorithm?: 'ES256' | 'RS256';
  /** The registry's log level; `info` shows why it refused a token. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`: what goes in front of a repository name. */
  host: string;
  /** `http://127.0.0.1:PORT` or `https://...`. */
  url: string;
  /** The temp dir holding config, storage, certificates. */
  dir: string;
  /** The storage root (`docker/registry/v2/...` lies below it). */
  storageDir: string;
  /** The CA (the self-signed certificate itself) when `tls` is on. */
  caFile?: string;
  /** A folder with `ca.crt`, for skopeo's `--cert-dir`. */
  certDir?: string;
  users: Record<string, string>;
  tokenServer?: TokenServer;
  /** The path of a blob's data file in the storage (to corrupt it in tests). */
  blobPath(digest: string): string;
  /** The registry's recent stderr/stdout, for failure messages. */
  logs(): string;
  stop(): Promise<void>;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; throws with its stderr when it exits non-zero. */
export function run(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) resolve({ stdout, stderr });
      else {
        const detail = stderr.trim() || stdout.trim();
        reject(new Error(`${command} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${detail}`));
      }
    });
    if (child.stdin !== null) {
      // A command that exits without reading stdin must not fail the test with EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(options.input);
    }
  });
}

/** The environment without REGISTRY_* variables: the registry reads them as config overrides. */
export function envWithoutRegistryVars(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('REGISTRY_')) env[key] = value;
  }
  return { ...env, ...extra };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// Registries a test forgot to stop must not outlive the test process.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function probe(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const send = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = send(`${url}/v2/`, { method: 'GET', rejectUnauthorized: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  const auth = options.auth ?? 'none';
  const users = options.users ?? {};
  const dir = await mkdtemp(join(tmpdir(), 'ballast-registry-'));
  const storageDir = join(dir, 'storage');
  await mkdir(storageDir);
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: options.logLevel ?? 'warn', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: storageDir }, delete: { enabled: true } },
    http: { addr: host, secret: randomBytes(16).toString('hex') } as Record<string, unknown>,
  };
  let caFile: string | undefined;
  let certDir: string | undefined;
  let tokenServer: TokenServer | undefined;
  try {
    if (options.tls) {
      certDir = join(dir, 'certs');
      await mkdir(certDir);
      const certFile = join(certDir, 'ca.crt');
      const keyFile = join(dir, 'tls-key.pem');
      await run('openssl', [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        '3',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ]);
      caFile = certFile;
      (config.http as Record<string, unknown>).tls = { certificate: certFile, key: keyFile };
    }
    if (auth === 'basic') {
      const lines: string[] = [];
      for (const [user, password] of Object.entries(users)) {
        lines.push((await run('htpasswd', ['-Bbn', user, password])).stdout.trim());
      }
      const file = join(dir, 'htpasswd');
      await writeFile(file, `${lines.join('\n')}\n`);
      config.auth = { htpasswd: { realm: 'basic-realm', path: file } };
    } else if (auth === 'token') {
      tokenServer = await startTokenServer({
        dir,
        service: 'ballast-test-registry',
        issuer: 'ballast-test-issuer',
        users,
        lifetimeSeconds: options.tokenLifetimeSeconds ?? 300,
        algorithm: options.tokenAlgorithm ?? 'ES256',
      });
      config.auth = {
        token: {
          realm: tokenServer.realm,
          service: tokenServer.service,
          issuer: tokenServer.issuer,
          rootcertbundle: tokenServer.certFile,
        },
      };
    }
    const configFile = join(dir, 'config.yml');
    // YAML is a superset of JSON.
    await writeFile(configFile, JSON.stringify(config, null, 2));

    const child = spawn('docker-registry', ['serve', configFile], {
      env: envWithoutRegistryVars(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-20000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let exited: string | undefined;
    const exit = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exited = signal ?? `exit ${code}`;
        live.delete(child);
        resolve();
      });
    });
    child.once('error', (error) => {
      exited = String(error);
    });

    const url = `${options.tls ? 'https' : 'http'}://${host}`;
    const deadline = Date.now() + 15000;
    for (;;) {
      if (exited !== undefined) throw new Error(`docker-registry exited (${exited}): ${output}`);
      try {
        await probe(url);
        break;
      } catch {
        if (Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new Error(`docker-registry did not answer on ${url} within 15 s: ${output}`);
        }
        await new Promise((r) => setTimeout(r, 40));
      }
    }

    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      if (exited === undefined) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exit;
        clearTimeout(timer);
      }
      await tokenServer?.close();
      await rm(dir, { recursive: true, force: true });
    };
    const registry: TestRegistry = {
      host,
      url,
      dir,
      storageDir,
      users,
      blobPath(digest: string) {
        const [algorithm, hex] = digest.split(':') as [string, string];
        return join(storageDir, 'docker/registry/v2/blobs', algorithm, hex.slice(0, 2), hex, 'data');
      },
      logs: () => output,
      stop,
    };
    if (caFile !== undefined) registry.caFile = caFile;
    if (certDir !== undefined) registry.certDir = certDir;
    if (tokenServer !== undefined) registry.tokenServer = tokenServer;
    return registry;
  } catch (error) {
    await tokenServer?.close();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

function skopeoEnv(): NodeJS.ProcessEnv {
  // Tests point REGISTRY_AUTH_FILE / DOCKER_CONFIG at their own files; skopeo must not read them.
  const env = envWithoutRegistryVars();
  delete env.DOCKER_CONFIG;
  return env;
}

/**
 * Copies an image into the registry with skopeo: `sourceRef` is any skopeo reference (`oci:DIR:TAG`,
 * `docker-archive:FILE`), `repoAndTag` is `foo:tag` inside the registry.
 */
export async function pushWithSkopeo(
  registry: Pick<TestRegistry, 'host' | 'users'> & { certDir?: string | undefined },
  sourceRef: string,
  repoAndTag: string,
  creds?: string,
): Promise<void> {
  const args = ['copy', '--insecure-policy', '--quiet', '--dest-tls-verify=false'];
  let credentials = creds;
  if (credentials === undefined) {
    const first = Object.entries(registry.users)[0];
    if (first !== undefined) credentials = `${first[0]}:${first[1]}`;
  }
  if (credentials !== undefined) args.push('--dest-creds', credentials);
  args.push(sourceRef, `docker://${registry.host}/${repoAndTag}`);
  await run('skopeo', args, { env: skopeoEnv() });
}

/** `skopeo inspect` parsed (`--raw` gives the manifest itself, `--config` the config). */
export async function skopeoInspect(
  ref: string,
  args: readonly string[] = [],
): Promise<Record<string, unknown>> {
  const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', ...args, ref], {
    env: skopeoEnv(),
  });
  return JSON.parse(stdout) as Record<string, unknown>;
}

export interface TinyImage {
  /** The OCI layout folder. */
  layout: string;
  tag: string;
  /** `oci:LAYOUT:TAG`, for skopeo. */
  ref: string;
}

export interface TinyImageOptions {
  tag?: string;
  /** One entry per layer, bottom first: path inside the image -> content. */
  layers?: Record<string, string | Buffer>[];
}

/**
 * Builds a small real OCI image with umoci (init, new, unpack --rootless, write files, repack), one
 * layer per entry of `layers`. Not `umoci insert`: its layers lack the tar end blocks.
 */
export async function buildTinyImage(layout: string, options: TinyImageOptions = {}): Promise<TinyImage> {
  const tag = options.tag ?? 'latest';
  const layers = options.layers ?? [{ 'hello.txt': 'hello from ballast\n' }];
  const image = `${layout}:${tag}`;
  let exists = true;
  try {
    await readdir(join(layout, 'blobs'));
  } catch {
    exists = false;
  }
  if (!exists) await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', image]);
  const work = await mkdtemp(join(tmpdir(), 'ballast-tiny-'));
  try {
    for (const [i, files] of layers.entries()) {
      const bundle = join(work, `bundle-${i}`);
      await run('umoci', ['unpack', '--rootless', '--image', image, bundle]);
      for (const [path, content] of Object.entries(files)) {
        const target = join(bundle, 'rootfs', path);
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, content);
      }
      await run('umoci', ['repack', '--image', image, bundle]);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { layout, tag, ref: `oci:${layout}:${tag}` };
}

/** Reads a stream to its end, counting and hashing (sha256) what went by. */
export async function streamDigest(
  stream: NodeJS.ReadableStream,
): Promise<{ bytes: number; digest: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    bytes += buffer.length;
    hash.update(buffer);
  }
  return { bytes, digest: `sha256:${hash.digest('hex')}` };
}
