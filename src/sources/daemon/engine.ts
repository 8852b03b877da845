/**
 * A minimal Docker Engine API client over node:http: a unix socket or plain tcp:// (no TLS; a daemon
 * that needs DOCKER_TLS_VERIFY is not reachable this way).
 */
import { type IncomingMessage, request } from 'node:http';
import { BallastError } from '../../errors.js';

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

export interface EngineTarget {
  /** As the user wrote it, for messages. */
  host: string;
  socketPath?: string;
  hostname?: string;
  port?: number;
}

export function parseDockerHost(value: string): EngineTarget {
  if (value.startsWith('unix://')) {
    const socketPath = value.slice('unix://'.length);
    if (socketPath === '') throw badHost(value);
    return { host: value, socketPath };
  }
  if (value.startsWith('tcp://') || value.startsWith('http://')) {
    let url: URL;
    try {
      url = new URL(value.replace(/^tcp:/, 'http:'));
    } catch {
      throw badHost(value);
    }
    return {
      host: value,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port ? Number(url.port) : 2375,
    };
  }
  throw badHost(value);
}

function badHost(value: string): BallastError {
  return new BallastError('USAGE', `invalid Docker host "${value}"`, {
    hint: 'DOCKER_HOST is unix:///path/to/docker.sock or tcp://HOST:PORT (ssh:// and TLS are not supported)',
    exitCode: 2,
  });
}

/** options.dockerHost, then DOCKER_HOST, then the default socket. */
export function engineTarget(dockerHost: string | undefined): EngineTarget {
  const value = dockerHost || process.env.DOCKER_HOST || DEFAULT_DOCKER_HOST;
  return parseDockerHost(value);
}

export function unavailable(target: EngineTarget, cause: unknown): BallastError {
  const reason = (cause as NodeJS.ErrnoException)?.code ?? (cause as Error)?.message;
  return new BallastError(
    'DAEMON_UNAVAILABLE',
    `cannot reach the Docker daemon at ${target.host}${reason ? ` (${reason})` : ''}`,
    { cause, hint: 'start the Docker daemon, or set DOCKER_HOST to where it listens' },
  );
}

/** Sends a GET and resolves with the response once its status is known. Connection errors are DAEMON_UNAVAILABLE. */
export function engineGet(
  target: EngineTarget,
  path: string,
  signal?: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        method: 'GET',
        path,
        headers: { Host: 'docker', 'User-Agent': 'ballast' },
        ...(target.socketPath
          ? { socketPath: target.socketPath }
          : { host: target.hostname, port: target.port }),
        signal,
      },
      resolve,
    );
    req.on('error', (error) => {
      if ((error as Error).name === 'AbortError') reject(error);
      else reject(unavailable(target, error));
    });
    req.end();
  });
}

async function readBody(response: IncomingMessage, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of response) {
    length += (chunk as Buffer).length;
    if (length > limit) {
      response.destroy();
      throw new BallastError('HTTP', `the Docker daemon sent more than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** The daemon's error message from a JSON body, when it sent one. */
export async function errorMessage(response: IncomingMessage): Promise<string> {
  const body = (await readBody(response, 1024 * 1024).catch(() => Buffer.alloc(0))).toString('utf8');
  try {
    const doc = JSON.parse(body) as { message?: unknown };
    if (typeof doc.message === 'string') return doc.message;
  } catch {}
  return body.trim() || `HTTP ${response.statusCode}`;
}

/** GET a JSON document. `what` names the image for a 404. */
export async function engineJson<T>(target: EngineTarget, path: string, what: string): Promise<T> {
  const response = await engineGet(target, path);
  if (response.statusCode === 404) {
    response.resume();
    throw new BallastError('NOT_FOUND', `${what} is not in the Docker daemon at ${target.host}`, {
      hint: '`docker images` lists what the daemon holds; pull or build it first',
    });
  }
  if (response.statusCode !== 200) {
    throw new BallastError(
      'HTTP',
      `the Docker daemon at ${target.host} answered ${path} with ${await errorMessage(response)}`,
    );
  }
  const body = await readBody(response);
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch (error) {
    throw new BallastError('HTTP', `the Docker daemon at ${target.host} sent invalid JSON for ${path}`, {
      cause: error,
    });
  }
}
