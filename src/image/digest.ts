import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { BallastError } from '../errors.js';

const ALGORITHMS: Record<string, { node: string; hexLength: number }> = {
  sha256: { node: 'sha256', hexLength: 64 },
  sha512: { node: 'sha512', hexLength: 128 },
};

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export function isDigest(text: string): boolean {
  const colon = text.indexOf(':');
  const algorithm = ALGORITHMS[text.slice(0, colon)];
  if (colon < 0 || algorithm === undefined) return false;
  const hex = text.slice(colon + 1);
  return hex.length === algorithm.hexLength && /^[a-f0-9]+$/.test(hex);
}

export function assertDigest(text: unknown, what: string): string {
  if (typeof text !== 'string' || !isDigest(text)) {
    throw new BallastError('MANIFEST_INVALID', `${what} has an invalid digest ${JSON.stringify(text)}`);
  }
  return text;
}

function hasherFor(digest: string): Hash {
  const algorithm = ALGORITHMS[digest.slice(0, digest.indexOf(':'))];
  if (algorithm === undefined) {
    throw new BallastError('MEDIA_TYPE_UNSUPPORTED', `unsupported digest algorithm in ${digest}`);
  }
  return createHash(algorithm.node);
}

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The digest of `bytes` computed with the algorithm that `expected` names. */
export function digestLike(expected: string, bytes: Uint8Array): string {
  return `${expected.slice(0, expected.indexOf(':'))}:${hasherFor(expected).update(bytes).digest('hex')}`;
}

/** Throws unless `bytes` have the expected digest (and size, when given). */
export function verifyBytes(
  bytes: Uint8Array,
  expected: { digest: string; size?: number },
  what: string,
): void {
  if (expected.size !== undefined && bytes.length !== expected.size) {
    throw new BallastError(
      'SIZE_MISMATCH',
      `${what} is ${bytes.length} bytes but its descriptor says ${expected.size} (${expected.digest})`,
    );
  }
  const actual = digestLike(expected.digest, bytes);
  if (actual !== expected.digest) {
    throw new BallastError(
      'DIGEST_MISMATCH',
      `${what} does not match its digest: expected ${expected.digest}, got ${actual}`,
    );
  }
}

/**
 * A pass-through stream that hashes and counts the bytes going by and fails the stream, at the end or
 * as soon as the size is exceeded, when they do not match the descriptor. A resumed download writes
 * every connection's bytes into the same instance, so the whole blob is verified once.
 */
export class VerifyingStream extends Transform {
  readonly expected: { digest: string; size: number | undefined };
  private readonly hash: Hash;
  private readonly what: string;
  bytes = 0;

  constructor(expected: { digest: string; size?: number | undefined }, what: string) {
    super();
    this.expected = { digest: expected.digest, size: expected.size };
    this.hash = hasherFor(expected.digest);
    this.what = what;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expected.size !== undefined && this.bytes > this.expected.size) {
      callback(
        new BallastError(
          'SIZE_MISMATCH',
          `${this.what} is larger than the ${this.expected.size} bytes its descriptor says (${this.expected.digest})`,
        ),
      );
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expected.size !== undefined && this.bytes !== this.expected.size) {
      callback(
        new BallastError(
          'SIZE_MISMATCH',
          `${this.what} ended after ${this.bytes} of ${this.expected.size} bytes (${this.expected.digest})`,
        ),
      );
      return;
    }
    const algorithm = this.expected.digest.slice(0, this.expected.digest.indexOf(':'));
    const actual = `${algorithm}:${this.hash.digest('hex')}`;
    if (actual !== this.expected.digest) {
      callback(
        new BallastError(
          'DIGEST_MISMATCH',
          `${this.what} does not match its digest: expected ${this.expected.digest}, got ${actual}`,
        ),
      );
      return;
    }
    callback();
  }
}
