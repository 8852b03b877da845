/**
 * An HTTP proxy in front of a real registry that injects faults: a status answer (429, 503, ...), a
 * connection dropped after N body bytes, a reset before any answer. Each fault fires `times` times on
 * the requests it matches; everything else is passed through unchanged.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** What the proxy did: `pass`, or the fault's kind. */
  action: string;
  status: number | undefined;
}

interface FaultBase {
  /** How many matching requests it applies to (1). */
  times?: number;
  /** Which requests (all when absent). */
  match?: (request: { method: string; path: string; headers: IncomingHttpHeaders }) => boolean;
}

export type Fault =
  /** Answers for the registry: `body` (a JSON error by default) with `status` and `headers`. */
  | (FaultBase & { kind: 'status'; status: number; headers?: Record<string, string>; body?: string })
  | (FaultBase & { kind: 'drop'; afterBytes: number })
  | (FaultBase & { kind: 'reset' })
  /** Passes the request on without its Range header (a server that ignores ranges). */
  | (FaultBase & { kind: 'ignore-range' })
  /** Adds headers to the upstream answer (rate-limit headers, say). */
  | (FaultBase & { kind: 'add-headers'; headers: Record<string, string> });

export interface FaultProxy {
  /** `127.0.0.1:PORT`. */
  host: string;
  requests: ProxiedRequest[];
  addFault(fault: Fault): void;
  clearFaults(): void;
  close(): Promise<void>;
}

export async function startFaultProxy(upstreamHost: string): Promise<FaultProxy> {
  const faults: (Fault & { left: number })[] = [];
  const requests: ProxiedRequest[] = [];
  const [upstreamName, upstreamPort] = [
    upstreamHost.slice(0, upstreamHost.lastIndexOf(':')),
    Number(upstreamHost.slice(upstreamHost.lastIndexOf(':') + 1)),
  ];

  function take(req: IncomingMessage): (Fault & { left: number })[] {
    const info = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers };
    const hit: (Fault & { left: number })[] = [];
    for (const fault of faults) {
      if (fault.left > 0 && (fault.match === undefined || fault.match(info))) {
        fault.left--;
        hit.push(fault);
      }
    }
    return hit;
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const record: ProxiedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      headers: req.headers,
      action: 'pass',
      status: undefined,
    };
    requests.push(record);
    const hit = take(req);
    const decisive = hit.find((f) => f.kind === 'status' || f.kind === 'reset');
    if (decisive?.kind === 'reset') {
      record.action = 'reset';
      req.socket.destroy();
      return;
    }
    if (decisive?.kind === 'status') {
      record.action = 'status';
      record.status = decisive.status;
      req.resume();
      res.writeHead(decisive.status, { 'content-type': 'application/json', ...decisive.headers });
      res.end(
        decisive.body ??
          JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `injected ${decisive.status}` }] }),
      );
      return;
    }
    const drop = hit.find((f) => f.kind === 'drop');
    const headers = { ...req.headers };
    if (hit.some((f) => f.kind === 'ignore-range')) {
      delete headers.range;
      record.action = 'ignore-range';
    }
    const extra: Record<string, string> = {};
    for (const f of hit) if (f.kind === 'add-headers') Object.assign(extra, f.headers);
    const upstream = httpRequest(
      { host: upstreamName, port: upstreamPort, method: req.method, path: req.url, headers },
      (up) => {
        record.status = up.statusCode;
        res.writeHead(up.statusCode ?? 502, { ...up.headers, ...extra });
        if (drop === undefined || drop.kind !== 'drop') {
          up.pipe(res);
          return;
        }
        record.action = 'drop';
        let sent = 0;
        up.on('data', (chunk: Buffer) => {
          if (sent >= drop.afterBytes) return;
          const room = drop.afterBytes - sent;
          if (chunk.length < room) {
            sent += chunk.length;
            res.write(chunk);
            return;
          }
          sent = drop.afterBytes;
          up.destroy();
          // Flush what was promised, then cut the connection mid-body.
          res.write(chunk.subarray(0, room), () => res.socket?.destroy());
        });
        up.on('end', () => res.end());
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  }

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    requests,
    addFault(fault: Fault) {
      faults.push({ ...fault, left: fault.times ?? 1 });
    },
    clearFaults() {
      faults.length = 0;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
