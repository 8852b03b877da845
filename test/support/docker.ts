/**
 * A private Docker daemon for tests: no network of its own, the vfs driver, its own data root, socket
 * and pid file. One daemon is shared by every test process of a checkout: each process takes a lease
 * under a lock, and the last one to release stops the daemon. A lease whose process died is pruned,
 * so a crashed run does not keep the daemon alive for ever (the next run reuses or restarts it).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root: dist/test/support/docker.js is three levels below it. */
export const REPO_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
export const CACHE_DIR = join(REPO_ROOT, '.cache');

export interface DockerDaemon {
  /** `unix:///.../docker.sock`: the value for DOCKER_HOST and for ballast's `dockerHost`. */
  host: string;
  socketPath: string;
  /** process.env plus DOCKER_HOST, for running the docker CLI or skopeo. */
  env: NodeJS.ProcessEnv;
  /** Runs the docker CLI against this daemon and returns its stdout. */
  docker(args: string[], options?: { cwd?: string; env?: NodeJS.ProcessEnv }): Promise<string>;
  /** Gives the lease back; the daemon stops when no other test process holds one. */
  release(): Promise<void>;
}

const STATE_DIR = join(CACHE_DIR, 'dockerd');
// Unix socket paths are limited to 107 bytes, so the socket and exec root live in a short temp path.
const RUN_DIR = join(
  tmpdir(),
  `ballast-dockerd-${createHash('sha256').update(REPO_ROOT).digest('hex').slice(0, 10)}`,
);
const SOCKET = join(RUN_DIR, 'docker.sock');
const PIDFILE = join(RUN_DIR, 'dockerd.pid');
const LEASES = join(STATE_DIR, 'leases');
const LOG = join(STATE_DIR, 'dockerd.log');

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Runs `fn` holding a lock directory. A lock whose holder is gone is broken. Used by the fixtures too,
 * since test files run in parallel processes.
 */
export async function withLock<T>(
  lockDir: string,
  fn: () => Promise<T>,
  timeoutMs = 15 * 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(lockDir, { recursive: false });
      await writeFile(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        await mkdir(join(lockDir, '..'), { recursive: true });
        continue;
      }
      if (code !== 'EEXIST') throw error;
      const holder = Number.parseInt(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => ''), 10);
      if (Number.isInteger(holder) && !alive(holder)) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (!Number.isInteger(holder)) {
        // The holder may be between mkdir and writing its pid; an old pid-less lock is stale.
        const age = await stat(lockDir).then(
          (s) => Date.now() - s.mtimeMs,
          () => 0,
        );
        if (age > 10_000) {
          await rm(lockDir, { recursive: true, force: true });
          continue;
        }
      }
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for the lock ${lockDir} (held by ${holder})`);
      await sleep(200);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

/** GET /_ping on a unix socket; true when the daemon answers OK. */
export function ping(socketPath: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((done) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => done(res.statusCode === 200 && body === 'OK'));
      res.on('error', () => done(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(false));
    req.end();
  });
}

function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin'])) {
    const candidate = join(dir, command);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

async function readPid(): Promise<number | undefined> {
  const pid = Number.parseInt(await readFile(PIDFILE, 'utf8').catch(() => ''), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

async function logTail(): Promise<string> {
  const text = await readFile(LOG, 'utf8').catch(() => '');
  return text.split('\n').slice(-15).join('\n');
}

async function startDaemon(): Promise<void> {
  const dockerd = which('dockerd');
  if (dockerd === undefined) {
    throw new Error(
      'dockerd is not installed (apt-get install -y docker.io): the docker-daemon tests need it',
    );
  }
  if (process.getuid?.() !== 0) {
    throw new Error('the test Docker daemon must run as root (it mounts and runs containers)');
  }
  const old = await readPid();
  if (old !== undefined && alive(old)) {
    // A daemon that holds the pid file but does not answer: give it a moment, then replace it.
    for (let i = 0; i < 50 && !(await ping(SOCKET)); i++) await sleep(200);
    if (await ping(SOCKET)) return;
    process.kill(old, 'SIGKILL');
    await sleep(500);
  }
  await rm(SOCKET, { force: true });
  await rm(PIDFILE, { force: true });
  await mkdir(join(STATE_DIR, 'data'), { recursive: true });
  await mkdir(join(RUN_DIR, 'exec'), { recursive: true });
  const log = openSync(LOG, 'a');
  const child: ChildProcess = spawn(
    dockerd,
    [
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--storage-driver=vfs',
      '--data-root',
      join(STATE_DIR, 'data'),
      '--exec-root',
      join(RUN_DIR, 'exec'),
      '--pidfile',
      PIDFILE,
      '-H',
      `unix://${SOCKET}`,
    ],
    // Detached: the daemon outlives this process while other test processes hold leases.
    { detached: true, stdio: ['ignore', log, log] },
  );
  let exited: number | null | undefined;
  child.on('exit', (code) => {
    exited = code;
  });
  child.unref();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (await ping(SOCKET)) return;
    if (exited !== undefined) break;
    await sleep(200);
  }
  if (exited === undefined && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  throw new Error(
    `the test Docker daemon did not start (${exited === undefined ? 'no answer on /_ping in 60 s' : `dockerd exited with ${exited}`}); its log ${LOG} ends:\n${await logTail()}`,
  );
}

async function stopDaemon(): Promise<void> {
  const pid = await readPid();
  if (pid === undefined || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(200);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

async function liveLeases(): Promise<string[]> {
  const names = await readdir(LEASES).catch(() => [] as string[]);
  const live: string[] = [];
  for (const name of names) {
    const pid = Number.parseInt(name, 10);
    if (Number.isInteger(pid) && alive(pid)) live.push(name);
    else await rm(join(LEASES, name), { force: true });
  }
  return live;
}

function runDocker(
  args: string[],
  env: NodeJS.ProcessEnv,
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((done, fail) => {
    execFile(
      'docker',
      args,
      { env: { ...env, ...options.env }, cwd: options.cwd, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) fail(new Error(`docker ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
        else done(stdout);
      },
    );
  });
}

let shared: Promise<Omit<DockerDaemon, 'release'>> | undefined;
let holders = 0;

/**
 * Starts (or joins) the test daemon. Call `release()` in an `after` hook. Throws with what is missing
 * when dockerd cannot run here: the tests that need it fail rather than skip.
 */
export async function startDocker(): Promise<DockerDaemon> {
  holders++;
  shared ??= acquire();
  let daemon: Omit<DockerDaemon, 'release'>;
  try {
    daemon = await shared;
  } catch (error) {
    holders--;
    shared = undefined;
    throw error;
  }
  let released = false;
  return {
    ...daemon,
    release: async () => {
      if (released) return;
      released = true;
      if (--holders > 0) return;
      shared = undefined;
      await withLock(join(STATE_DIR, 'lock'), async () => {
        await rm(join(LEASES, String(process.pid)), { force: true });
        if ((await liveLeases()).length === 0) await stopDaemon();
      });
    },
  };
}

async function acquire(): Promise<Omit<DockerDaemon, 'release'>> {
  await mkdir(LEASES, { recursive: true });
  await withLock(join(STATE_DIR, 'lock'), async () => {
    if (!(await ping(SOCKET))) await startDaemon();
    await writeFile(join(LEASES, String(process.pid)), '');
  });
  const host = `unix://${SOCKET}`;
  const env = { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '0' };
  return { host, socketPath: SOCKET, env, docker: (args, options) => runDocker(args, env, options) };
}
