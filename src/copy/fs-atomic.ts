/** Small file-system helpers shared by the file destinations: atomic writes and clear I/O errors. */
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { BallastError } from '../errors.js';
import type { VerifyingStream } from '../image/digest.js';

/** `.ballast-<pid>-<random>.partial`: the pid lets a later run remove what a killed one left. */
export function tempName(): string {
  return `.ballast-${process.pid}-${randomBytes(6).toString('hex')}.partial`;
}

const TEMP_PATTERN = /^\.ballast-(\d+)-[0-9a-f]+\.partial$/;

/** The pid in a temp file name, or undefined when the name is not one of ours. */
export function tempOwner(name: string): number | undefined {
  const match = TEMP_PATTERN.exec(name);
  return match ? Number(match[1]) : undefined;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Turns a Node file-system error into one clear BallastError (ENOSPC named as a full disk). */
export function ioError(error: unknown, what: string): BallastError {
  if (BallastError.is(error)) return error;
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new BallastError('IO', `no space left on the device while ${what}`, {
      cause: error,
      hint: 'free some space (or choose another folder) and run the copy again; what was already written stays valid and is not sent again',
    });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new BallastError('IO', `permission denied while ${what}`, { cause: error });
  }
  return new BallastError('IO', `${what} failed: ${(error as Error)?.message ?? String(error)}`, {
    cause: error,
  });
}

/** fsync of a directory, so a rename inside it survives a crash; not every file system allows it. */
export async function syncDir(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Best effort: some file systems refuse fsync on a directory.
  } finally {
    await handle?.close().catch(() => {});
  }
}

/** Writes `bytes` to `path` through a temp file in the same folder: fsync, rename, fsync the folder. */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string, what: string): Promise<void> {
  const dir = dirname(path);
  const temp = `${dir}/${tempName()}`;
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx');
    await handle.writeFile(bytes);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, path);
    await syncDir(dir);
  } catch (error) {
    await handle?.close().catch(() => {});
    await rm(temp, { force: true }).catch(() => {});
    throw ioError(error, what);
  }
}

/**
 * Pipes `stream` through `verifier` into `handle` at its current position, with backpressure (one
 * write at a time). Stops with the signal's reason when `signal` aborts.
 */
export async function writeVerified(
  stream: Readable,
  verifier: VerifyingStream,
  handle: FileHandle,
  options: { signal?: AbortSignal | undefined; onChunk?: (() => void) | undefined } = {},
): Promise<void> {
  const { signal } = options;
  const onAbort = () => verifier.destroy(signal?.reason ?? new Error('aborted'));
  signal?.addEventListener('abort', onAbort, { once: true });
  stream.once('error', (error) => verifier.destroy(error));
  stream.pipe(verifier);
  try {
    if (signal?.aborted) onAbort();
    for await (const chunk of verifier) {
      await handle.write(chunk as Buffer);
      options.onChunk?.();
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    stream.unpipe(verifier);
  }
}
