import type { Readable } from 'node:stream';
import {
  archiveError,
  BLOCK,
  isMetaHeader,
  isZeroBlock,
  MAX_META_SIZE,
  type MemberType,
  memberType,
  normaliseName,
  PendingMeta,
  padding,
  parseHeader,
} from './tar-header.js';

export interface StreamMember {
  name: string;
  type: MemberType;
  size: number;
  linkname: string;
  /** Offset of the data in the tar stream. */
  offset: number;
}

/** What to do with a member's bytes: receive them (awaited, so slow consumers apply backpressure). */
export interface MemberSink {
  data(chunk: Buffer): void | Promise<void>;
  /** Returning 'stop' ends the pass right after this member. */
  end(): 'stop' | undefined | Promise<'stop' | undefined>;
}

/**
 * One pass over a tar stream. `onMember` returns a sink for the bytes of the members it wants, or
 * undefined to skip them; returning `'stop'` (or a sink's end followed by `stop()`) ends the pass
 * early and destroys the stream, so a reader that found its member does not pull the rest.
 */
export async function scanTar(
  stream: Readable,
  what: string,
  onMember: (
    member: StreamMember,
  ) => MemberSink | undefined | 'stop' | Promise<MemberSink | undefined | 'stop'>,
): Promise<void> {
  const pending = new PendingMeta();
  let header = Buffer.alloc(0);
  let position = 0;
  let entries = 0;
  // The member being read: its sink (or none when skipped), the bytes left, the padding left.
  let sink: MemberSink | undefined;
  let meta: { typeflag: string; chunks: Buffer[] } | undefined;
  let left = 0;
  let pad = 0;
  let inBody = false;
  let current = '';
  let ended = false;
  let stopped = false;
  try {
    for await (const raw of stream) {
      let chunk = raw as Buffer;
      while (chunk.length > 0 && !ended && !stopped) {
        if (inBody) {
          if (left > 0) {
            const piece = chunk.subarray(0, Math.min(left, chunk.length));
            chunk = chunk.subarray(piece.length);
            left -= piece.length;
            position += piece.length;
            if (meta) meta.chunks.push(Buffer.from(piece));
            else if (sink) await sink.data(piece);
            if (left === 0) {
              if (meta) {
                pending.add(meta.typeflag, Buffer.concat(meta.chunks));
                meta = undefined;
              } else if (sink) {
                const after = await sink.end();
                sink = undefined;
                if (after === 'stop') stopped = true;
              }
              if (pad === 0) inBody = false;
            }
            continue;
          }
          const skip = Math.min(pad, chunk.length);
          chunk = chunk.subarray(skip);
          pad -= skip;
          position += skip;
          if (pad === 0) inBody = false;
          continue;
        }
        const need = BLOCK - header.length;
        header = Buffer.concat([header, chunk.subarray(0, need)]);
        chunk = chunk.subarray(Math.min(need, chunk.length));
        if (header.length < BLOCK) continue;
        const block = header;
        header = Buffer.alloc(0);
        const headerAt = position;
        position += BLOCK;
        if (isZeroBlock(block)) {
          ended = true;
          break;
        }
        const parsed = parseHeader(block);
        if (parsed === undefined) {
          throw archiveError(
            what,
            entries === 0 ? 'is not a tar archive' : `is corrupt: no valid tar header at offset ${headerAt}`,
          );
        }
        entries++;
        inBody = true;
        if (isMetaHeader(parsed.typeflag)) {
          if (parsed.size > MAX_META_SIZE)
            throw archiveError(what, `has a ${parsed.size}-byte metadata entry`);
          meta = { typeflag: parsed.typeflag, chunks: [] };
          left = parsed.size;
          pad = padding(parsed.size);
          if (left === 0) {
            pending.add(parsed.typeflag, Buffer.alloc(0));
            meta = undefined;
            inBody = false;
          }
          continue;
        }
        const real = pending.apply(parsed);
        const type = memberType(real.typeflag);
        const size = type === 'file' ? real.size : 0;
        current = normaliseName(real.name);
        const decision = await onMember({
          name: current,
          type,
          size,
          linkname: real.linkname,
          offset: position,
        });
        if (decision === 'stop') {
          stopped = true;
          break;
        }
        sink = decision;
        left = size;
        pad = padding(size);
        if (left === 0) {
          inBody = false;
          if (sink && (await sink.end()) === 'stop') stopped = true;
          sink = undefined;
        }
      }
      if (ended || stopped) break;
    }
  } finally {
    if (ended || stopped) stream.destroy();
  }
  if (!ended && !stopped && (inBody || header.length > 0)) {
    throw archiveError(
      what,
      inBody ? `is truncated inside member ${current}` : 'is truncated inside a header',
    );
  }
}
