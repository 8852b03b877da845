import type { Readable } from 'node:stream';
import { BallastError } from '../errors.js';

/**
 * Reads a small stream (a manifest, a config) into memory, refusing anything larger than `limit`:
 * layers are never read this way.
 */
export async function readStream(stream: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    length += buffer.length;
    if (length > limit) {
      stream.destroy();
      throw new BallastError('MANIFEST_INVALID', `${what} is larger than ${limit} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks, length);
}
