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
import { displayUrl, type HttpResponse, HttpTransport, type Method, NetworkFailure } from './http.js';
import { backoffDelay, parseRetryAfter, type RetryPolicy, retryPolicy, sleep } from './retry.js';

export interface RegistryClientOptions {
  /** `user:password`. */
  creds?: string | undefined;
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
  body?: Buffer | string;
  /** The token scopes this request needs. */
  scopes: string[];
  signal?: AbortSignal | undefined;
}

const DEFAULT_MAX_MANIFEST = 4 * 1024 * 1024;
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
      credentials: () =>
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
          request.body === undefined ? message : { ...message, body: request.body },
        );
      } catch (error) {
        if (!(error instanceof NetworkFailure)) throw error;
        const relative = !/^https?:\/\//.test(request.path);
        if (error.kind === 'tls-protocol' && relative && url.protocol === 'https:' && this.allowHttp) {
          // Loopback and --insecure registries may speak plain HTTP: docker's fallback.
          this.scheme = 'http:';
          continue;
        }
        if (this.retryable(request.method, error)) {
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
        if (sent.header !== undefined && (sent.fresh || basicSent || authTries >= 2)) {
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
        continue;
      }
      if (RETRY_STATUSES.has(response.status) && request.method !== 'POST' && request.method !== 'PATCH') {
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
    options: { signal?: AbortSignal } = {},
  ): Promise<ManifestHead | undefined> {
    const response = await this.request({
      method: 'HEAD',
      path: `/v2/${repository}/manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      scopes: [repositoryScope(repository, ['pull'])],
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

  close(): void {
    this.http.close();
  }
}
