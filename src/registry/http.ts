/**
 * The HTTP layer under the registry client: keep-alive agents, TLS options, one request at a time,
 * redirects followed by hand (an Authorization header never goes to another host), and network
 * errors sorted into kinds the client can act on.
 */
import {
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import { rootCertificates, connect as tlsConnect } from 'node:tls';
import { BallastError, redact } from '../errors.js';

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  method: Method;
  url: URL;
  headers?: Record<string, string>;
  /**
   * A stream body is sent once (never again on a redirect); its length must be given in
   * `contentLength`, as uploads declare it.
   */
  body?: Buffer | string | Readable;
  contentLength?: number;
  /**
   * Send `Expect: 100-continue` and hold a stream body back until the server asks for it, so an
   * early refusal (a 401 from an expired token) leaves the stream unread and reusable.
   */
  expectContinue?: boolean;
  signal?: AbortSignal | undefined;
}

/** How long to wait for `100 Continue` before sending the body anyway (what curl does). */
const CONTINUE_TIMEOUT_MS = 1000;

function isStream(body: HttpRequest['body']): body is Readable {
  return body !== undefined && typeof body !== 'string' && !Buffer.isBuffer(body);
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The URL that answered, after redirects. */
  url: URL;
  body: IncomingMessage;
}

export interface HttpTransportOptions {
  /** The registry host (`host[:port]` as in URLs) whose certificate may go unverified. */
  insecureHost?: string | undefined;
  /** Extra CA certificates in PEM, trusted alongside the default roots. */
  ca?: string | undefined;
  /** Idle socket timeout. */
  timeoutMs?: number;
  userAgent?: string;
  maxRedirects?: number;
}

export type NetworkErrorKind =
  /** The server does not speak TLS (plain HTTP on the port): the cue for the HTTP fallback. */
  | 'tls-protocol'
  /** The certificate did not verify. */
  | 'tls-certificate'
  | 'refused'
  | 'reset'
  | 'timeout'
  | 'dns'
  | 'other';

const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** A network failure with the URL it happened on and whether it happened before TLS was up. */
export class NetworkFailure extends Error {
  readonly kind: NetworkErrorKind;
  readonly code: string | undefined;
  readonly url: URL;
  constructor(kind: NetworkErrorKind, url: URL, cause: Error & { code?: string }) {
    super(cause.message, { cause });
    this.kind = kind;
    this.code = cause.code;
    this.url = url;
  }
}

function classify(
  error: Error & { code?: string },
  handshakeDone: boolean,
  https: boolean,
): NetworkErrorKind {
  const code = error.code ?? '';
  if (CERTIFICATE_CODES.has(code)) return 'tls-certificate';
  if (code === 'EPROTO' || code.startsWith('ERR_SSL_') || /wrong version number/i.test(error.message)) {
    return 'tls-protocol';
  }
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/i.test(error.message)) {
    // A plain-HTTP server answers a ClientHello with a 400 and closes: a reset before the handshake.
    return https && !handshakeDone ? 'tls-protocol' : 'reset';
  }
  return 'other';
}

/** A URL for messages: no credentials, no query (tokens can ride there). */
export function displayUrl(url: URL): string {
  return redact(`${url.protocol}//${url.host}${url.pathname}`);
}

export class HttpTransport {
  private readonly httpAgent: HttpAgent;
  private readonly httpsAgent: HttpsAgent;
  private readonly insecureAgent: HttpsAgent | undefined;
  private readonly insecureHost: string | undefined;
  private readonly timeoutMs: number;
  private readonly userAgent: string;
  private readonly maxRedirects: number;

  constructor(options: HttpTransportOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.userAgent = options.userAgent ?? 'ballast';
    this.maxRedirects = options.maxRedirects ?? 5;
    this.insecureHost = options.insecureHost;
    const common = { keepAlive: true, maxSockets: 16, timeout: this.timeoutMs };
    this.httpAgent = new HttpAgent(common);
    this.httpsAgent = new HttpsAgent({
      ...common,
      ...(options.ca === undefined ? {} : { ca: [...rootCertificates, options.ca] }),
    });
    if (options.insecureHost !== undefined) {
      this.insecureAgent = new HttpsAgent({ ...common, rejectUnauthorized: false });
    }
  }

  /** One request, no redirects. Resolves when the response headers are in. */
  send(request: HttpRequest): Promise<HttpResponse> {
    const { url } = request;
    const https = url.protocol === 'https:';
    const agent = https
      ? url.host === this.insecureHost && this.insecureAgent
        ? this.insecureAgent
        : this.httpsAgent
      : this.httpAgent;
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...request.headers };
    const body = request.body;
    const stream = isStream(body) ? body : undefined;
    if (stream !== undefined) {
      headers['content-length'] = String(request.contentLength ?? 0);
      if (request.expectContinue) headers.expect = '100-continue';
    } else if (typeof body === 'string' || Buffer.isBuffer(body)) {
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    return new Promise((resolve, reject) => {
      let handshakeDone = false;
      let answered = false;
      let bodyStarted = false;
      let continueTimer: NodeJS.Timeout | undefined;
      const detach: (() => void)[] = [];
      const stopBody = () => {
        if (continueTimer !== undefined) clearTimeout(continueTimer);
        for (const undo of detach.splice(0)) undo();
      };
      const send = https ? httpsRequest : httpRequest;
      const req = send(url, { method: request.method, headers, agent, signal: request.signal }, (res) => {
        answered = true;
        const incomplete = stream !== undefined && !req.writableFinished;
        stopBody();
        if (incomplete) {
          // The server answered before taking the whole body (a refusal): stop sending, and drop the
          // connection once the answer is read, since it is mid-request.
          const drop = () => req.destroy();
          res.once('end', drop);
          res.once('close', drop);
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, url, body: res });
      });
      req.on('socket', (socket) => {
        // A reused keep-alive socket finished its handshake long ago.
        if (req.reusedSocket || !https) handshakeDone = true;
        else socket.once('secureConnect', () => (handshakeDone = true));
      });
      req.setTimeout(this.timeoutMs, () => {
        const error = new Error(`no answer within ${this.timeoutMs} ms`) as Error & { code: string };
        error.code = 'ETIMEDOUT';
        req.destroy(error);
      });
      req.on('error', (error: Error & { code?: string }) => {
        stopBody();
        if (answered) return;
        if (error.name === 'AbortError' || BallastError.is(error)) reject(error);
        else reject(new NetworkFailure(classify(error, handshakeDone, https), url, error));
      });
      if (stream === undefined) {
        req.end(body as Buffer | string | undefined);
        return;
      }
      // A source that fails before or while it is sent (a digest mismatch) aborts the request, so the
      // upload is not committed.
      const onError = (error: Error) => req.destroy(error);
      stream.once('error', onError);
      detach.push(() => stream.off('error', onError));
      const startBody = () => {
        if (bodyStarted || answered) return;
        bodyStarted = true;
        if (continueTimer !== undefined) clearTimeout(continueTimer);
        if (stream.destroyed) {
          req.destroy(stream.errored ?? new Error('the body stream was closed before it was sent'));
          return;
        }
        // Piped by hand so that a refusal can stop it and leave the stream as it is.
        const onData = (chunk: Buffer) => {
          if (!req.write(chunk)) stream.pause();
        };
        const onDrain = () => stream.resume();
        const onEnd = () => req.end();
        stream.on('data', onData);
        stream.once('end', onEnd);
        req.on('drain', onDrain);
        detach.push(() => {
          stream.off('data', onData);
          stream.off('end', onEnd);
          req.off('drain', onDrain);
          stream.pause();
        });
        stream.resume();
      };
      if (request.expectContinue) {
        req.once('continue', startBody);
        continueTimer = setTimeout(startBody, CONTINUE_TIMEOUT_MS);
        req.flushHeaders();
      } else {
        startBody();
      }
    });
  }

  /**
   * Follows 301/302/303/307/308 itself, at most `maxRedirects` times. Authorization is dropped when a
   * redirect leaves the original host or scheme (blob GETs redirect to storage that must not see it).
   */
  async fetch(request: HttpRequest): Promise<HttpResponse> {
    let current = request;
    for (let hop = 0; ; hop++) {
      const response = await this.send(current);
      const location = response.headers.location;
      if (![301, 302, 303, 307, 308].includes(response.status) || location === undefined) return response;
      // A stream body cannot be sent twice: the caller sees the redirect.
      if (isStream(current.body)) return response;
      response.body.resume();
      if (hop >= this.maxRedirects) {
        throw new BallastError(
          'HTTP',
          `too many redirects (more than ${this.maxRedirects}) from ${displayUrl(request.url)}`,
        );
      }
      const next = new URL(location, current.url);
      const headers = { ...current.headers };
      if (next.host !== request.url.host || next.protocol !== request.url.protocol) {
        for (const key of Object.keys(headers)) {
          if (key.toLowerCase() === 'authorization') delete headers[key];
        }
      }
      const method = response.status === 303 && current.method !== 'HEAD' ? 'GET' : current.method;
      const body = response.status === 303 ? undefined : current.body;
      current = { method, url: next, headers, signal: request.signal };
      if (body !== undefined) current.body = body;
      if (request.contentLength !== undefined) current.contentLength = request.contentLength;
    }
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    this.insecureAgent?.destroy();
  }
}

/**
 * Whether `host[:port]` answers a TLS handshake: false when it speaks something else (plain HTTP),
 * undefined when the connection fails otherwise (the real request reports that). The probe trusts no
 * CA and verifies nothing, so it skips loading the root store (tens of milliseconds); a registry that
 * does speak TLS is then verified by the real request as usual.
 */
export function speaksTls(host: string, timeoutMs = 5000): Promise<boolean | undefined> {
  const url = new URL(`https://${host}`);
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 443),
      ca: [],
      rejectUnauthorized: false,
      ...(isIP(url.hostname) ? {} : { servername: url.hostname }),
    });
    const done = (answer: boolean | undefined) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(undefined));
    socket.once('secureConnect', () => done(true));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const protocol =
        error.code === 'EPROTO' || /wrong version number|packet length too long/i.test(error.message);
      done(protocol ? false : undefined);
    });
  });
}
