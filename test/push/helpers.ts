import { type Readable, Transform } from 'node:stream';
import { type CopyEvent, type CopyOptions, type CopyResult, copyImage } from '../../src/copy/copy.js';
import { RegistryDestination, type RegistryDestinationOptions } from '../../src/copy/registry-destination.js';
import { parseReference } from '../../src/reference/parse.js';
import { openSource } from '../../src/sources/open.js';
import type { ImageSource, SourceOptions } from '../../src/sources/types.js';
import { run, skopeoInspect } from '../support/registry.js';

export { rejectsWith } from '../support/assert.js';

export const FAST_RETRY = { baseDelayMs: 20, maxDelayMs: 200 };

export interface CopyRun {
  result: CopyResult;
  events: CopyEvent[];
  mounted: number;
}

export interface CopyArgs {
  source?: SourceOptions;
  destination?: RegistryDestinationOptions;
  copy?: CopyOptions;
  /** Wraps the opened source (to slow it down, say). */
  wrap?: (source: ImageSource) => ImageSource;
}

/** Copies `from` (any transport) to the registry reference `to` with the copy engine. */
export async function copyTo(from: string, to: string, args: CopyArgs = {}): Promise<CopyRun> {
  const opened = await openSource(from, args.source ?? {});
  const source = args.wrap ? args.wrap(opened) : opened;
  const destination = await RegistryDestination.open(parseReference(to), {
    client: { retry: FAST_RETRY, env: {} },
    ...args.destination,
  });
  const events: CopyEvent[] = [];
  try {
    const result = await copyImage(source, destination, {
      ...args.copy,
      onEvent: (e) => {
        events.push(e);
        args.copy?.onEvent?.(e);
      },
    });
    return { result, events, mounted: destination.mounted };
  } finally {
    await destination.close();
    await opened.close();
  }
}

/** What skopeo sees: the digest, and the manifest bytes exactly. */
export async function peerView(ref: string, creds?: string): Promise<{ digest: string; raw: Buffer }> {
  const auth = creds === undefined ? [] : ['--creds', creds];
  const digest = String((await skopeoInspect(ref, auth)).Digest);
  const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', '--raw', ...auth, ref], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
  });
  return { digest, raw: Buffer.from(stdout, 'utf8') };
}

/** A source whose blob streams trickle (`bytesPerTick` every `tickMs`), so an upload takes a while. */
export function slowSource(inner: ImageSource, bytesPerTick: number, tickMs: number): ImageSource {
  return new Proxy(inner, {
    get(target, key, receiver) {
      if (key === 'getBlob') {
        return async (...args: Parameters<ImageSource['getBlob']>) => {
          const stream = await target.getBlob(...args);
          const slow = new Transform({
            transform(chunk: Buffer, _encoding, callback) {
              const parts: Buffer[] = [];
              for (let i = 0; i < chunk.length; i += bytesPerTick)
                parts.push(chunk.subarray(i, i + bytesPerTick));
              const push = () => {
                const part = parts.shift();
                if (part === undefined) {
                  callback();
                  return;
                }
                this.push(part);
                setTimeout(push, tickMs);
              };
              push();
            },
          });
          stream.on('error', (error) => slow.destroy(error));
          return stream.pipe(slow) as Readable;
        };
      }
      const value = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
