/**
 * Registry authentication: `WWW-Authenticate` challenges, and the bearer token flow (anonymous, with
 * a password, or with an OAuth refresh token) with tokens cached per (realm, service, scope) and
 * fetched once when many requests want one at the same time.
 */
import { BallastError } from '../errors.js';
import type { Credentials } from './credentials.js';
import { displayUrl, type HttpRequest, type HttpResponse } from './http.js';

export interface Challenge {
  /** Lowercase: `bearer`, `basic`. */
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses `Bearer realm="https://auth",service="reg",scope="repository:a:pull",error="..."` and
 * `Basic realm="x"`; several challenges may share one header, separated by commas.
 */
export function parseWwwAuthenticate(header: string | string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const challenges: Challenge[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < text.length && /[\s,]/.test(text[i] ?? '')) i++;
  };
  while (i < text.length) {
    skipSpace();
    const scheme = /^[A-Za-z][A-Za-z0-9_-]*/.exec(text.slice(i))?.[0];
    if (scheme === undefined) break;
    i += scheme.length;
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    for (;;) {
      while (i < text.length && /\s/.test(text[i] ?? '')) i++;
      const match = /^([A-Za-z0-9_.-]+)\s*=\s*/.exec(text.slice(i));
      if (match === null) break;
      const key = (match[1] ?? '').toLowerCase();
      i += match[0].length;
      let value = '';
      if (text[i] === '"') {
        i++;
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < text.length) i++;
          value += text[i];
          i++;
        }
        i++;
      } else {
        const token = /^[^\s,]*/.exec(text.slice(i))?.[0] ?? '';
        value = token;
        i += token.length;
      }
      challenge.params[key] = value;
      while (i < text.length && /\s/.test(text[i] ?? '')) i++;
      if (text[i] !== ',') break;
      // A comma ends either this parameter or this challenge: look ahead for `key=`.
      const after = text.slice(i + 1);
      if (!/^\s*[A-Za-z0-9_.-]+\s*=/.test(after)) break;
      i++;
    }
  }
  return challenges;
}

/** `repository:NAME:pull` or `repository:NAME:pull,push`. */
export function repositoryScope(repository: string, actions: readonly string[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

export interface AuthenticatorOptions {
  /** The registry as the user named it, for messages. */
  registry: string;
  /** Sends a request with retries and redirects, without registry auth. */
  fetch: (request: HttpRequest) => Promise<HttpResponse>;
  /** Looked up once, the first time a challenge needs them. */
  credentials: () => Promise<Credentials | undefined>;
  now?: () => number;
}

async function readSmall(response: HttpResponse, limit = 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of response.body) {
    length += (chunk as Buffer).length;
    if (length > limit) {
      response.body.destroy();
      throw new BallastError(
        'HTTP',
        `the answer from ${displayUrl(response.url)} is larger than ${limit} bytes`,
      );
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Describes credentials for messages without the secret. */
export function describeCredentials(credentials: Credentials | undefined): string {
  if (credentials === undefined) return 'no credentials were sent';
  if (credentials.username !== undefined && credentials.password !== undefined) {
    return `credentials for user "${credentials.username}" were sent (from ${credentials.source})`;
  }
  if (credentials.identityToken !== undefined)
    return `an identity token was sent (from ${credentials.source})`;
  return `a registry token was sent (from ${credentials.source})`;
}

export class Authenticator {
  private readonly options: AuthenticatorOptions;
  private readonly now: () => number;
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<CachedToken>>();
  private credentialsPromise: Promise<Credentials | undefined> | undefined;
  /** How many tokens were fetched, for tests and debugging. */
  tokenFetches = 0;

  constructor(options: AuthenticatorOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  credentials(): Promise<Credentials | undefined> {
    this.credentialsPromise ??= this.options.credentials();
    return this.credentialsPromise;
  }

  /** True once the registry has challenged us, so requests carry auth from the start. */
  get known(): boolean {
    return this.challenge !== undefined;
  }

  /** Takes the challenges of a 401. Returns false when none is one ballast can answer. */
  accept(challenges: Challenge[]): boolean {
    const usable =
      challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (usable === undefined) return false;
    if (usable.scheme === 'bearer' && !usable.params.realm) return false;
    this.challenge = usable;
    return true;
  }

  private cacheKey(scopes: readonly string[]): string {
    const params = this.challenge?.params ?? {};
    return `${params.realm ?? ''}|${params.service ?? ''}|${[...scopes].sort().join(' ')}`;
  }

  /** Forgets the cached token for these scopes (after the registry refused it). */
  invalidate(scopes: readonly string[]): void {
    this.tokens.delete(this.cacheKey(scopes));
  }

  /**
   * The Authorization header for a request needing `scopes`, or undefined before any challenge.
   * `fresh` is true when the token was fetched for this call rather than taken from the cache.
   */
  async authorization(scopes: readonly string[]): Promise<{ header: string | undefined; fresh: boolean }> {
    const challenge = this.challenge;
    if (challenge === undefined) return { header: undefined, fresh: false };
    const credentials = await this.credentials();
    if (challenge.scheme === 'basic') {
      if (credentials?.username === undefined || credentials.password === undefined) {
        throw new BallastError('AUTH_FAILED', `${this.options.registry} requires a user name and password`, {
          hint: 'give --creds USER:PASSWORD, or log in with `docker login`',
        });
      }
      const basic = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
      return { header: `Basic ${basic}`, fresh: false };
    }
    if (credentials?.registryToken !== undefined) {
      return { header: `Bearer ${credentials.registryToken}`, fresh: false };
    }
    const key = this.cacheKey(scopes);
    const cached = this.tokens.get(key);
    if (cached !== undefined && cached.expiresAt > this.now()) {
      return { header: `Bearer ${cached.token}`, fresh: false };
    }
    let pending = this.pending.get(key);
    if (pending === undefined) {
      pending = this.fetchToken(challenge, scopes, credentials).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    const token = await pending;
    this.tokens.set(key, token);
    return { header: `Bearer ${token.token}`, fresh: true };
  }

  private async fetchToken(
    challenge: Challenge,
    scopes: readonly string[],
    credentials: Credentials | undefined,
  ): Promise<CachedToken> {
    const realm = challenge.params.realm ?? '';
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new BallastError(
        'AUTH_FAILED',
        `${this.options.registry} names an invalid token realm "${realm}"`,
      );
    }
    const service = challenge.params.service;
    this.tokenFetches++;
    let response: HttpResponse;
    if (credentials?.identityToken !== undefined) {
      // OAuth2 refresh-token grant, as docker does with an identity token.
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: credentials.identityToken,
        client_id: 'ballast',
      });
      if (service !== undefined) form.set('service', service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      response = await this.options.fetch({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      });
    } else {
      if (service !== undefined) url.searchParams.set('service', service);
      for (const scope of scopes) url.searchParams.append('scope', scope);
      const headers: Record<string, string> = {};
      if (credentials?.username !== undefined && credentials.password !== undefined) {
        headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
      }
      response = await this.options.fetch({ method: 'GET', url, headers });
    }
    const body = await readSmall(response);
    const where = `the token server ${displayUrl(url)} of ${this.options.registry}`;
    if (response.status === 401 || response.status === 403) {
      throw new BallastError(
        'AUTH_FAILED',
        `authentication to ${this.options.registry} failed: ${where} refused a token (${response.status}); ${describeCredentials(credentials)}`,
        {
          hint: credentials
            ? 'check the user name and password (or log in again)'
            : 'give --creds USER:PASSWORD, or log in with `docker login`',
        },
      );
    }
    if (response.status !== 200) {
      throw new BallastError('AUTH_FAILED', `${where} answered ${response.status} to a token request`);
    }
    let json: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      json = JSON.parse(body.toString('utf8')) as typeof json;
    } catch {
      throw new BallastError('AUTH_FAILED', `${where} did not answer JSON`);
    }
    const token =
      typeof json.token === 'string' && json.token !== ''
        ? json.token
        : typeof json.access_token === 'string'
          ? json.access_token
          : '';
    if (token === '') throw new BallastError('AUTH_FAILED', `${where} answered without a token`);
    const seconds = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 60;
    // Renew a little early (10 %, at most 5 s) so a token does not expire in flight.
    const margin = Math.min(5000, seconds * 100);
    return { token, expiresAt: this.now() + seconds * 1000 - margin };
  }
}
