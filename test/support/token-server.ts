/**
 * A token server of the test suite's own: the Docker Hub / GHCR bearer flow end to end against the
 * real registry. It signs JWTs with a key made by openssl; the registry trusts the certificate.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface TokenServerOptions {
  /** Folder for the key and certificate. */
  dir: string;
  service: string;
  issuer: string;
  users: Record<string, string>;
  /** Seconds a token lives (`exp` and `expires_in`); 300 by default. */
  lifetimeSeconds?: number;
  algorithm?: 'ES256' | 'RS256';
}

export interface TokenRequestRecord {
  method: string;
  /** The user whose credentials were accepted, undefined for anonymous. */
  user: string | undefined;
  scopes: string[];
  grantType: string | undefined;
  status: number;
}

export interface TokenServer {
  /** The realm: `http://127.0.0.1:PORT/token`. */
  realm: string;
  service: string;
  issuer: string;
  /** The certificate the registry trusts (`rootcertbundle`). */
  certFile: string;
  /** Every request answered, failed ones included. */
  readonly requests: number;
  readonly log: TokenRequestRecord[];
  /** Mutable so a test can make the next tokens short-lived. */
  lifetimeSeconds: number;
  /** The next N tokens are issued already expired (beyond the registry's 60 s leeway). */
  expiredTokensToIssue: number;
  /** Issues an OAuth refresh token (docker's `identitytoken`) for a user. */
  issueRefreshToken(user: string): string;
  reset(): void;
  close(): Promise<void>;
}

interface Grant {
  type: string;
  name: string;
  actions: string[];
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** `repository:foo/bar:pull,push` (the name never holds the last colon). */
function parseScope(scope: string): Grant | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return {
    type: scope.slice(0, first).replace(/\(.*\)$/, ''),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(','),
  };
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const algorithm = options.algorithm ?? 'ES256';
  const keyFile = join(options.dir, 'token-key.pem');
  const certFile = join(options.dir, 'token-cert.pem');
  const keyArgs =
    algorithm === 'ES256'
      ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']
      : ['-newkey', 'rsa:2048'];
  execFileSync(
    'openssl',
    ['req', '-x509', ...keyArgs, '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '3'].concat([
      '-subj',
      '/CN=ballast-test-token-signer',
    ]),
    { stdio: 'pipe' },
  );
  const privateKey = createPrivateKey(readFileSync(keyFile));
  const x5c = new X509Certificate(readFileSync(certFile)).raw.toString('base64');
  const refreshTokens = new Map<string, string>();
  const log: TokenRequestRecord[] = [];

  const state = {
    lifetimeSeconds: options.lifetimeSeconds ?? 300,
    expiredTokensToIssue: 0,
  };

  function makeToken(user: string | undefined, grants: Grant[]): { token: string; expiresIn: number } {
    const now = Math.floor(Date.now() / 1000);
    let exp = now + state.lifetimeSeconds;
    let nbf = now - 5;
    if (state.expiredTokensToIssue > 0) {
      state.expiredTokensToIssue--;
      exp = now - 600;
      nbf = now - 1200;
    }
    const header = { typ: 'JWT', alg: algorithm, x5c: [x5c] };
    const claims = {
      iss: options.issuer,
      sub: user ?? '',
      aud: options.service,
      exp,
      nbf,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access: grants,
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature =
      algorithm === 'ES256'
        ? sign('sha256', Buffer.from(signingInput), { key: privateKey, dsaEncoding: 'ieee-p1363' })
        : sign('sha256', Buffer.from(signingInput), privateKey);
    return { token: `${signingInput}.${base64url(signature)}`, expiresIn: state.lifetimeSeconds };
  }

  function grantsFor(user: string | undefined, scopes: string[]): Grant[] {
    const allowed = user === undefined ? ['pull'] : ['pull', 'push'];
    const grants: Grant[] = [];
    for (const scope of scopes) {
      const parsed = parseScope(scope);
      if (parsed === undefined || parsed.type !== 'repository') continue;
      const actions = parsed.actions.filter((a) => allowed.includes(a));
      if (actions.length > 0) grants.push({ type: 'repository', name: parsed.name, actions });
    }
    return grants;
  }

  function reply(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://token.invalid');
    const record: TokenRequestRecord = {
      method: req.method ?? 'GET',
      user: undefined,
      scopes: [],
      grantType: undefined,
      status: 200,
    };
    log.push(record);
    const fail = (status: number, message: string) => {
      record.status = status;
      reply(res, status, { errors: [{ code: 'UNAUTHORIZED', message }] });
    };
    if (url.pathname !== '/token') return fail(404, 'not found');
    if (url.searchParams.get('service') !== null && url.searchParams.get('service') !== options.service) {
      return fail(400, 'wrong service');
    }
    let params = url.searchParams;
    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    }
    const scopes = params.getAll('scope').flatMap((s) => s.split(' ').filter((x) => x !== ''));
    record.scopes = scopes;
    let user: string | undefined;
    if (req.method === 'POST') {
      const grantType = params.get('grant_type') ?? undefined;
      record.grantType = grantType;
      if (grantType === 'refresh_token') {
        user = refreshTokens.get(params.get('refresh_token') ?? '');
        if (user === undefined) return fail(401, 'invalid refresh token');
      } else if (grantType === 'password') {
        const name = params.get('username') ?? '';
        if (options.users[name] === undefined || options.users[name] !== params.get('password')) {
          return fail(401, 'invalid username or password');
        }
        user = name;
      } else {
        return fail(400, 'unsupported grant_type');
      }
    } else {
      const authorization = req.headers.authorization;
      if (authorization !== undefined) {
        const match = /^Basic\s+(\S+)$/i.exec(authorization);
        if (match === null) return fail(401, 'unsupported authorization');
        const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        const name = decoded.slice(0, colon);
        if (
          colon < 0 ||
          options.users[name] === undefined ||
          options.users[name] !== decoded.slice(colon + 1)
        ) {
          return fail(401, 'invalid username or password');
        }
        user = name;
      }
    }
    record.user = user;
    const { token, expiresIn } = makeToken(user, grantsFor(user, scopes));
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: expiresIn,
      issued_at: new Date().toISOString(),
    };
    if (req.method === 'POST' && user !== undefined && params.get('access_type') === 'offline') {
      body.refresh_token = server.issueRefreshToken(user);
    }
    reply(res, 200, body);
  }

  const http = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) reply(res, 500, { errors: [{ code: 'UNKNOWN', message: String(error) }] });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (http.address() as AddressInfo).port;

  const server: TokenServer = {
    realm: `http://127.0.0.1:${port}/token`,
    service: options.service,
    issuer: options.issuer,
    certFile,
    get requests() {
      return log.length;
    },
    log,
    get lifetimeSeconds() {
      return state.lifetimeSeconds;
    },
    set lifetimeSeconds(value: number) {
      state.lifetimeSeconds = value;
    },
    get expiredTokensToIssue() {
      return state.expiredTokensToIssue;
    },
    set expiredTokensToIssue(value: number) {
      state.expiredTokensToIssue = value;
    },
    issueRefreshToken(user: string): string {
      const token = randomBytes(24).toString('hex');
      refreshTokens.set(token, user);
      return token;
    },
    reset() {
      log.length = 0;
      state.expiredTokensToIssue = 0;
    },
    close() {
      return new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      });
    },
  };
  return server;
}
