/**
 * The distribution API client for one registry: manifests, blobs (streamed, verified, resumed with
 * Range), tags (paginated), behind auth, retries, the HTTPS-then-HTTP rule for loopback and
 * `--insecure` registries, and error bodies turned into one clear message.
 */
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { BallastError, redact } from '../errors.js';
import { type Descriptor, digestLike, isDigest, sha256, VerifyingStream } from '../image/digest.js';
import { MANIFEST_ACCEPT, MediaType } from '../image/media-types.js';
import type { BlobOptions, StoredManifest } from '../sources/types.js';
import { Authenticator, describeCredentials, parseWwwAuthenticate, repositoryScope } from './auth.js';
import { type Credentials, findCredentials } from './credentials.js';
import {
  displayUrl,
  type HttpResponse,
  HttpTransport,
  type Method,
  NetworkFailure,
  speaksTls,
} from './http.js';
import { backoffDelay, parseRetryAfter, type RetryPolicy, retryPolicy, sleep } from './retry.js';

export interface RegistryClientOptions {
  /** `user:password`. */
  creds?: string | undefined;
  /** Credentials to use as they are, instead of looking them up (what `login` checks). */
  credentials?: Credentials | undefined;
  authFile?: string | undefined;
  /** true, or the registries (`host[:port]`) where TLS may be skipped or left unverified. */
  insecure?: boolean | string[] | undefined;
  /** A PEM file of CA certificates to trust besides the default roots. */
  caFile?: string | undefined;
  onWarning?: ((message: string) => void) | undefined;
  retry?: Partial<RetryPolicy> | undefined;
  /** Idle socket timeout in ms (60 s). */
  timeoutMs?: number | undefined;
  userAgent?: string | undefined;
  /** The environment credentials are looked up in (process.env). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Manifests larger than this are refused (4 MiB). */
  maxManifestBytes?: number | undefined;
  /** How many times one blob download is resumed after the connection drops (5). */
  maxBlobResumes?: number | undefined;
  /** `n=` of tag list pages (1000). */
  tagsPageSize?: number | undefined;
}

export interface ManifestHead {
  digest: string | undefined;
  mediaType: string | undefined;
  size: number | undefined;
}

export interface RegistryRequest {
  method: Method;
  /** A path below the API root (`/v2/...`) or an absolute URL (upload locations). */
  path: string;
  headers?: Record<string, string>;
  /**
   * A stream body is sent once: on a 401, 429 or 5xx the response is returned (after the token is
   * dropped) for the caller to retry with a new stream, since this one cannot be rewound.
   */
  body?: Buffer | string | Readable;
  /** The length of a stream body. */
  contentLength?: number;
  /** `Expect: 100-continue` for a stream body: an early refusal leaves the stream unread. */
  expectContinue?: boolean;
  /** The token scopes this request needs. */
  scopes: string[];
  /** Retry 429 and 5xx answers of a POST too (starting an upload session is safe to repeat). */
  idempotent?: boolean;
  /**
   * Ask for a new token once more when the registry refuses one just issued: an upload in progress
   * is worth saving from a token that expired early. Other requests fail at once.
   */
  refreshRefusedToken?: boolean;
  signal?: AbortSignal | undefined;
}

const DEFAULT_MAX_MANIFEST = 4 * 1024 * 1024;

function isStreamBody(body: RegistryRequest['body']): body is Readable {
  return body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body);
}
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);

/** The host serving the API for a registry name: Docker Hub's is not `docker.io`. */
export function registryApiHost(registry: string): string {
  return registry === 'docker.io' || registry === 'index.docker.io' ? 'registry-1.docker.io' : registry;
}

function hostname(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon >= 0 && host.indexOf(':') === colon ? host.slice(0, colon) : host;
}

/** `localhost`, `127.0.0.0/8` and `::1`, as docker treats them: insecure allowed. */
export function isLoopback(host: string): boolean {
  const name = hostname(host).toLowerCase();
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

function isInsecure(registry: string, insecure: boolean | string[] | undefined): boolean {
  if (insecure === true) return true;
  if (!Array.isArray(insecure)) return false;
  return insecure.some((h) => {
    const entry = h.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
    return entry === registry || entry === hostname(registry) || entry === registryApiHost(registry);
  });
}

/** `errors[].code: message` from a distribution error body, or the start of a plain-text body. */
export function describeErrorBody(body: Buffer): { codes: string[]; text: string } {
  const raw = body.toString('utf8').trim();
  if (raw === '') return { codes: [], text: '' };
  try {
    const json = JSON.parse(raw) as { errors?: { code?: unknown; message?: unknown; detail?: unknown }[] };
    if (Array.isArray(json.errors)) {
      const codes = json.errors.map((e) => String(e.code ?? 'UNKNOWN'));
      const text = json.errors
        .map((e) => {
          const message = typeof e.message === 'string' ? e.message : '';
          return message === '' ? String(e.code ?? 'UNKNOWN') : `${String(e.code ?? 'UNKNOWN')}: ${message}`;
        })
        .join('; ');
      return { codes, text };
    }
  } catch {
    // Not JSON: a proxy's HTML page, say.
  }
  return { codes: [], text: raw.replace(/\s+/g, ' ').slice(0, 200) };
}

async function readLimited(response: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const declared = Number(response.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    response.body.destroy();
    throw new BallastError(
      'MANIFEST_INVALID',
      `${what} is ${declared} bytes, more than the ${limit} allowed`,
    );
  }
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of response.body) {
    length += (chunk as Buffer).length;
    if (length > limit) {
      response.body.destroy();
      throw new BallastError('MANIFEST_INVALID', `${what} is larger than the ${limit} bytes allowed`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, length);
}

async function readErrorBody(response: HttpResponse): Promise<Buffer> {
  try {
    return await readLimited(response, 64 * 1024, 'error body');
  } catch {
    return Buffer.alloc(0);
  }
}

function mediaTypeOf(bytes: Buffer, contentType: string | undefined): string {
  let declared: unknown;
  try {
    declared = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
  } catch {
    declared = undefined;
  }
  if (typeof declared === 'string' && declared !== '') return declared;
  const header = contentType?.split(';')[0]?.trim();
  if (header !== undefined && header !== '' && header !== 'application/json' && header !== 'text/plain') {
    return header;
  }
  return MediaType.ociManifest;
}

function isTransient(error: unknown): boolean {
  if (error instanceof NetworkFailure) return error.kind === 'reset' || error.kind === 'timeout';
  const code = (error as { code?: string } | undefined)?.code;
  return (
    code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT' || code === 'ERR_STREAM_PREMATURE_CLOSE'
  );
}

export interface UploadSession {
  repository: string;
  /** Where the next PATCH or PUT goes (the last Location, made absolute). */
  location: URL;
  /** `OCI-Chunk-Min-Length`: the registry wants chunked uploads with chunks at least this big. */
  minChunkLength: number | undefined;
}

export interface BlobUploadOptions {
  /** A session from a mount that did not happen (202), used instead of starting one. */
  session?: UploadSession | undefined;
  /** A new stream of the whole blob, for starting over after the first one was partly sent. */
  reopen?: (() => Promise<Readable>) | undefined;
  /** Force chunked (true) or monolithic (false); otherwise chosen by size and the registry. */
  chunked?: boolean | undefined;
  /** Blobs larger than this go in chunks (512 MiB). */
  chunkThreshold?: number | undefined;
  /** Bytes per PATCH (8 MiB; at least the registry's minimum). Two chunks are held at a time. */
  chunkSize?: number | undefined;
  signal?: AbortSignal | undefined;
}

export interface BlobUploadResult {
  chunked: boolean;
  /** Upload sessions used (1 when nothing had to start over). */
  attempts: number;
}

export const DEFAULT_CHUNK_THRESHOLD = 512 * 1024 * 1024;
export const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;

/** An upload step that failed in a way a new attempt can fix (a dropped connection, 429, 5xx). */
class UploadRetry extends Error {
  constructor(
    readonly error: BallastError,
    readonly delayMs?: number,
  ) {
    super(error.message);
  }
}

function isTransientUploadError(error: unknown): boolean {
  if (!BallastError.is(error) || error.code !== 'NETWORK') return false;
  const cause = error.cause;
  return cause instanceof NetworkFailure && ['reset', 'timeout', 'refused'].includes(cause.kind);
}

/** Cuts a stream into buffers of `size` bytes (the last one shorter). */
class ChunkReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private rest: Buffer | undefined;
  private done = false;
  constructor(
    stream: Readable,
    private readonly size: number,
  ) {
    this.iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async read(): Promise<Buffer | undefined> {
    const parts: Buffer[] = [];
    let length = 0;
    if (this.rest !== undefined) {
      parts.push(this.rest);
      length = this.rest.length;
      this.rest = undefined;
    }
    while (length < this.size && !this.done) {
      const next = await this.iterator.next();
      if (next.done) {
        this.done = true;
        break;
      }
      parts.push(next.value);
      length += next.value.length;
    }
    if (length === 0) return undefined;
    const all = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, length);
    if (all.length > this.size) {
      this.rest = all.subarray(this.size);
      return all.subarray(0, this.size);
    }
    return all;
  }

  close(): void {
    if (!this.done) void this.iterator.return?.();
  }
}

export class RegistryClient {
  /** The registry as named (`docker.io`, `127.0.0.1:5000`). */
  readonly registry: string;
  /** Where the API lives (`registry-1.docker.io`). */
  readonly apiHost: string;
  private readonly options: RegistryClientOptions;
  private readonly http: HttpTransport;
  private readonly auth: Authenticator;
  private readonly retry: RetryPolicy;
  private readonly allowHttp: boolean;
  private scheme: 'https:' | 'http:' = 'https:';
  /** Set once the registry has answered: only then is a refused connection worth retrying. */
  private answered = false;
  /** For a registry that may speak plain HTTP: the TLS probe, run once before the first request. */
  private probe: Promise<void> | undefined;
  private rateLimitWarned = false;

  constructor(registry: string, options: RegistryClientOptions = {}) {
    this.registry = registry;
    this.apiHost = registryApiHost(registry);
    this.options = options;
    this.retry = retryPolicy(options.retry);
    const insecure = isInsecure(registry, options.insecure);
    this.allowHttp = insecure || isLoopback(this.apiHost);
    let ca: string | undefined;
    if (options.caFile !== undefined) {
      try {
        ca = readFileSync(options.caFile, 'utf8');
      } catch (error) {
        throw new BallastError(
          'USAGE',
          `cannot read the CA file ${options.caFile}: ${(error as Error).message}`,
          {
            exitCode: 2,
          },
        );
      }
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
        throw new BallastError('USAGE', `the CA file ${options.caFile} holds no PEM certificate`, {
          exitCode: 2,
        });
      }
    }
    this.http = new HttpTransport({
      insecureHost: insecure ? this.apiHost : undefined,
      ca,
      timeoutMs: options.timeoutMs ?? 60_000,
      userAgent: options.userAgent ?? 'ballast',
    });
    this.auth = new Authenticator({
      registry,
      fetch: (request) => this.sendWithRetries({ ...request, path: request.url.href, scopes: [] }, false),
      credentials: async () =>
        options.credentials ??
        findCredentials(registry, {
          creds: options.creds,
          authFile: options.authFile,
          env: options.env ?? process.env,
        }),
    });
  }

  /** The number of token requests made so far. */
  get tokenFetches(): number {
    return this.auth.tokenFetches;
  }

  credentials(): Promise<Credentials | undefined> {
    return this.auth.credentials();
  }

  private url(path: string): URL {
    if (/^https?:\/\//.test(path)) return new URL(path);
    return new URL(`${this.scheme}//${this.apiHost}${path}`);
  }

  private retryable(method: Method, error: unknown): boolean {
    if (!(error instanceof NetworkFailure)) return false;
    if (error.kind === 'refused') return this.answered;
    if (method === 'POST' || method === 'PATCH') return false;
    return (
      error.kind === 'reset' ||
      error.kind === 'timeout' ||
      (error.kind === 'dns' && error.code === 'EAI_AGAIN')
    );
  }

  private networkError(error: NetworkFailure): BallastError {
    const where = displayUrl(error.url);
    const host = error.url.host;
    switch (error.kind) {
      case 'tls-certificate':
        return new BallastError(
          'TLS',
          `the TLS certificate of ${host} did not verify (${error.code ?? 'error'}: ${error.message})`,
          {
            hint: `give --ca-file FILE with the CA that signed it, or --insecure ${host} to skip verification`,
            cause: error,
          },
        );
      case 'tls-protocol':
        return new BallastError('TLS', `${host} did not speak TLS on ${where} (${error.message})`, {
          hint: `if it is a plain-HTTP registry, name it with --insecure ${host}`,
          cause: error,
        });
      case 'refused':
        return new BallastError('NETWORK', `cannot connect to ${where}: connection refused`, {
          hint: 'is the registry running, and is the host and port right?',
          cause: error,
        });
      case 'dns':
        return new BallastError(
          'NETWORK',
          `cannot resolve ${error.url.hostname} (${error.code ?? 'DNS error'})`,
          {
            cause: error,
          },
        );
      case 'timeout':
        return new BallastError('NETWORK', `${where} did not answer in time`, { cause: error });
      default:
        return new BallastError('NETWORK', `the connection to ${where} failed: ${error.message}`, {
          cause: error,
        });
    }
  }

  private checkRateLimit(response: HttpResponse): void {
    if (this.rateLimitWarned || this.options.onWarning === undefined) return;
    const remainingHeader = response.headers['ratelimit-remaining'];
    if (typeof remainingHeader !== 'string') return;
    const [remainingText, remainingWindow] = remainingHeader.split(';');
    const remaining = Number(remainingText);
    const limitHeader = response.headers['ratelimit-limit'];
    const [limitText, limitWindow] = typeof limitHeader === 'string' ? limitHeader.split(';') : [];
    const limit = Number(limitText);
    if (!Number.isFinite(remaining)) return;
    const low = remaining < 10 || (Number.isFinite(limit) && limit > 0 && remaining < limit / 10);
    if (!low) return;
    this.rateLimitWarned = true;
    const windowSeconds = Number((remainingWindow ?? limitWindow ?? '').replace(/^\s*w=/, ''));
    const window =
      Number.isFinite(windowSeconds) && windowSeconds > 0
        ? ` in the ${windowSeconds >= 3600 ? `${+(windowSeconds / 3600).toFixed(1)} h` : `${windowSeconds} s`} window`
        : '';
    const of = Number.isFinite(limit) ? ` of ${limit}` : '';
    this.options.onWarning(
      `${this.registry} pull rate limit nearly used up: ${remaining}${of} pulls left${window}; log in for a higher limit`,
    );
  }

  /**
   * One request with retries (network errors, 429, 5xx), the HTTPS-to-HTTP fallback, and, when
   * `authenticate`, registry auth. The response may have any status; the body is the caller's.
   */
  private async sendWithRetries(request: RegistryRequest, authenticate: boolean): Promise<HttpResponse> {
    let retries = 0;
    let waited = 0;
    let authTries = 0;
    let scopes = request.scopes;
    const wait = async (ms: number, reason: () => BallastError): Promise<void> => {
      if (retries >= this.retry.attempts - 1 || waited + ms > this.retry.maxTotalWaitMs) throw reason();
      retries++;
      waited += ms;
      await sleep(ms, request.signal);
    };
    if (this.allowHttp && this.scheme === 'https:') {
      this.probe ??= speaksTls(this.apiHost).then((tls) => {
        // Loopback and --insecure registries may speak plain HTTP: docker's fallback.
        if (tls === false) this.scheme = 'http:';
      });
      await this.probe;
    }
    for (;;) {
      const url = this.url(request.path);
      const headers: Record<string, string> = { ...request.headers };
      let sent: { header: string | undefined; fresh: boolean } = { header: undefined, fresh: false };
      const ours = url.host === this.apiHost;
      if (authenticate && ours) {
        sent = await this.auth.authorization(scopes);
        if (sent.header !== undefined) headers.authorization = sent.header;
      }
      let response: HttpResponse;
      try {
        const message = { method: request.method, url, headers, signal: request.signal };
        response = await this.http.fetch(
          request.body === undefined
            ? message
            : {
                ...message,
                body: request.body,
                ...(request.contentLength === undefined ? {} : { contentLength: request.contentLength }),
                ...(request.expectContinue ? { expectContinue: true } : {}),
              },
        );
      } catch (error) {
        if (!(error instanceof NetworkFailure)) throw error;
        const relative = !/^https?:\/\//.test(request.path);
        if (error.kind === 'tls-protocol' && relative && url.protocol === 'https:' && this.allowHttp) {
          // Loopback and --insecure registries may speak plain HTTP: docker's fallback.
          this.scheme = 'http:';
          continue;
        }
        if (this.retryable(request.method, error) && !isStreamBody(request.body)) {
          await wait(backoffDelay(retries, this.retry), () => this.networkError(error));
          continue;
        }
        throw this.networkError(error);
      }
      if (ours) {
        this.answered = true;
        this.checkRateLimit(response);
      }
      if (response.status === 401 && authenticate && ours) {
        const challenges = parseWwwAuthenticate(response.headers['www-authenticate']);
        const body = await readErrorBody(response);
        const basicSent = sent.header?.startsWith('Basic ') === true;
        const bearer = challenges.find((c) => c.scheme === 'bearer');
        // A just-issued token refused as invalid (expired early) gets one more try on uploads.
        const refreshable =
          request.refreshRefusedToken === true && authTries < 1 && bearer?.params.error === 'invalid_token';
        if (sent.header !== undefined && ((sent.fresh && !refreshable) || basicSent || authTries >= 2)) {
          // Do not keep a refused token for the next request.
          this.auth.invalidate(scopes);
          throw await this.authFailed(request, challenges, body);
        }
        if (!this.auth.accept(challenges)) {
          throw new BallastError(
            'AUTH_FAILED',
            `${this.registry} answered 401 to ${request.method} ${displayUrl(url)} without a challenge ballast can answer`,
          );
        }
        // A token the registry refused (expired early, revoked) is fetched again, once.
        if (sent.header !== undefined) this.auth.invalidate(scopes);
        const wanted = challenges.find((c) => c.scheme === 'bearer')?.params.scope;
        if (wanted !== undefined) {
          const extra = wanted.split(' ').filter((s) => s !== '' && !scopes.includes(s));
          if (extra.length > 0 && scopes.length === 0) scopes = extra;
        }
        authTries++;
        if (isStreamBody(request.body)) {
          // The stream may be partly read: the caller retries with the token now dropped.
          return response;
        }
        continue;
      }
      if (isStreamBody(request.body)) return response;
      const repeatable =
        request.idempotent === true || (request.method !== 'POST' && request.method !== 'PATCH');
      if (RETRY_STATUSES.has(response.status) && repeatable) {
        const after = parseRetryAfter(
          typeof response.headers['retry-after'] === 'string' ? response.headers['retry-after'] : undefined,
        );
        const status = response.status;
        response.body.resume();
        const delay = after ?? backoffDelay(retries, this.retry);
        await wait(
          delay,
          () =>
            new BallastError(
              'HTTP',
              `${this.registry} answered ${status} to ${request.method} ${displayUrl(url)} ${retries + 1} times${
                after === undefined ? '' : ` (it asked to wait ${Math.round(after / 1000)} s)`
              }`,
              {
                hint:
                  status === 429
                    ? 'the registry is rate limiting; wait, or log in for a higher limit'
                    : undefined,
              },
            ),
        );
        continue;
      }
      return response;
    }
  }

  private async authFailed(
    request: RegistryRequest,
    challenges: ReturnType<typeof parseWwwAuthenticate>,
    body: Buffer,
  ): Promise<BallastError> {
    const credentials = await this.auth.credentials();
    const challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges[0];
    const detail = describeErrorBody(body).text;
    const reason = challenge?.params.error ?? (detail || '401 Unauthorized');
    const target = request.scopes[0]?.split(':')[1];
    const what = target === undefined ? this.registry : `${this.registry}/${target}`;
    const push = request.scopes.some((scope) => scope.split(':').pop()?.split(',').includes('push'));
    if (push && credentials === undefined) {
      return new BallastError(
        'AUTH_FAILED',
        `pushing to ${what} requires authentication (${reason}); no credentials were sent (none in --creds, auth files or credential helpers)`,
        { hint: `log in with \`ballast login ${this.registry}\`, or give --dest-creds USER:PASSWORD` },
      );
    }
    if (push && credentials !== undefined && reason === 'insufficient_scope') {
      return new BallastError(
        'DENIED',
        redact(
          `${this.registry} denied the push to ${what} (insufficient_scope): ${describeCredentials(credentials)}, and they may not push there`,
          [credentials.password, credentials.identityToken, credentials.registryToken],
        ),
        { hint: 'check that the account may push to this repository' },
      );
    }
    if (credentials === undefined) {
      return new BallastError(
        'AUTH_FAILED',
        `${what} requires authentication (${reason}); no credentials were sent (none in --creds, auth files or credential helpers); the repository may also not exist`,
        { hint: 'give --creds USER:PASSWORD, or log in with `docker login`' },
      );
    }
    // The message never holds the secret; redact() guards against a registry echoing it back.
    const message = `authentication to ${this.registry} failed for ${what} (${reason}): ${describeCredentials(credentials)}`;
    return new BallastError(
      'AUTH_FAILED',
      redact(message, [credentials.password, credentials.identityToken, credentials.registryToken]),
      { hint: 'check the user name and password, or log in again' },
    );
  }

  /**
   * Checks the credentials against the registry, as `docker login` does: `GET /v2/` answered through
   * its challenge (a token request with the credentials for Bearer, the Basic header otherwise).
   */
  async verifyCredentials(options: { signal?: AbortSignal } = {}): Promise<void> {
    const response = await this.request({ method: 'GET', path: '/v2/', scopes: [], signal: options.signal });
    if (response.status !== 200) throw await this.failure(response, `the API root of ${this.registry}`);
    response.body.resume();
  }

  /** Sends an authenticated request with retries; the response may have any status. */
  request(request: RegistryRequest): Promise<HttpResponse> {
    return this.sendWithRetries(request, true);
  }

  /** Turns a response that is not a success into a BallastError. Consumes the body. */
  async failure(
    response: HttpResponse,
    what: string,
    notFound?: (codes: string[]) => string,
  ): Promise<BallastError> {
    const body = response.body.readableEnded ? Buffer.alloc(0) : await readErrorBody(response);
    const { codes, text } = describeErrorBody(body);
    const status = response.status;
    const detail = text === '' ? '' : ` (${text})`;
    if (status === 404) {
      return new BallastError('NOT_FOUND', notFound ? notFound(codes) : `not found: ${what}${detail}`);
    }
    if (status === 403) {
      return new BallastError(
        'DENIED',
        `${this.registry} denied access to ${what} (403${text === '' ? '' : `: ${text}`})`,
        {
          hint: 'check that the account may read this repository',
        },
      );
    }
    if (status === 401) {
      return new BallastError(
        'AUTH_FAILED',
        `${this.registry} refused ${what} (401${text === '' ? '' : `: ${text}`})`,
      );
    }
    return new BallastError('HTTP', `${this.registry} answered ${status} for ${what}${detail}`);
  }

  private name(repository: string): string {
    return `${this.registry}/${repository}`;
  }

  private async repositoryExists(repository: string): Promise<boolean | undefined> {
    try {
      const response = await this.request({
        method: 'GET',
        path: `/v2/${repository}/tags/list?n=1`,
        scopes: [repositoryScope(repository, ['pull'])],
      });
      response.body.resume();
      if (response.status === 200) return true;
      if (response.status === 404) return false;
    } catch {
      // Only a better message was at stake.
    }
    return undefined;
  }

  private async manifestNotFound(
    repository: string,
    reference: string,
    codes: string[],
  ): Promise<BallastError> {
    const byDigest = reference.includes(':');
    const full = `${this.name(repository)}${byDigest ? '@' : ':'}${reference}`;
    let repoMissing = codes.includes('NAME_UNKNOWN');
    if (!repoMissing && !byDigest) repoMissing = (await this.repositoryExists(repository)) === false;
    if (repoMissing) {
      return new BallastError(
        'NOT_FOUND',
        `repository unknown: ${this.name(repository)} (asked for ${full})`,
        {
          hint: 'check the repository name and registry',
        },
      );
    }
    return new BallastError(
      'NOT_FOUND',
      byDigest
        ? `manifest unknown: ${full} (no manifest with that digest in ${this.name(repository)})`
        : `manifest unknown: ${full} (the tag "${reference}" does not exist in ${this.name(repository)})`,
      byDigest ? {} : { hint: `list the tags with \`ballast tags ${this.name(repository)}\`` },
    );
  }

  /**
   * The manifest a tag or digest names, as stored. Its digest is computed over the bytes; a digest
   * reference and a sha256 Docker-Content-Digest header must match them.
   */
  async getManifest(
    repository: string,
    reference: string,
    options: { signal?: AbortSignal; accept?: readonly string[] } = {},
  ): Promise<StoredManifest & { size: number }> {
    const byDigest = reference.includes(':');
    if (byDigest && !isDigest(reference)) {
      throw new BallastError('REFERENCE_INVALID', `"${reference}" is not a digest ballast can verify`, {
        exitCode: 2,
      });
    }
    const full = `${this.name(repository)}${byDigest ? '@' : ':'}${reference}`;
    const limit = this.options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST;
    for (let attempt = 0; ; attempt++) {
      const response = await this.request({
        method: 'GET',
        path: `/v2/${repository}/manifests/${reference}`,
        headers: { accept: (options.accept ?? MANIFEST_ACCEPT).join(', ') },
        scopes: [repositoryScope(repository, ['pull'])],
        signal: options.signal,
      });
      if (response.status !== 200) {
        const codes: string[] = [];
        const error = await this.failure(response, `manifest ${full}`, (c) => {
          codes.push(...c);
          return '';
        });
        if (error.code === 'NOT_FOUND') throw await this.manifestNotFound(repository, reference, codes);
        throw error;
      }
      let bytes: Buffer;
      try {
        bytes = await readLimited(response, limit, `manifest ${full}`);
      } catch (error) {
        // The connection broke inside a small body: ask again, within the retry budget.
        if (isTransient(error) && attempt < this.retry.attempts - 1) {
          await sleep(backoffDelay(attempt, this.retry), options.signal);
          continue;
        }
        if (BallastError.is(error)) throw error;
        throw new BallastError('NETWORK', `reading manifest ${full} failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
      const digest = byDigest ? digestLike(reference, bytes) : sha256(bytes);
      if (byDigest && digest !== reference) {
        throw new BallastError(
          'DIGEST_MISMATCH',
          `manifest ${full} does not match its digest: the registry sent bytes with digest ${digest}`,
        );
      }
      const header = response.headers['docker-content-digest'];
      if (typeof header === 'string' && header.startsWith('sha256:')) {
        const actual = sha256(bytes);
        if (header !== actual) {
          throw new BallastError(
            'DIGEST_MISMATCH',
            `manifest ${full} does not match the Docker-Content-Digest ${header} the registry sent (the bytes are ${actual})`,
          );
        }
      }
      const contentType = response.headers['content-type'];
      return { bytes, digest, mediaType: mediaTypeOf(bytes, contentType), size: bytes.length };
    }
  }

  /** What HEAD says about a manifest (digest, type, size), or undefined when it does not exist. */
  async headManifest(
    repository: string,
    reference: string,
    options: { signal?: AbortSignal; actions?: readonly string[] } = {},
  ): Promise<ManifestHead | undefined> {
    const response = await this.request({
      method: 'HEAD',
      path: `/v2/${repository}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      scopes: [repositoryScope(repository, options.actions ?? ['pull'])],
      refreshRefusedToken: options.actions?.includes('push') === true,
      signal: options.signal,
    });
    response.body.resume();
    if (response.status === 404) return undefined;
    const full = `${this.name(repository)}${reference.includes(':') ? '@' : ':'}${reference}`;
    if (response.status !== 200) throw await this.failure(response, `manifest ${full}`);
    const digest = response.headers['docker-content-digest'];
    const type = response.headers['content-type']?.split(';')[0]?.trim();
    const length = Number(response.headers['content-length']);
    return {
      digest: typeof digest === 'string' && isDigest(digest) ? digest : undefined,
      mediaType: type === undefined || type === '' ? undefined : type,
      size: Number.isFinite(length) ? length : undefined,
    };
  }

  private async openBlob(
    repository: string,
    digest: string,
    offset: number,
    signal: AbortSignal | undefined,
  ): Promise<HttpResponse> {
    const response = await this.request({
      method: 'GET',
      path: `/v2/${repository}/blobs/${digest}`,
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      scopes: [repositoryScope(repository, ['pull'])],
      signal,
    });
    if (response.status === 200 || (response.status === 206 && offset > 0)) return response;
    throw await this.failure(
      response,
      `blob ${digest} of ${this.name(repository)}`,
      () => `blob unknown: ${digest} in ${this.name(repository)}`,
    );
  }

  /**
   * A blob as a stream verified against the descriptor's digest and size. When the connection drops
   * mid-body the download resumes with `Range: bytes=N-` into the same verifier; a server that
   * ignores the range has its first N bytes skipped. The whole blob is never held in memory.
   */
  async getBlob(
    repository: string,
    descriptor: Pick<Descriptor, 'digest' | 'size'>,
    options: BlobOptions = {},
  ): Promise<Readable> {
    const { digest, size } = descriptor;
    if (!isDigest(digest)) {
      throw new BallastError('MANIFEST_INVALID', `"${digest}" is not a digest ballast can verify`);
    }
    const what = `blob ${digest} of ${this.name(repository)}`;
    const verifier = new VerifyingStream({ digest, size }, what);
    const maxResumes = this.options.maxBlobResumes ?? 5;
    const signal = options.signal;
    let received = 0;
    let resumes = 0;
    let current: HttpResponse | undefined;
    let finished = false;

    const pump = (response: HttpResponse, offset: number): void => {
      current = response;
      let skip = 0;
      if (offset > 0) {
        if (response.status === 200) skip = offset;
        else {
          const start = Number(/^bytes\s+(\d+)-/.exec(String(response.headers['content-range'] ?? ''))?.[1]);
          if (!Number.isFinite(start) || start > offset) {
            response.body.destroy();
            verifier.destroy(
              new BallastError(
                'HTTP',
                `${this.registry} answered a range request for ${what} from byte ${offset} with "${String(
                  response.headers['content-range'],
                )}"`,
              ),
            );
            return;
          }
          skip = offset - start;
        }
      }
      let ended = false;
      let broken = false;
      const body = response.body;
      body.on('data', (chunk: Buffer) => {
        let data = chunk;
        if (skip > 0) {
          if (data.length <= skip) {
            skip -= data.length;
            return;
          }
          data = data.subarray(skip);
          skip = 0;
        }
        received += data.length;
        if (!verifier.write(data)) {
          body.pause();
          verifier.once('drain', () => body.resume());
        }
        options.onProgress?.({ bytes: received, total: size });
      });
      const onBreak = (error?: Error) => {
        if (ended || broken || finished) return;
        broken = true;
        body.removeAllListeners('data');
        body.destroy();
        resume(error);
      };
      body.on('end', () => {
        ended = true;
        if (finished) return;
        if (received < size) {
          // The server ended the body early: treat it as a dropped connection.
          ended = false;
          onBreak(new Error(`the body ended after ${received} of ${size} bytes`));
          return;
        }
        finished = true;
        verifier.end();
      });
      body.on('error', onBreak);
      body.on('close', () => {
        if (!ended) onBreak(new Error('the connection closed mid-body'));
      });
    };

    const resume = (cause: Error | undefined): void => {
      if (verifier.destroyed) return;
      if (signal?.aborted) {
        verifier.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
        return;
      }
      if (resumes >= maxResumes) {
        finished = true;
        verifier.destroy(
          new BallastError(
            'NETWORK',
            `downloading ${what} broke off after ${received} of ${size} bytes (resumed ${resumes} times): ${
              cause?.message ?? 'connection lost'
            }`,
            { cause },
          ),
        );
        return;
      }
      resumes++;
      const offset = received;
      sleep(Math.min(backoffDelay(resumes - 1, this.retry), 2000), signal)
        .then(() => this.openBlob(repository, digest, offset, signal))
        .then(
          (response) => {
            if (verifier.destroyed) response.body.destroy();
            else pump(response, offset);
          },
          (error: unknown) => {
            finished = true;
            verifier.destroy(error instanceof Error ? error : new Error(String(error)));
          },
        );
    };

    // A consumer that stops early must not leave the socket streaming.
    verifier.on('close', () => {
      if (current !== undefined && !current.body.readableEnded) current.body.destroy();
    });

    const first = await this.openBlob(repository, digest, 0, signal);
    pump(first, 0);
    return verifier;
  }

  /** Every tag of a repository, following `Link: <...>; rel="next"` pages. */
  async listTags(
    repository: string,
    options: { pageSize?: number; signal?: AbortSignal } = {},
  ): Promise<string[]> {
    const pageSize = options.pageSize ?? this.options.tagsPageSize ?? 1000;
    const tags: string[] = [];
    let path = `/v2/${repository}/tags/list?n=${pageSize}`;
    const seen = new Set<string>();
    for (let page = 0; page < 100_000; page++) {
      seen.add(path);
      const response = await this.request({
        method: 'GET',
        path,
        scopes: [repositoryScope(repository, ['pull'])],
        signal: options.signal,
      });
      if (response.status !== 200) {
        throw await this.failure(
          response,
          `the tags of ${this.name(repository)}`,
          () => `repository unknown: ${this.name(repository)}`,
        );
      }
      const body = await readLimited(response, 16 * 1024 * 1024, `the tag list of ${this.name(repository)}`);
      let json: { tags?: unknown };
      try {
        json = JSON.parse(body.toString('utf8')) as { tags?: unknown };
      } catch {
        throw new BallastError('HTTP', `${this.registry} sent a tag list for ${repository} that is not JSON`);
      }
      if (Array.isArray(json.tags)) {
        for (const tag of json.tags) if (typeof tag === 'string') tags.push(tag);
      }
      const link = response.headers.link;
      const next = /<([^>]+)>\s*;[^,]*rel="?next"?/i.exec(
        Array.isArray(link) ? link.join(', ') : (link ?? ''),
      );
      if (next?.[1] === undefined) return tags;
      const url = new URL(next[1], response.url);
      // Keep relative links on the host that answered (after a fallback to HTTP, say).
      const nextPath = url.host === this.apiHost ? `${url.pathname}${url.search}` : url.href;
      if (seen.has(nextPath)) return tags;
      path = nextPath;
    }
    return tags;
  }

  // ---------------------------------------------------------------------------------------------
  // Push

  /** One token for every step of a push: pull (HEAD, mounts) and push. */
  private pushScopes(repository: string): string[] {
    return [repositoryScope(repository, ['pull', 'push'])];
  }

  /** A refused push names the repository; anything else is `failure`. */
  private async pushFailure(response: HttpResponse, what: string, repository: string): Promise<BallastError> {
    if (response.status === 403) {
      const body = response.body.readableEnded ? Buffer.alloc(0) : await readErrorBody(response);
      const { text } = describeErrorBody(body);
      return new BallastError(
        'DENIED',
        `${this.registry} denied the push to ${this.name(repository)} (403${text === '' ? '' : `: ${text}`}) while sending ${what}`,
        { hint: 'check that the account may push to this repository (log in with `ballast login`)' },
      );
    }
    return this.failure(response, what);
  }

  /** Whether the repository has the blob (a HEAD; Docker Hub does not count it as a pull). */
  async hasBlob(
    repository: string,
    digest: string,
    options: { signal?: AbortSignal; actions?: readonly string[] } = {},
  ): Promise<boolean> {
    const response = await this.request({
      method: 'HEAD',
      path: `/v2/${repository}/blobs/${digest}`,
      scopes: [repositoryScope(repository, options.actions ?? ['pull'])],
      refreshRefusedToken: options.actions?.includes('push') === true,
      signal: options.signal,
    });
    response.body.resume();
    if (response.status === 200) return true;
    if (response.status === 404) return false;
    throw await this.failure(response, `blob ${digest} of ${this.name(repository)}`);
  }

  private sessionFrom(repository: string, response: HttpResponse, what: string): UploadSession {
    const location = response.headers.location;
    if (location === undefined || location === '') {
      throw new BallastError('HTTP', `${this.registry} started an upload of ${what} without a Location`);
    }
    const min = Number(response.headers['oci-chunk-min-length']);
    return {
      repository,
      // Locations may be relative to the request (distribution sends absolute ones, others do not).
      location: new URL(location, response.url),
      minChunkLength: Number.isFinite(min) && min > 0 ? min : undefined,
    };
  }

  /** Starts an upload session (POST). */
  async startUpload(repository: string, options: { signal?: AbortSignal } = {}): Promise<UploadSession> {
    const what = `an upload to ${this.name(repository)}`;
    const response = await this.request({
      method: 'POST',
      path: `/v2/${repository}/blobs/uploads/`,
      headers: { 'content-length': '0' },
      scopes: this.pushScopes(repository),
      idempotent: true,
      refreshRefusedToken: true,
      signal: options.signal,
    });
    if (response.status !== 202) throw await this.pushFailure(response, what, repository);
    response.body.resume();
    return this.sessionFrom(repository, response, what);
  }

  /**
   * A cross-repository mount: the registry links a blob it has in `from` into `repository`. 201 means
   * it did; 202 means it did not, and the answer is an upload session to send the blob with.
   */
  async mountBlob(
    repository: string,
    digest: string,
    from: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<{ mounted: true } | { mounted: false; session: UploadSession }> {
    const what = `blob ${digest} (mounted from ${this.name(from)})`;
    const query = new URLSearchParams({ mount: digest, from });
    const response = await this.request({
      method: 'POST',
      path: `/v2/${repository}/blobs/uploads/?${query.toString()}`,
      headers: { 'content-length': '0' },
      scopes: [...this.pushScopes(repository), repositoryScope(from, ['pull'])],
      idempotent: true,
      refreshRefusedToken: true,
      signal: options.signal,
    });
    if (response.status === 201) {
      response.body.resume();
      return { mounted: true };
    }
    if (response.status === 202) {
      response.body.resume();
      return { mounted: false, session: this.sessionFrom(repository, response, what) };
    }
    throw await this.pushFailure(response, what, repository);
  }

  /**
   * Drops an upload session; best effort (sessions the registry forgets expire anyway). DELETE needs
   * the `delete` action (distribution), so its token is a separate one and the push token is kept.
   */
  async cancelUpload(session: UploadSession): Promise<void> {
    try {
      const response = await this.request({
        method: 'DELETE',
        path: session.location.href,
        scopes: [repositoryScope(session.repository, ['delete'])],
      });
      response.body.resume();
    } catch {
      // Nothing to do: the session is dead either way.
    }
  }

  /**
   * Uploads a blob: monolithic (one PUT with the whole stream) or, when the registry asks for chunks
   * (`OCI-Chunk-Min-Length`) or the blob is larger than `chunkThreshold`, chunked (PATCH chunks held
   * in memory, then PUT). Tokens refused mid-upload are refreshed and the step sent again; 429 and
   * 5xx are retried. A monolithic upload that broke off after its stream was read starts over in a
   * new session with a stream from `reopen`; without `reopen` that is an error.
   */
  async uploadBlob(
    repository: string,
    descriptor: Pick<Descriptor, 'digest' | 'size'>,
    body: Readable,
    options: BlobUploadOptions = {},
  ): Promise<BlobUploadResult> {
    const { digest, size } = descriptor;
    const what = `blob ${digest}`;
    const signal = options.signal;
    let session = options.session ?? (await this.startUpload(repository, { signal }));
    const chunked =
      options.chunked ??
      (session.minChunkLength !== undefined || size > (options.chunkThreshold ?? DEFAULT_CHUNK_THRESHOLD));
    let stream = body;
    let waited = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        if (chunked) await this.uploadChunks(session, descriptor, stream, options);
        else await this.uploadWhole(session, descriptor, stream, signal);
        return { chunked, attempts: attempt };
      } catch (error) {
        if (!(error instanceof UploadRetry)) {
          // Leave no half-written session behind (a digest mismatch); a retry just starts another.
          void this.cancelUpload(session);
          throw error;
        }
        const delay = error.delayMs ?? backoffDelay(attempt - 1, this.retry);
        if (attempt >= this.retry.attempts || waited + delay > this.retry.maxTotalWaitMs) throw error.error;
        waited += delay;
        await sleep(delay, signal);
        if (stream.readableDidRead || stream.destroyed) {
          if (options.reopen === undefined) {
            throw new BallastError(
              'NETWORK',
              `uploading ${what} to ${this.name(repository)} broke off after part of it was sent, and it cannot be read again from the source (${error.error.message})`,
              { hint: 'run the copy again: blobs already sent are skipped', cause: error.error },
            );
          }
          stream = await options.reopen();
        }
        session = await this.startUpload(repository, { signal });
      }
    }
  }

  private uploadUrl(session: UploadSession, digest: string): URL {
    const url = new URL(session.location);
    url.searchParams.set('digest', digest);
    return url;
  }

  private async commitUpload(
    response: HttpResponse,
    digest: string,
    what: string,
    repository: string,
  ): Promise<void> {
    if (response.status !== 201) throw await this.pushFailure(response, what, repository);
    response.body.resume();
    const header = response.headers['docker-content-digest'];
    if (typeof header === 'string' && header !== '' && header !== digest) {
      throw new BallastError(
        'DIGEST_MISMATCH',
        `${this.registry} stored ${what} in ${this.name(repository)} as ${header}, not ${digest}`,
      );
    }
  }

  /** Whether a failure is worth a new attempt, and after how long. */
  private async retryFor(response: HttpResponse, what: string): Promise<UploadRetry | undefined> {
    if (response.status === 401) {
      response.body.resume();
      return new UploadRetry(
        new BallastError('AUTH_FAILED', `${this.registry} refused the token for ${what} again and again`),
      );
    }
    if (!RETRY_STATUSES.has(response.status)) return undefined;
    const after = parseRetryAfter(
      typeof response.headers['retry-after'] === 'string' ? response.headers['retry-after'] : undefined,
    );
    return new UploadRetry(await this.failure(response, what), after);
  }

  private async uploadWhole(
    session: UploadSession,
    descriptor: Pick<Descriptor, 'digest' | 'size'>,
    stream: Readable,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const what = `blob ${descriptor.digest}`;
    let response: HttpResponse;
    try {
      response = await this.request({
        method: 'PUT',
        path: this.uploadUrl(session, descriptor.digest).href,
        headers: { 'content-type': 'application/octet-stream' },
        body: stream,
        contentLength: descriptor.size,
        expectContinue: true,
        scopes: this.pushScopes(session.repository),
        refreshRefusedToken: true,
        signal,
      });
    } catch (error) {
      if (isTransientUploadError(error)) throw new UploadRetry(error as BallastError);
      throw error;
    }
    const retry = await this.retryFor(response, what);
    if (retry !== undefined) throw retry;
    await this.commitUpload(response, descriptor.digest, what, session.repository);
  }

  private async uploadChunks(
    session: UploadSession,
    descriptor: Pick<Descriptor, 'digest' | 'size'>,
    stream: Readable,
    options: BlobUploadOptions,
  ): Promise<void> {
    const what = `blob ${descriptor.digest}`;
    const size = Math.max(options.chunkSize ?? DEFAULT_CHUNK_SIZE, session.minChunkLength ?? 0);
    const reader = new ChunkReader(stream, size);
    let offset = 0;
    try {
      // The next chunk is read while this one is sent, so the source and the upload overlap.
      let next = reader.read();
      for (;;) {
        const chunk = await next;
        if (chunk === undefined) break;
        next = reader.read();
        next.catch(() => {});
        await this.sendChunk(session, chunk, offset, what, options.signal);
        offset += chunk.length;
      }
    } finally {
      reader.close();
    }
    // All bytes passed the verifier (the stream ended without error): now commit.
    const response = await this.request({
      method: 'PUT',
      path: this.uploadUrl(session, descriptor.digest).href,
      body: Buffer.alloc(0),
      scopes: this.pushScopes(session.repository),
      refreshRefusedToken: true,
      signal: options.signal,
    });
    await this.commitUpload(response, descriptor.digest, what, session.repository);
  }

  /** PATCHes one chunk; after a failure asks the session how much arrived and sends the rest. */
  private async sendChunk(
    session: UploadSession,
    chunk: Buffer,
    offset: number,
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    let sent = 0;
    for (let tries = 0; ; tries++) {
      let failure: UploadRetry;
      try {
        const response = await this.request({
          method: 'PATCH',
          path: session.location.href,
          headers: {
            'content-type': 'application/octet-stream',
            'content-range': `${offset + sent}-${offset + chunk.length - 1}`,
          },
          body: chunk.subarray(sent),
          scopes: this.pushScopes(session.repository),
          refreshRefusedToken: true,
          signal,
        });
        if (response.status === 202) {
          response.body.resume();
          const location = response.headers.location;
          if (location) session.location = new URL(location, response.url);
          return;
        }
        const retry =
          response.status === 416
            ? new UploadRetry(await this.failure(response, what))
            : await this.retryFor(response, what);
        if (retry === undefined) throw await this.pushFailure(response, what, session.repository);
        failure = retry;
      } catch (error) {
        if (error instanceof UploadRetry) failure = error;
        else if (isTransientUploadError(error)) failure = new UploadRetry(error as BallastError);
        else throw error;
      }
      if (tries >= this.retry.attempts - 1) throw failure;
      await sleep(failure.delayMs ?? backoffDelay(tries, this.retry), signal);
      // The registry may have taken part of the chunk: continue from where it is.
      const at = await this.uploadOffset(session, signal);
      if (at === undefined || at < offset || at > offset + chunk.length) throw failure;
      sent = at - offset;
      if (sent === chunk.length) return;
    }
  }

  /** How many bytes an upload session holds (GET: `Range: 0-LAST`), undefined when it is gone. */
  private async uploadOffset(
    session: UploadSession,
    signal: AbortSignal | undefined,
  ): Promise<number | undefined> {
    let response: HttpResponse;
    try {
      response = await this.request({
        method: 'GET',
        path: session.location.href,
        scopes: this.pushScopes(session.repository),
        signal,
      });
    } catch {
      return undefined;
    }
    response.body.resume();
    if (response.status !== 204 && response.status !== 202) return undefined;
    const location = response.headers.location;
    if (location) session.location = new URL(location, response.url);
    const end = /^(?:bytes=)?0-(\d+)$/.exec(String(response.headers.range ?? '').trim())?.[1];
    if (end === undefined) return 0;
    // distribution writes "0-0" for an empty session too.
    return Number(end) === 0 ? 0 : Number(end) + 1;
  }

  /**
   * Stores a manifest under a tag or its digest, with its media type as Content-Type. The registry's
   * Docker-Content-Digest must equal `digest`.
   */
  async putManifest(
    repository: string,
    reference: string,
    bytes: Buffer,
    mediaType: string,
    digest: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const full = `${this.name(repository)}${reference.includes(':') ? '@' : ':'}${reference}`;
    const what = `manifest ${full}`;
    const response = await this.request({
      method: 'PUT',
      path: `/v2/${repository}/manifests/${reference}`,
      headers: { 'content-type': mediaType },
      body: bytes,
      scopes: this.pushScopes(repository),
      refreshRefusedToken: true,
      signal: options.signal,
    });
    if (response.status !== 201 && response.status !== 200 && response.status !== 202) {
      throw await this.pushFailure(response, what, repository);
    }
    response.body.resume();
    const header = response.headers['docker-content-digest'];
    if (typeof header === 'string' && header !== '' && header !== digest) {
      throw new BallastError(
        'DIGEST_MISMATCH',
        `${this.registry} stored ${what} with digest ${header}, not ${digest} (it changed the bytes)`,
      );
    }
  }

  close(): void {
    this.http.close();
  }
}
